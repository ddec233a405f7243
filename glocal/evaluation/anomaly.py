"""k-nearest-neighbour anomaly detection: each class in turn is normal, the rest are anomalies."""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from glocal._device import resolve_device, single_thread_if
from glocal._params import verbose_level
from glocal.errors import GlocalError
from glocal.evaluation._checks import check_labels, show_label
from glocal.io import check_feature_matrix

_SMALL_PROBLEM = 1 << 22  # multiply-adds per similarity block below which one CPU thread wins


@dataclass(frozen=True)
class AnomalyDetectionResult:
    """One-vs-rest anomaly detection: AUROC per class, and the raw scores.

    Returned by :func:`anomaly_detection` and :func:`glocal.things_anomaly_detection`.

    Attributes
    ----------
    per_class : pandas.DataFrame
        One row per normal class, in the order of the columns of ``scores``, with columns
        ``class``, ``auroc``, ``n_normal_train`` (normal training items), ``n_test_normal`` and
        ``n_test_anomalous`` (test items of the class and of the other classes).
    scores : ndarray of shape (n_test, n_classes)
        Anomaly score of every test item with each class as the normal one: its mean cosine
        distance to the ``k`` nearest normal training items (higher = odder).
        :func:`shifted_anomaly_detection` leaves NaN for the test items it leaves out.
    k : int
        Nearest normal training items behind each score.
    """

    per_class: pd.DataFrame  # class, auroc, n_normal_train, n_test_normal, n_test_anomalous
    scores: np.ndarray  # (n_test, n_classes): mean cosine distance to the k nearest normals
    k: int

    @property
    def mean_auroc(self) -> float:
        """AUROC averaged over classes."""
        return float(self.per_class["auroc"].mean())


def _unit(x: torch.Tensor, where: str) -> torch.Tensor:
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    if bool((norms == 0).any()):
        bad = int((norms == 0).sum())
        raise GlocalError(f"{where}: {bad} all-zero rows have no cosine distance; drop them")
    return x / norms


def _check_counts(**counts: Any) -> None:
    """Refuse a neighbour count or chunk size that is not a positive integer, naming it."""
    for name, value in counts.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise GlocalError(f"{name} must be a positive integer, got {value!r}")
        if value < 1:
            raise GlocalError(f"{name} must be at least 1, got {value}")


def _mean_top_k_cosine(
    normal: torch.Tensor, queries: torch.Tensor, k: int, query_chunk: int, normal_chunk: int
) -> torch.Tensor:
    """Mean of each unit query's k largest cosines with the unit normal rows, chunk by chunk."""
    out = torch.empty(len(queries), dtype=queries.dtype, device=queries.device)
    small = queries.device.type == "cpu" and queries.numel() * len(normal) < _SMALL_PROBLEM
    with single_thread_if(small):
        _fill_top_k_cosine(out, normal, queries, k, query_chunk, normal_chunk)
    return out


def _fill_top_k_cosine(
    out: torch.Tensor,
    normal: torch.Tensor,
    queries: torch.Tensor,
    k: int,
    query_chunk: int,
    normal_chunk: int,
) -> None:
    for q0 in range(0, len(queries), query_chunk):
        block = queries[q0 : q0 + query_chunk]
        best = None
        for n0 in range(0, len(normal), normal_chunk):
            sims = block @ normal[n0 : n0 + normal_chunk].T
            top = torch.topk(sims, min(k, sims.shape[1]), dim=1, sorted=False).values
            best = top if best is None else torch.topk(torch.cat([best, top], 1), k, dim=1).values
        assert best is not None  # normal has at least one row
        out[q0 : q0 + query_chunk] = best.mean(dim=1)


def knn_anomaly_scores(
    normal: np.ndarray,
    queries: np.ndarray,
    k: int = 5,
    device: str = "cpu",
    query_chunk: int = 2048,
    normal_chunk: int = 8192,
    dtype: torch.dtype = torch.float32,
) -> np.ndarray:
    """Mean cosine distance of each query to its ``k`` nearest ``normal`` rows (higher = odder).

    Memory is O(query_chunk · normal_chunk): the full distance matrix is never built.

    Parameters
    ----------
    normal : ndarray of shape (n_normal, p)
        Features of the normal (reference) items.
    queries : ndarray of shape (n_queries, p)
        Features of the items to score.
    k : int, default=5
        Nearest normal rows averaged per query, in [1, n_normal].
    device : str, default="cpu"
        Torch device of the computation: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``
        (CUDA when present).
    query_chunk : int, default=2048
        Query rows compared at a time.
    normal_chunk : int, default=8192
        Normal rows compared at a time.
    dtype : torch.dtype, default=torch.float32
        Precision of the computation.

    Returns
    -------
    ndarray of shape (n_queries,)
        float64 scores: 1 minus the mean of each query's ``k`` largest cosine similarities to
        the normal rows.

    Raises
    ------
    GlocalError
        For a feature matrix that is not a finite, real 2-D array, feature dimensions that
        differ, ``k`` outside [1, n_normal], all-zero rows (they have no cosine) or a device that
        is not available.
    """
    _check_counts(k=k, query_chunk=query_chunk, normal_chunk=normal_chunk)
    normal = check_feature_matrix(normal, "normal")
    queries = check_feature_matrix(queries, "queries")
    if normal.shape[1] != queries.shape[1]:
        raise GlocalError(
            f"normal has {normal.shape[1]} features but queries have {queries.shape[1]}"
        )
    if not 1 <= k <= len(normal):
        raise GlocalError(f"k must lie in [1, {len(normal)}] (the number of normal rows), got {k}")
    dev = resolve_device(device)
    n_t = _unit(torch.as_tensor(normal, dtype=dtype, device=dev), "normal")
    q_t = _unit(torch.as_tensor(queries, dtype=dtype, device=dev), "queries")
    sims = _mean_top_k_cosine(n_t, q_t, k, query_chunk, normal_chunk)
    return (1.0 - sims).double().cpu().numpy()


def anomaly_detection(
    train_X: np.ndarray,
    train_y: np.ndarray,
    test_X: np.ndarray,
    test_y: np.ndarray,
    k: int = 5,
    classes: Sequence[Hashable] | None = None,
    device: str = "cpu",
    query_chunk: int = 2048,
    normal_chunk: int = 8192,
    verbose: int = 0,
    progress: bool | None = None,
    anomalies: Mapping[Hashable, Sequence[Hashable]] | None = None,
) -> AnomalyDetectionResult:
    """One-vs-rest anomaly detection: each class in turn is normal, every other test item odd.

    For class c the normal training set is ``train_X[train_y == c]``; each test item's score is
    its mean cosine distance to its ``k`` nearest normal training features, and the AUROC
    separates the test items of other classes (anomalies) from those of c. Runs in torch on
    ``device`` ("cpu", "cuda", "auto") in chunks, so 50k × 10k × 768 fits in little memory.

    Parameters
    ----------
    train_X : ndarray of shape (n_train, p)
        Training features; the rows of class c are its normal set.
    train_y : ndarray of shape (n_train,)
        Class label of each training row.
    test_X : ndarray of shape (n_test, p)
        Test features, scored with every class in turn as the normal one.
    test_y : ndarray of shape (n_test,)
        Class label of each test row.
    k : int, default=5
        Nearest normal training items averaged per score; every class needs at least ``k``
        training items.
    classes : sequence or None, default=None
        The classes taken in turn as normal, in this order (None: every class of ``train_y``,
        sorted). Each needs test items of its own and of other classes.
    device : str, default="cpu"
        Torch device of the computation: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``
        (CUDA when present). Features are compared in float32.
    query_chunk : int, default=2048
        Test rows compared at a time.
    normal_chunk : int, default=8192
        Normal training rows compared at a time.
    verbose : int, default=0
        0: quiet; 1 or more: a progress bar over classes.
    progress : bool or None, default=None
        Deprecated name of ``verbose`` (``True`` is 1): accepted for one release, with a
        :class:`FutureWarning`.
    anomalies : mapping or None, default=None
        For each class, the classes whose test items are its anomalies (None: every other
        class). Naming the classes most similar to each one gives a harder, "near" protocol
        whose AUROC has room to show damage that the one-vs-rest AUROC, near its ceiling,
        hides. The AUROC of class c then separates c's test items from those of
        ``anomalies[c]`` only; ``scores`` still scores every test item.

    Returns
    -------
    AnomalyDetectionResult
        One row of ``per_class`` and one column of ``scores`` per class of ``classes``.

    Raises
    ------
    GlocalError
        For a feature matrix that is not a finite, real 2-D array, feature dimensions that
        differ, label vectors that are not 1-D or do not match their rows, a class with fewer
        than ``k`` training items or without test items of its own or of other classes,
        all-zero rows (they have no cosine) or a device that is not available.
    """
    _check_counts(k=k, query_chunk=query_chunk, normal_chunk=normal_chunk)
    train_X = check_feature_matrix(train_X, "train_X")
    test_X = check_feature_matrix(test_X, "test_X")
    if train_X.shape[1] != test_X.shape[1]:
        raise GlocalError(
            f"train_X has {train_X.shape[1]} features but test_X has {test_X.shape[1]}"
        )
    train_y = check_labels(train_y, len(train_X), "train_y")
    test_y = check_labels(test_y, len(test_X), "test_y")
    classes = list(np.unique(train_y) if classes is None else classes)
    rows = []
    for c in classes:
        n_normal, n_test = int((train_y == c).sum()), int((test_y == c).sum())
        if n_normal < k:
            raise GlocalError(
                f"class {show_label(c)!r} has {n_normal} training rows but k={k} neighbours are "
                "needed; lower k or leave the class out via classes="
            )
        if anomalies is None:
            scored = np.ones(len(test_y), dtype=bool)
        else:
            if c not in anomalies or not len(anomalies[c]) or c in set(anomalies[c]):
                raise GlocalError(
                    f"anomalies: class {show_label(c)!r} needs a list of other classes whose "
                    "test items are its anomalies; name one or more classes, not the class itself"
                )
            scored = (test_y == c) | np.isin(test_y, np.asarray(list(anomalies[c])))
        if n_test == 0 or n_test == int(scored.sum()):
            raise GlocalError(
                f"class {show_label(c)!r}: the AUROC needs test rows of this class and of others, "
                f"found {n_test} of {int(scored.sum())}; leave the class out via classes="
            )
        rows.append((c, n_normal, n_test, scored))
    dev = resolve_device(device)
    queries = _unit(torch.as_tensor(test_X, dtype=torch.float32, device=dev), "test_X")
    train_t = torch.as_tensor(train_X, dtype=torch.float32)
    scores = np.empty((len(test_X), len(classes)))
    per_class = []
    verbose = verbose_level(verbose, progress, "anomaly_detection")
    for j, (c, n_normal, n_test, scored) in enumerate(
        tqdm(rows, desc="anomaly detection", disable=not verbose)
    ):
        normal = _unit(train_t[torch.as_tensor(train_y == c)].to(dev), "train_X")
        sims = _mean_top_k_cosine(normal, queries, k, query_chunk, normal_chunk)
        scores[:, j] = (1.0 - sims).double().cpu().numpy()
        auroc = roc_auc_score(test_y[scored] != c, scores[scored, j])
        per_class.append(
            {
                "class": c,
                "auroc": float(auroc),
                "n_normal_train": n_normal,
                "n_test_normal": n_test,
                "n_test_anomalous": int(scored.sum()) - n_test,
            }
        )
    return AnomalyDetectionResult(per_class=pd.DataFrame(per_class), scores=scores, k=k)


def shifted_anomaly_detection(
    train_X: np.ndarray,
    train_fine: np.ndarray,
    train_coarse: np.ndarray,
    test_X: np.ndarray,
    test_fine: np.ndarray,
    test_coarse: np.ndarray,
    k: int = 5,
    seen: Sequence[int] = (0, 1, 2),
    device: str = "cpu",
    verbose: int = 0,
    progress: bool | None = None,
) -> AnomalyDetectionResult:
    """Anomaly detection under subclass shift (the official CIFAR-100-shift protocol).

    Each superclass c in turn is normal. Its fine classes, sorted, are split: the ``seen``
    positions (default the first three of CIFAR-100's five) give the normal training items,
    and the test set holds every test item of every *other* fine class, so the normal test
    items all come from unseen subclasses of c; items of other superclasses are anomalies.
    Scores are :func:`knn_anomaly_scores` (mean cosine distance to the k nearest normals).
    ``verbose`` (0 or 1) shows a progress bar over superclasses (``progress``: its deprecated
    name, accepted for one release with a :class:`FutureWarning`).
    """
    _check_counts(k=k)
    train_X = check_feature_matrix(train_X, "train_X")
    test_X = check_feature_matrix(test_X, "test_X")
    train_fine = check_labels(train_fine, len(train_X), "train_fine")
    train_coarse = check_labels(train_coarse, len(train_X), "train_coarse")
    test_fine = check_labels(test_fine, len(test_X), "test_fine")
    test_coarse = check_labels(test_coarse, len(test_X), "test_coarse")
    dev = resolve_device(device)
    per_class, columns = [], []
    classes = list(np.unique(train_coarse))
    verbose = verbose_level(verbose, progress, "shifted_anomaly_detection")
    for c in tqdm(classes, desc="anomaly detection (shift)", disable=not verbose):
        fine = np.unique(train_fine[train_coarse == c])
        positions = [p for p in seen if p < len(fine)]
        if not positions or len(positions) == len(fine):
            raise GlocalError(
                f"superclass {show_label(c)!r} has {len(fine)} fine classes; `seen` positions "
                f"{list(seen)} must pick some of them and leave others unseen"
            )
        normal_fine = fine[positions]
        normal = train_X[np.isin(train_fine, normal_fine)]
        if len(normal) < k:
            raise GlocalError(f"superclass {show_label(c)!r}: {len(normal)} normal rows < k={k}")
        keep = ~np.isin(test_fine, normal_fine)
        anomalous = test_coarse[keep] != c
        if anomalous.all() or not anomalous.any():
            raise GlocalError(f"superclass {show_label(c)!r}: the shifted test set is one-sided")
        n_t = _unit(torch.as_tensor(normal, dtype=torch.float32, device=dev), "train_X")
        q_t = _unit(torch.as_tensor(test_X[keep], dtype=torch.float32, device=dev), "test_X")
        sims = _mean_top_k_cosine(n_t, q_t, k, 2048, 8192)
        score = np.full(len(test_X), np.nan)
        score[keep] = (1.0 - sims).double().cpu().numpy()
        columns.append(score)
        per_class.append({
            "class": c, "auroc": float(roc_auc_score(anomalous, score[keep])),
            "n_normal_train": int(len(normal)), "n_test_normal": int((~anomalous).sum()),
            "n_test_anomalous": int(anomalous.sum()),
        })  # fmt: skip
    return AnomalyDetectionResult(pd.DataFrame(per_class), np.stack(columns, axis=1), k)
