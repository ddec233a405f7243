"""k-nearest-neighbour anomaly detection: each class in turn is normal, the rest are anomalies."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from glocal._device import resolve_device, single_thread_if
from glocal.errors import GlocalError
from glocal.evaluation._checks import check_labels, show_label
from glocal.io import check_feature_matrix

_SMALL_PROBLEM = 1 << 22  # multiply-adds per similarity block below which one CPU thread wins


@dataclass(frozen=True)
class AnomalyDetectionResult:
    """One-vs-rest anomaly detection: AUROC per class, and the raw scores."""

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
    """
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
    progress: bool = True,
) -> AnomalyDetectionResult:
    """One-vs-rest anomaly detection: each class in turn is normal, every other test item odd.

    For class c the normal training set is ``train_X[train_y == c]``; each test item's score is
    its mean cosine distance to its ``k`` nearest normal training features, and the AUROC
    separates the test items of other classes (anomalies) from those of c. Runs in torch on
    ``device`` ("cpu", "cuda", "auto") in chunks, so 50k × 10k × 768 fits in little memory.
    """
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
        if n_test in (0, len(test_y)):
            raise GlocalError(
                f"class {show_label(c)!r}: the AUROC needs test rows of this class and of others, "
                f"found {n_test} of {len(test_y)}; leave the class out via classes="
            )
        rows.append((c, n_normal, n_test))
    dev = resolve_device(device)
    queries = _unit(torch.as_tensor(test_X, dtype=torch.float32, device=dev), "test_X")
    train_t = torch.as_tensor(train_X, dtype=torch.float32)
    scores = np.empty((len(test_X), len(classes)))
    per_class = []
    for j, (c, n_normal, n_test) in enumerate(
        tqdm(rows, desc="anomaly detection", disable=not progress)
    ):
        normal = _unit(train_t[torch.as_tensor(train_y == c)].to(dev), "train_X")
        sims = _mean_top_k_cosine(normal, queries, k, query_chunk, normal_chunk)
        scores[:, j] = (1.0 - sims).double().cpu().numpy()
        auroc = roc_auc_score(test_y != c, scores[:, j])
        per_class.append(
            {
                "class": c,
                "auroc": float(auroc),
                "n_normal_train": n_normal,
                "n_test_normal": n_test,
                "n_test_anomalous": len(test_y) - n_test,
            }
        )
    return AnomalyDetectionResult(per_class=pd.DataFrame(per_class), scores=scores, k=k)
