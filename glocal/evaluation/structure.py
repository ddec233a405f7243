"""Global structure of a representation: category-sorted similarity matrices, block contrast
and 2-D PCA."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from glocal.errors import GlocalError
from glocal.evaluation.similarity import Similarity, similarity_matrix, similarity_rows
from glocal.io import check_feature_matrix


def _labels(labels: pd.Series | np.ndarray | Sequence, n: int | None = None) -> np.ndarray:
    array = np.asarray(labels.to_numpy() if isinstance(labels, pd.Series) else labels)
    if array.ndim != 1 or len(array) == 0:
        raise GlocalError("labels: expected a non-empty 1-D sequence of category labels")
    if n is not None and len(array) != n:
        raise GlocalError(f"labels has {len(array)} entries but the matrix has {n} rows")
    return array


def category_order(
    labels: pd.Series | np.ndarray | Sequence, categories: Sequence | None = None
) -> np.ndarray:
    """Positions that sort items by category, categories largest first (ties by name) unless
    ``categories`` gives the order; items keep their order inside a category."""
    array = _labels(labels)
    names, counts = np.unique(array, return_counts=True)
    if categories is None:
        categories = [names[i] for i in np.lexsort((names, -counts))]
    missing = sorted(set(names.tolist()) - set(categories))
    if missing:
        raise GlocalError(f"categories: no place for label(s) {missing[:5]}; list every label")
    rank = {c: i for i, c in enumerate(categories)}
    return np.argsort([rank[x] for x in array.tolist()], kind="stable")


def category_spans(sorted_labels: pd.Series | np.ndarray | Sequence) -> pd.DataFrame:
    """Contiguous runs of equal labels: one row per run with category, start, stop (exclusive)."""
    array = _labels(sorted_labels)
    change = np.flatnonzero(array[1:] != array[:-1]) + 1
    starts = np.r_[0, change]
    stops = np.r_[change, len(array)]
    return pd.DataFrame({"category": array[starts], "start": starts, "stop": stops})


def percentile_ranks(S: np.ndarray) -> np.ndarray:
    """A similarity matrix with its off-diagonal entries replaced by their rank, scaled to
    [0, 1] (ties share the mean rank), and a diagonal of 1; makes matrices comparable across
    spaces whose similarities have different scales."""
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or len(S) < 2:
        raise GlocalError(f"S: expected a square matrix of at least 2 × 2, got {S.shape}")
    off = ~np.eye(len(S), dtype=bool)
    out = np.ones_like(S)
    ranks = rankdata(S[off])
    span = ranks.max() - ranks.min()
    out[off] = (ranks - ranks.min()) / span if span > 0 else 0.5
    return out


def sorted_similarity(
    X: np.ndarray,
    labels: pd.Series | np.ndarray | Sequence,
    similarity: Similarity = "cosine",
    categories: Sequence | None = None,
    ranks: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Similarity matrix of the rows of ``X`` with rows and columns sorted by category.

    Returns (matrix, order): ``order`` indexes the rows of ``X`` and ``labels``. With
    ``ranks`` the entries are percentile ranks (see :func:`percentile_ranks`).
    """
    X = check_feature_matrix(X, "X")
    array = _labels(labels, len(X))
    order = category_order(array, categories)
    S = similarity_matrix(X[order], similarity)
    return (percentile_ranks(S) if ranks else S), order


def block_contrast(S: np.ndarray, labels: pd.Series | np.ndarray | Sequence) -> float:
    """(mean within-category − mean between-category similarity) / std of all off-diagonal
    similarities: how strongly a space groups items by category (0 = not at all)."""
    S, array = _square(S, labels)
    return _contrast(S, array, ~np.eye(len(S), dtype=bool))


def block_contrast_interval(
    S: np.ndarray,
    labels: pd.Series | np.ndarray | Sequence,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`block_contrast` over items.

    Each replicate draws the items with replacement and computes the contrast on the drawn
    items' similarities; pairs of two copies of one item are left out (they are not pairs of
    items, and their similarity is the item's own).

    Parameters
    ----------
    S : ndarray of shape (n, n)
        Similarities of n items.
    labels : array-like of shape (n,)
        Each item's category.
    n_bootstrap : int, default=1000
        Replicates; 0 gives NaN bounds.
    confidence : float, default=0.95
        Coverage of the interval.
    seed : int, default=0
        Seed of the resampling.

    Returns
    -------
    tuple of float
        ``(low, high)``.

    Raises
    ------
    GlocalError
        For a non-square ``S``, labels of another length, or fewer than two categories.
    """
    from glocal.evaluation.intervals import bootstrap_interval

    S, array = _square(S, labels)
    _contrast(S, array, ~np.eye(len(S), dtype=bool))  # the same checks as the estimate

    def statistic(index: np.ndarray) -> float:
        try:
            return _contrast(S[np.ix_(index, index)], array[index], index[:, None] != index)
        except GlocalError:  # a replicate without two items of one category
            return float("nan")

    low, high, _ = bootstrap_interval(statistic, len(S), n_bootstrap, confidence, seed)
    return low, high


def _square(S: np.ndarray, labels: pd.Series | np.ndarray | Sequence) -> tuple[np.ndarray, Any]:
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise GlocalError(f"S: expected a square matrix, got shape {S.shape}")
    return S, _labels(labels, len(S))


def _contrast(S: np.ndarray, array: np.ndarray, pairs: np.ndarray) -> float:
    """The block contrast over the item pairs marked in ``pairs`` (no item with itself)."""
    same = array[:, None] == array[None, :]
    within, between = S[same & pairs], S[~same]
    if len(within) == 0 or len(between) == 0:
        raise GlocalError("labels: need at least two categories, one with two or more items")
    spread = S[pairs].std()
    if spread == 0:
        raise GlocalError("S: all off-diagonal similarities are equal; the contrast is undefined")
    return float((within.mean() - between.mean()) / spread)


def pca_2d(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of the centred rows of ``X`` on its first two principal components, and the
    fraction of the total variance each explains. Component signs are fixed so that the
    largest-magnitude loading is positive (deterministic across runs)."""
    X = np.asarray(check_feature_matrix(X, "X"), dtype=np.float64)
    if len(X) < 3 or X.shape[1] < 2:
        raise GlocalError(f"X: PCA to 2-D needs at least 3 rows and 2 columns, got {X.shape}")
    centred = X - X.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2]
    flip = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    components = components * flip[:, None]
    variance = s**2
    return centred @ components.T, variance[:2] / variance.sum()


@dataclass(frozen=True)
class SpacesStructure:
    """Several representations of the same labelled items, sorted by category.

    ``order`` sorts the items (positions into the inputs); ``labels`` are the sorted labels;
    ``matrices`` the rank-scaled sorted similarity matrices per space; ``summary`` one row per
    space (similarity, block contrast); ``pca`` one row per space and item (pc1, pc2, share of
    variance of each component).
    """

    order: np.ndarray
    labels: np.ndarray
    spans: pd.DataFrame
    matrices: dict[str, np.ndarray]
    summary: pd.DataFrame
    pca: pd.DataFrame


def describe_spaces(
    spaces: Mapping[str, tuple[np.ndarray, Similarity]],
    labels: pd.Series | np.ndarray | Sequence,
    categories: Sequence | None = None,
    names: Sequence | None = None,
    n_bootstrap: int = 0,
    seed: int = 0,
) -> SpacesStructure:
    """Category-sorted similarity matrices, block contrast and 2-D PCA of several spaces.

    ``spaces`` maps a name to (features, similarity) for the same items in the same order as
    ``labels`` (e.g. ``{"original": (X, "cosine"), "human": (H, "dot")}``); ``names`` are
    optional item names carried into the PCA table. Block contrast uses the raw similarities;
    the matrices are rank-scaled so that spaces with different scales share one colour map.
    With ``n_bootstrap`` replicates the summary also holds ``block_contrast_low`` and
    ``block_contrast_high``, a bootstrap interval over items (:func:`block_contrast_interval`).
    """
    if not spaces:
        raise GlocalError("spaces: give at least one representation")
    array = _labels(labels)
    order = category_order(array, categories)
    matrices, rows, points = {}, [], []
    for name, (X, similarity) in spaces.items():
        X = check_feature_matrix(X, f"spaces[{name!r}]")
        if len(X) != len(array):
            raise GlocalError(
                f"spaces[{name!r}] has {len(X)} rows but labels has {len(array)}; give the same "
                "items in the same order"
            )
        S = similarity_matrix(X[order], similarity)
        matrices[name] = percentile_ranks(S)
        row = {
            "space": name,
            "similarity": similarity,
            "n_items": len(X),
            "n_features": X.shape[1],
            "block_contrast": block_contrast(S, array[order]),
        }
        if n_bootstrap:
            row["block_contrast_low"], row["block_contrast_high"] = block_contrast_interval(
                S, array[order], n_bootstrap, seed=seed
            )
        rows.append(row)  # fmt: skip
        coords, explained = pca_2d(similarity_rows(X[order], similarity))
        points.append(pd.DataFrame({
            "space": name, "position": order, "category": array[order],
            "item": np.asarray(names)[order] if names is not None else order,
            "pc1": coords[:, 0], "pc2": coords[:, 1],
            "explained_pc1": explained[0], "explained_pc2": explained[1],
        }))  # fmt: skip
    return SpacesStructure(
        order=order,
        labels=array[order],
        spans=category_spans(array[order]),
        matrices=matrices,
        summary=pd.DataFrame(rows),
        pca=pd.concat(points, ignore_index=True),
    )
