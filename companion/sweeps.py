"""Measurements of sweeps (alpha on page 2, the number of triplets on page 8), with intervals.

One row per representation: held-out alignment, k-NN overlap with the original features,
few-shot accuracy and anomaly AUROC, each with its 95% interval. The tables it builds on are
:mod:`companion.tables`; :mod:`companion.plotting` only draws the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from companion.tables import alignment_table, anomaly_table, few_shot_table
from glocal.evaluation.intervals import mean_interval
from glocal.evaluation.neighbours import per_item_overlap

#: The measures of :func:`evaluate`, one column each.
MEASURES = ("alignment", "overlap_things", "overlap_contrast", "few_shot", "auroc")


def evaluate_with_intervals(
    inputs: Any,
    transforms: Mapping[str, Any],
    k: int = 10,
    shots: int = 5,
    n_repeats: int = 5,
    anomaly_k: int = 5,
    task: str = "things-fine",
    classifier: str = "logreg",
    seed: int = 0,
) -> pd.DataFrame:
    """One row per representation (``original`` first) with a 95% interval for every measure.

    ``alignment`` is the held-out odd-one-out accuracy with its Wilson interval over test
    triplets; ``overlap_things``/``overlap_contrast`` the k-NN overlap with the original
    features on held-out concepts / held-out contrast items, with a t-interval over items
    (the original is measured against itself; with ``k`` at least the set's size every item
    keeps all its neighbours and the overlap is 1); ``few_shot`` the mean accuracy of
    ``shots``-shot ``classifier`` ("logreg" or "centroid") over ``n_repeats`` episodes, and
    ``auroc`` the mean anomaly AUROC over the classes of ``task``, each with a t-interval.
    Each measure ``m`` gets columns ``m_low``, ``m_high`` and ``m_n`` (the number of units).
    """
    align = alignment_table(inputs, transforms).set_index("representation")
    fs = few_shot_table(
        inputs, transforms, (task,), (shots,), n_repeats, classifiers=(classifier,), seed=seed
    )
    ad = anomaly_table(inputs, transforms, (task,), anomaly_k, seed)
    sets = {
        "overlap_things": inputs.features[inputs.triplets.heldout],
        "overlap_contrast": inputs.contrast_eval,
    }
    rows = []
    for name in ("original", *transforms):
        t = transforms.get(name)
        a: Any = align.loc["zero-shot" if name == "original" else name]
        row: dict[str, Any] = {
            "representation": name,
            "alignment": float(a["accuracy"]),
            "alignment_low": float(a["ci_low"]),
            "alignment_high": float(a["ci_high"]),
            "alignment_n": int(a["n_test"]),
        }
        for column, X in sets.items():
            if k >= len(X):
                row.update({column: 1.0, f"{column}_low": 1.0, f"{column}_high": 1.0})
                row[f"{column}_n"] = len(X)
                continue
            Z = X if t is None else t.transform(X)
            mean, low, high, n = mean_interval(per_item_overlap(X, Z, k))
            row.update({column: mean, f"{column}_low": low, f"{column}_high": high})
            row[f"{column}_n"] = n
        for column, values in (
            ("few_shot", fs.loc[fs["representation"] == name, "accuracy"]),
            ("auroc", ad.loc[ad["representation"] == name, "auroc"]),
        ):
            mean, low, high, n = mean_interval(values.to_numpy())
            row.update({column: mean, f"{column}_low": low, f"{column}_high": high})
            row[f"{column}_n"] = n
        rows.append(row)
    return pd.DataFrame(rows)


def evaluate(
    inputs: Any,
    transforms: Mapping[str, Any],
    k: int = 10,
    shots: int = 5,
    n_repeats: int = 5,
    anomaly_k: int = 5,
    task: str = "things-fine",
    classifier: str = "logreg",
    seed: int = 0,
) -> pd.DataFrame:
    """The means of :func:`evaluate_with_intervals`: one row per representation, one column
    per measure of :data:`MEASURES`."""
    table = evaluate_with_intervals(
        inputs, transforms, k, shots, n_repeats, anomaly_k, task, classifier, seed
    )
    return table[["representation", *MEASURES]]
