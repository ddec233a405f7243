"""Measurements of sweeps (alpha on page 2, the number of triplets on page 8), with intervals.

Every measure is kept per unit first (:func:`sweep_units`: a test triplet, an item, a class of
an episode, a class of a split), so that each representation gets a 95% interval over the
units its claim generalises over (:data:`CLUSTERS`: THINGS concepts for alignment, categories
for the downstream measures, items for local structure) and its paired difference to the
original features over the same units (:func:`evaluate_with_intervals`). The downstream units
are fold 0's cross-fitting episodes and splits (page 5 and 6 draw the same ones).
:mod:`companion.paper.plotting` only draws the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from companion.paper.comparisons import MARGINS, paired_summary, summary
from companion.paper.crossfit import anomaly_splits, few_shot_episodes
from companion.paper.tables import alignment_units
from glocal.evaluation.comparison import EvalSettings, compare_units

#: The measures of :func:`evaluate_with_intervals`, one column each.
MEASURES = ("alignment", "overlap_things", "overlap_contrast", "few_shot", "auroc")
#: The measures compared unit by unit with the original features, and their units.
PAIRED = {"alignment": ["triplet"], "few_shot": ["fold", "repeat", "category"],
          "auroc": ["fold", "repeat", "category"]}  # fmt: skip
#: The units each measure's interval resamples (None: a t-interval over the rows, which are
#: the units themselves), and the column that weighs a row.
CLUSTERS: dict[str, list[str] | None] = {
    "alignment": ["i", "j", "k"], "overlap_things": None, "overlap_contrast": None,
    "few_shot": ["category"], "auroc": ["category"],
}  # fmt: skip
WEIGHTS = {"few_shot": "n_test"}


def interval_units_text() -> str:
    """What each interval of :func:`evaluate_with_intervals` resamples, for captions."""
    return (
        "alignment: the held-out concepts (cluster-robust: two triplets that share a concept "
        "count as dependent); local structure: the items; few-shot accuracy and AUROC: the "
        "categories (every episode and split of a category together)"
    )


@dataclass(frozen=True)
class SweepSettings:
    """How a sweep measures each representation (:func:`sweep_units`).

    ``k``: neighbours of the local-structure overlap; ``shots``, ``n_repeats``, ``classifier``:
    the few-shot episodes of ``task`` (fold 0's cross-fitting episodes); ``anomaly_k``,
    ``anomaly_repeats``: neighbours and splits of anomaly detection on ``task``; ``seed``:
    episodes and splits.
    """

    k: int = 10
    shots: int = 5
    n_repeats: int = 5
    anomaly_k: int = 5
    anomaly_repeats: int = 2
    task: str = "things-fine"
    classifier: str = "logreg"
    seed: int = 0

    def few_shot(self) -> EvalSettings:
        """The library's settings of the sweep's few-shot episodes."""
        classifier: Any = self.classifier
        return EvalSettings(shots=(self.shots,), n_repeats=self.n_repeats,
                            classifiers=(classifier,), seed=self.seed)  # fmt: skip

    def anomaly(self) -> EvalSettings:
        """The library's settings of the sweep's anomaly splits."""
        return EvalSettings(anomaly_k=self.anomaly_k, seed=self.seed)


def sweep_units(
    inputs: Any, transforms: Mapping[str, Any], settings: SweepSettings | None = None
) -> dict[str, pd.DataFrame]:
    """Every measure per unit, for the original features and every transform.

    ``alignment``: whether each held-out test triplet is answered correctly (cosine for the
    original features, dot products for transforms); ``overlap_things`` /
    ``overlap_contrast``: each held-out concept's / contrast item's fraction of kept ``k``
    nearest neighbours; ``few_shot``: the accuracy of each class of each ``shots``-shot
    episode of ``task`` (fold 0's episodes, every other member of a class a test item);
    ``auroc``: each class's AUROC in each of ``anomaly_repeats`` splits. All are measured by
    :func:`glocal.evaluation.comparison.compare_units` (the downstream ones through
    :mod:`companion.paper.crossfit`). Each table has the columns ``representation``,
    ``value`` and its unit columns.
    """
    s = settings or SweepSettings()
    rows: dict[str, pd.DataFrame] = {}
    alignment = alignment_units(inputs, transforms).rename(columns={"correct": "value"})
    alignment["representation"] = alignment["representation"].replace({"zero-shot": "original"})
    rows["alignment"] = alignment[["triplet", "i", "j", "k", "value", "representation"]]
    sets = {"overlap_things": inputs.features[inputs.triplets.heldout],
            "overlap_contrast": inputs.contrast_eval}  # fmt: skip
    for measure, X in sets.items():
        frames = [pd.DataFrame({"item": np.arange(len(X)), "value": np.ones(len(X)),
                                "representation": "original"})]  # fmt: skip
        if transforms and s.k < len(X):
            units = compare_units(transforms, contrast=X, settings=EvalSettings(ks=(s.k,)),
                                  measurements=("neighbour_overlap",))  # fmt: skip
            frames.append(units[["item", "value"]].assign(representation=units["transform"]))
        else:  # every neighbourhood is the whole set: kept by any transform
            frames += [frames[0].assign(representation=name) for name in transforms]
        rows[measure] = pd.concat(frames, ignore_index=True)
    fitted = dict(transforms)
    episodes = few_shot_episodes([inputs], [fitted], [s.task], s.few_shot(), per_class=True)
    rows["few_shot"] = episodes.rename(columns={"accuracy": "value"})
    splits = anomaly_splits([inputs], [fitted], [s.task], s.anomaly(), s.anomaly_repeats)
    rows["auroc"] = splits.rename(columns={"auroc": "value", "class": "category"})
    return {m: rows[m] for m in MEASURES}


def evaluate_with_intervals(
    inputs: Any,
    transforms: Mapping[str, Any],
    settings: SweepSettings | None = None,
    margins: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per representation (``original`` first) with a 95% interval for every measure.

    For each measure ``m`` of :data:`MEASURES` (see :func:`sweep_units`): the mean ``m`` with
    ``m_low``, ``m_high`` (over the units of :data:`CLUSTERS`: cluster-robust over held-out
    concepts for alignment and over categories for the downstream measures, a t-interval over
    items for local structure) and ``m_n`` (units); for the paired measures of :data:`PAIRED`
    also the mean difference to the original features over the same units, ``m_diff``, with
    ``m_diff_low``, ``m_diff_high`` and the verdict ``m_verdict`` (expected: higher; margins
    ``margins``, default :data:`companion.paper.comparisons.MARGINS`, for accuracy and AUROC,
    none for alignment; the naive transform, when present, is the positive control).
    """
    return summarize_units(sweep_units(inputs, transforms, settings), margins)


def summarize_units(
    units: Mapping[str, pd.DataFrame], margins: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """:func:`evaluate_with_intervals`'s table from the unit tables of :func:`sweep_units`;
    ``margins`` (``accuracy``, ``auroc``; the profile's) decide the verdicts (default
    :data:`companion.paper.comparisons.MARGINS`)."""
    margins = {**MARGINS, **dict(margins or {})}
    names = list(dict.fromkeys(units["alignment"]["representation"]))
    transforms = [n for n in names if n != "original"]
    rows: dict[str, dict[str, Any]] = {n: {"representation": n} for n in names}
    for measure, frame in units.items():
        means = summary(frame, "value", clusters=CLUSTERS[measure], weights=WEIGHTS.get(measure))
        for row in means.itertuples():
            rows[str(row.representation)].update({
                measure: row.mean, f"{measure}_low": row.ci_low, f"{measure}_high": row.ci_high,
                f"{measure}_n": row.n,
            })  # fmt: skip
        if measure in PAIRED and len(transforms):
            margin = {"few_shot": margins["accuracy"], "auroc": margins["auroc"]}.get(measure, 0)
            diffs = paired_summary(frame, "value", PAIRED[measure], margin=margin,
                                   clusters=CLUSTERS[measure], weights=WEIGHTS.get(measure),
                                   control="naive" if "naive" in names else None)  # fmt: skip
            for row in diffs.itertuples():
                rows[str(row.representation)].update({
                    f"{measure}_diff": row.mean, f"{measure}_diff_low": row.ci_low,
                    f"{measure}_diff_high": row.ci_high, f"{measure}_verdict": row.verdict,
                })  # fmt: skip
    return pd.DataFrame(list(rows.values()))
