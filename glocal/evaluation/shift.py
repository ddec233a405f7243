"""Accuracy under distribution shift: one classifier, an in-distribution and shifted test sets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from glocal.errors import GlocalError
from glocal.evaluation._checks import check_labels
from glocal.evaluation.few_shot import (
    CLASSIFIERS,
    DEFAULT_CS,
    Classifier,
    logistic_regression_cv,
    nearest_centroid,
)
from glocal.io import check_feature_matrix

#: The columns of :attr:`ShiftResult.per_item` and :attr:`ShiftResult.summary`.
ITEM_COLUMNS = ("test_set", "item", "label", "prediction", "correct")
SUMMARY_COLUMNS = ("shift", "accuracy", "shifted_accuracy", "drop", "n", "n_shifted")


@dataclass(frozen=True)
class ShiftResult:
    """Per-item correctness on every test set, and accuracy, shifted accuracy and drop.

    ``per_item`` has one row per test item and test set (``test_set``, ``item``: the row of the
    item in its test set, ``label``, ``prediction``, ``correct``), so that two representations
    scored on the same test sets pair item by item. ``summary`` has one row per shifted test
    set: ``accuracy`` on the in-distribution set, ``shifted_accuracy`` on the shifted one,
    ``drop`` = accuracy − shifted accuracy, and the numbers of items ``n`` and ``n_shifted``.
    ``C`` is the logistic regression's chosen inverse penalty (NaN for ``centroid``).
    """

    per_item: pd.DataFrame
    summary: pd.DataFrame
    in_distribution: str
    C: float


def _test_sets(
    test_sets: Mapping[str, tuple[np.ndarray, np.ndarray]], dim: int, classes: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    checked = {}
    for name, pair in test_sets.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise GlocalError(f"test set {name!r}: expected a pair (features, labels)")
        X = check_feature_matrix(pair[0], f"test set {name!r}")
        y = check_labels(pair[1], len(X), f"labels of test set {name!r}")
        if X.shape[1] != dim:
            raise GlocalError(
                f"test set {name!r} has {X.shape[1]} features, the training set {dim}"
            )
        unknown = sorted(set(np.unique(y).tolist()) - set(classes.tolist()))
        if unknown:
            raise GlocalError(
                f"test set {name!r} has classes the training set lacks: {unknown[:5]}"
            )
        checked[str(name)] = (X, y)
    return checked


def shift_accuracy(
    X_train: np.ndarray,
    y_train: np.ndarray,
    test_sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    in_distribution: str,
    classifier: Classifier = "logreg",
    Cs: Sequence[float] = DEFAULT_CS,
    cv_folds: int = 5,
    centroid_metric: Literal["cosine", "euclidean"] = "cosine",
    device: str = "cpu",
    seed: int = 0,
) -> ShiftResult:
    """Train one classifier on the training items; score it on every test set.

    The classifier is one of :mod:`glocal.evaluation.few_shot`'s: ``logreg``
    (:func:`~glocal.evaluation.few_shot.logistic_regression_cv`, C chosen by stratified
    cross-validation on the training items over ``Cs``; a single C is used as is) or
    ``centroid`` (:func:`~glocal.evaluation.few_shot.nearest_centroid`). It is fitted once
    and predicts the items of all test sets, so a representation's accuracies on the sets
    differ only by the items. Every test set other than ``in_distribution`` is a shifted one;
    its drop is the in-distribution accuracy minus its own.

    Parameters
    ----------
    X_train : ndarray of shape (n, p)
        Features of the training items.
    y_train : ndarray of shape (n,)
        Their class labels (at least 2 classes).
    test_sets : mapping of str to (ndarray of shape (m, p), ndarray of shape (m,))
        Features and labels of each test set, by name; labels are classes of ``y_train``.
    in_distribution : str
        The name of the test set drawn like the training items (the reference).
    classifier : {"logreg", "centroid"}, default="logreg"
        The classifier.
    Cs : sequence of float, default=DEFAULT_CS
        Inverse L2 strengths of the logistic regression (see
        :func:`~glocal.evaluation.few_shot.logistic_regression_cv`).
    cv_folds : int, default=5
        Most folds of its cross-validation.
    centroid_metric : {"cosine", "euclidean"}, default="cosine"
        Metric of the nearest-centroid classifier.
    device : str, default="cpu"
        Torch device of the logistic regression.
    seed : int, default=0
        Seeds the cross-validation folds.

    Returns
    -------
    ShiftResult
        Per-item correctness and the summary (see :class:`ShiftResult`).

    Raises
    ------
    GlocalError
        For feature matrices that are not finite, real 2-D arrays, labels that do not match
        them, fewer than 2 training classes, a test set with other features or unknown
        classes, an ``in_distribution`` that is not a test set, no shifted test set, or an
        unknown ``classifier``.
    """
    X = check_feature_matrix(X_train, "X_train")
    y = check_labels(y_train, len(X), "y_train")
    classes = np.unique(y)
    if len(classes) < 2:
        raise GlocalError(f"y_train: a classifier needs at least 2 classes, got {len(classes)}")
    if classifier not in CLASSIFIERS:
        raise GlocalError(f"classifier: unknown {classifier!r}; choose from {list(CLASSIFIERS)}")
    sets = _test_sets(test_sets, X.shape[1], classes)
    if in_distribution not in sets:
        raise GlocalError(
            f"in_distribution {in_distribution!r} is not one of the test sets {list(sets)}"
        )
    if len(sets) < 2:
        raise GlocalError("test_sets: give at least one shifted test set besides the reference")
    names = list(sets)
    query = np.concatenate([sets[n][0] for n in names])
    C = float("nan")
    if classifier == "logreg":
        predicted, C = logistic_regression_cv(X, y, query, Cs, cv_folds, device=device, seed=seed)
    else:
        predicted = nearest_centroid(X, y, query, centroid_metric)
    frames, start = [], 0
    for name in names:
        labels = sets[name][1]
        pred = predicted[start : start + len(labels)]
        start += len(labels)
        frames.append(pd.DataFrame({
            "test_set": name, "item": np.arange(len(labels)), "label": labels,
            "prediction": pred, "correct": pred == labels,
        }))  # fmt: skip
    per_item = pd.concat(frames, ignore_index=True)
    grouped = per_item.groupby("test_set", sort=False)["correct"]
    mean, size = grouped.mean().to_dict(), grouped.size().to_dict()
    reference = float(mean[in_distribution])
    rows = [
        {"shift": name, "accuracy": reference, "shifted_accuracy": float(mean[name]),
         "drop": reference - float(mean[name]), "n": int(size[in_distribution]),
         "n_shifted": int(size[name])}
        for name in names if name != in_distribution
    ]  # fmt: skip
    return ShiftResult(per_item, pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)),
                       in_distribution, C)  # fmt: skip
