"""Measurements of sweeps (alpha on page 2, the number of triplets on page 8), with intervals.

Every measure is kept per unit first (:func:`sweep_units`: a test triplet, an item, an
episode, a class of a split), so that each representation gets a 95% interval over its units
and its paired difference to the original features over the same units
(:func:`evaluate_with_intervals`). The downstream units are fold 0's cross-fitting episodes
and splits (page 5 and 6 draw the same ones). :mod:`companion.plotting` only draws the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from companion.comparisons import MARGINS, paired_summary
from companion.crossfit import anomaly_splits, few_shot_episodes
from glocal.evaluation.alignment import triplet_correct
from glocal.evaluation.intervals import mean_interval, wilson_interval
from glocal.evaluation.neighbours import per_item_overlap
from glocal.evaluation.similarity import default_similarity

#: The measures of :func:`evaluate_with_intervals`, one column each.
MEASURES = ("alignment", "overlap_things", "overlap_contrast", "few_shot", "auroc")
#: The measures compared unit by unit with the original features, and their units.
PAIRED = {"alignment": ["triplet"], "few_shot": ["fold", "repeat"],
          "auroc": ["fold", "repeat", "category"]}  # fmt: skip


def sweep_units(
    inputs: Any,
    transforms: Mapping[str, Any],
    k: int = 10,
    shots: int = 5,
    n_repeats: int = 5,
    anomaly_k: int = 5,
    anomaly_repeats: int = 2,
    task: str = "things-fine",
    classifier: str = "logreg",
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Every measure per unit, for the original features and every transform.

    ``alignment``: whether each held-out test triplet is answered correctly (cosine for the
    original features, dot products for transforms); ``overlap_things`` /
    ``overlap_contrast``: each held-out concept's / contrast item's fraction of kept ``k``
    nearest neighbours; ``few_shot``: the accuracy of each ``shots``-shot episode of
    ``task`` (fold 0's episodes, every other member of a class a test item);
    ``auroc``: each class's AUROC in each of ``anomaly_repeats`` splits. Each table has the
    columns ``representation``, ``value`` and its unit columns.
    """
    names = ["original", *transforms]
    spaces = {name: transforms.get(name) for name in names}
    rows: dict[str, list[pd.DataFrame]] = {m: [] for m in MEASURES}
    test = inputs.triplets.test
    sets = {"overlap_things": inputs.features[inputs.triplets.heldout],
            "overlap_contrast": inputs.contrast_eval}  # fmt: skip
    for name, t in spaces.items():
        Z = inputs.features if t is None else t.transform(inputs.features)
        correct = triplet_correct(Z, test, default_similarity(transformed=t is not None))
        rows["alignment"].append(pd.DataFrame({"triplet": np.arange(len(test)),
                                               "value": correct.astype(float)}))  # fmt: skip
        for column, X in sets.items():
            values = (
                np.ones(len(X))
                if t is None or k >= len(X)
                else per_item_overlap(X, t.transform(X), k)
            )
            rows[column].append(pd.DataFrame({"item": np.arange(len(X)), "value": values}))
        for frame in (rows[m][-1] for m in ("alignment", "overlap_things", "overlap_contrast")):
            frame["representation"] = name
    fitted = {name: t for name, t in transforms.items()}
    episodes = few_shot_episodes([inputs], [fitted], [task], [shots], n_repeats, [classifier],  # type: ignore[list-item]
                                 seed=seed)  # fmt: skip
    rows["few_shot"] = [episodes.rename(columns={"accuracy": "value"})]
    splits = anomaly_splits([inputs], [fitted], [task], anomaly_k, anomaly_repeats, seed)
    rows["auroc"] = [splits.rename(columns={"auroc": "value", "class": "category"})]
    return {m: pd.concat(frames, ignore_index=True) for m, frames in rows.items()}


def evaluate_with_intervals(
    inputs: Any,
    transforms: Mapping[str, Any],
    k: int = 10,
    shots: int = 5,
    n_repeats: int = 5,
    anomaly_k: int = 5,
    anomaly_repeats: int = 2,
    task: str = "things-fine",
    classifier: str = "logreg",
    seed: int = 0,
) -> pd.DataFrame:
    """One row per representation (``original`` first) with a 95% interval for every measure.

    For each measure ``m`` of :data:`MEASURES` (see :func:`sweep_units`): the mean ``m`` with
    ``m_low``, ``m_high`` (Wilson over test triplets for alignment, Student-t over the units
    otherwise) and ``m_n`` (units); for the paired measures of :data:`PAIRED` also the mean
    difference to the original features over the same units, ``m_diff``, with
    ``m_diff_low``, ``m_diff_high`` and the verdict ``m_verdict`` (expected: higher; margin
    :data:`companion.comparisons.MARGINS` for accuracy and AUROC, none for alignment).
    """
    units = sweep_units(inputs, transforms, k, shots, n_repeats, anomaly_k, anomaly_repeats,
                        task, classifier, seed)  # fmt: skip
    return summarize_units(units)


def summarize_units(units: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """:func:`evaluate_with_intervals`'s table from the unit tables of :func:`sweep_units`."""
    names = list(dict.fromkeys(units["alignment"]["representation"]))
    transforms = [n for n in names if n != "original"]
    rows: dict[str, dict[str, Any]] = {n: {"representation": n} for n in names}
    for measure, frame in units.items():
        for name, part in frame.groupby("representation", sort=False):
            values = part["value"].to_numpy()
            if measure == "alignment":
                mean, n = float(values.mean()), len(values)
                low, high = wilson_interval(mean, n)
            else:
                mean, low, high, n = mean_interval(values)
            rows[str(name)].update({measure: mean, f"{measure}_low": low,
                                    f"{measure}_high": high, f"{measure}_n": n})  # fmt: skip
        if measure in PAIRED and len(transforms):
            margin = {"few_shot": MARGINS["accuracy"], "auroc": MARGINS["auroc"]}.get(measure, 0)
            diffs = paired_summary(frame, "value", PAIRED[measure], margin=margin)
            for row in diffs.itertuples():
                rows[str(row.representation)].update({
                    f"{measure}_diff": row.mean, f"{measure}_diff_low": row.ci_low,
                    f"{measure}_diff_high": row.ci_high, f"{measure}_verdict": row.verdict,
                })  # fmt: skip
    return pd.DataFrame(list(rows.values()))
