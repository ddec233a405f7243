"""Local structure: nearest neighbours and how many of them a transform keeps.

``nearest_neighbours`` and ``shared_fraction`` live in the core (:mod:`glocal.scoring`, which
the search scores with) and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.stats import rankdata

from glocal.errors import GlocalError
from glocal.io import check_feature_matrix
from glocal.scoring import Similarity, similarity_rows
from glocal.scoring import nearest_neighbours as nearest_neighbours  # re-exported
from glocal.scoring import shared_fraction as shared_fraction  # re-exported


def _prepare(X: np.ndarray, similarity: Similarity, where: str) -> np.ndarray:
    return similarity_rows(check_feature_matrix(X, where), similarity)


def _check_pair(X: np.ndarray, Y: np.ndarray) -> None:
    if np.ndim(X) != 2 or np.ndim(Y) != 2:
        raise GlocalError(
            f"X and Y must be 2-D feature matrices, got shapes {np.shape(X)} and {np.shape(Y)}"
        )
    if len(X) != len(Y):
        raise GlocalError(
            f"X has {len(X)} rows but Y has {len(Y)}; pass the original and transformed "
            "features of the same held-out items"
        )


def neighbour_overlap(
    X: np.ndarray,
    Y: np.ndarray,
    ks: Sequence[int] = (1, 5, 10, 50),
    similarity: Similarity = "cosine",
    similarity_y: Similarity | None = None,
    chunk_size: int = 2048,
) -> dict[int, float]:
    """Mean fraction of shared k-nearest neighbours between two representations of the same items.

    ``X`` holds the original and ``Y`` the transformed features of a held-out set; for each k
    the result is ``mean_i |N_k^X(i) ∩ N_k^Y(i)| / k`` (an item is not its own neighbour).

    Parameters
    ----------
    X, Y : ndarray of shape (n, p) and (n, q)
        Two representations of the same n items, in the same order.
    ks : sequence of int
        Neighbourhood sizes.
    similarity : {"cosine", "dot", "pearson"}
        Similarity that defines the neighbourhoods in ``X``.
    similarity_y : {"cosine", "dot", "pearson"} or None
        The same for ``Y`` (default: ``similarity``).
    chunk_size : int
        Rows compared at a time (memory is O(chunk_size · n)).

    Returns
    -------
    dict
        ``{k: overlap}``, each in [0, 1]; random neighbourhoods give about ``k / (n - 1)``.
    """
    overlaps = item_overlaps(X, Y, ks, similarity, similarity_y, chunk_size)
    return {k: float(values.mean()) for k, values in overlaps.items()}


def item_overlaps(
    X: np.ndarray,
    Y: np.ndarray,
    ks: Sequence[int] = (1, 5, 10, 50),
    similarity: Similarity = "cosine",
    similarity_y: Similarity | None = None,
    chunk_size: int = 2048,
) -> dict[int, np.ndarray]:
    """Each item's fraction of shared k nearest neighbours, for every k of ``ks``.

    The per-item values behind :func:`neighbour_overlap` (their means) and the unit rows of
    :func:`glocal.evaluation.comparison.compare_units`; the neighbours are found once, for the
    largest k. Parameters as in :func:`neighbour_overlap`.

    Returns
    -------
    dict
        ``{k: ndarray of shape (n,)}`` in increasing k, values in [0, 1].
    """
    _check_pair(X, Y)
    ks = sorted({int(k) for k in ks})
    if not ks:
        raise GlocalError("ks: give at least one neighbourhood size")
    k_max = ks[-1]
    nx = nearest_neighbours(X, k_max, similarity, chunk_size)
    ny = nearest_neighbours(Y, k_max, similarity_y or similarity, chunk_size)
    return {k: shared_fraction(nx[:, :k], ny[:, :k]) for k in ks}


def per_item_overlap(
    X: np.ndarray,
    Y: np.ndarray,
    k: int = 10,
    similarity: Similarity = "cosine",
    similarity_y: Similarity | None = None,
    chunk_size: int = 2048,
) -> np.ndarray:
    """Each item's fraction of shared k nearest neighbours between two representations.

    Its mean is :func:`neighbour_overlap`; the per-item values give that mean's interval over
    items (:func:`glocal.evaluation.intervals.mean_interval`) and allow paired comparisons.

    Parameters
    ----------
    X, Y : ndarray of shape (n, p) and (n, q)
        Two representations of the same n items, in the same order.
    k : int, default=10
        Neighbourhood size.
    similarity, similarity_y : {"cosine", "dot", "pearson"}
        As in :func:`neighbour_overlap`.
    chunk_size : int, default=2048
        Rows compared at a time.

    Returns
    -------
    ndarray of shape (n,)
        Values in [0, 1].
    """
    return item_overlaps(X, Y, (k,), similarity, similarity_y, chunk_size)[int(k)]


def _neighbour_similarities(Z: np.ndarray, neighbours: np.ndarray, chunk_size: int) -> np.ndarray:
    out = np.empty(neighbours.shape)
    for start in range(0, len(Z), chunk_size):
        stop = min(start + chunk_size, len(Z))
        out[start:stop] = np.einsum("np,nkp->nk", Z[start:stop], Z[neighbours[start:stop]])
    return out


def neighbourhood_correlation(
    X: np.ndarray,
    Y: np.ndarray,
    k: int = 10,
    similarity: Similarity = "cosine",
    similarity_y: Similarity | None = None,
    method: Literal["spearman", "pearson"] = "spearman",
    chunk_size: int = 2048,
) -> float:
    """Mean over items of the correlation of their similarities to their k nearest neighbours.

    Each item's neighbourhood is its k nearest neighbours in ``X`` (the original features);
    the item's similarities to them in ``X`` and in ``Y`` are correlated (Spearman by default)
    and the correlations are averaged over items (items with constant similarities are skipped).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        The original features; they define each item's neighbourhood.
    Y : ndarray of shape (n, q)
        The transformed features of the same n items, in the same order.
    k : int, default=10
        Neighbourhood size, in [2, n - 1].
    similarity : {"cosine", "dot", "pearson"}, default="cosine"
        Similarity that defines the neighbourhoods and the similarities in ``X``.
    similarity_y : {"cosine", "dot", "pearson"} or None, default=None
        The similarity in ``Y`` (default: ``similarity``).
    method : {"spearman", "pearson"}, default="spearman"
        The correlation.
    chunk_size : int, default=2048
        Rows compared at a time (memory is O(chunk_size · n)).

    Returns
    -------
    float
        The mean correlation over items, skipping those whose similarities are constant in
        ``X`` or in ``Y``.

    Raises
    ------
    GlocalError
        For ``X`` and ``Y`` that are not finite, real 2-D arrays with the same number of rows,
        ``k`` outside [2, n - 1], an unknown ``method`` or ``similarity``, all-zero rows with
        ``"cosine"``, or when every neighbourhood has constant similarities.
    """
    _check_pair(X, Y)
    if k < 2:
        raise GlocalError(f"k must be at least 2 to correlate similarities, got {k}")
    if method not in ("spearman", "pearson"):
        raise GlocalError(f"method must be 'spearman' or 'pearson', got {method!r}")
    neighbours = nearest_neighbours(X, k, similarity, chunk_size)
    Xs = _prepare(X, similarity, "X")
    Ys = _prepare(Y, similarity_y or similarity, "Y")
    sx = _neighbour_similarities(Xs, neighbours, chunk_size)
    sy = _neighbour_similarities(Ys, neighbours, chunk_size)
    if method == "spearman":
        sx, sy = rankdata(sx, axis=1), rankdata(sy, axis=1)
    sx = sx - sx.mean(axis=1, keepdims=True)
    sy = sy - sy.mean(axis=1, keepdims=True)
    denom = np.sqrt((sx * sx).sum(axis=1) * (sy * sy).sum(axis=1))
    valid = denom > 0
    if not valid.any():
        raise GlocalError(
            "every neighbourhood has constant similarities; the correlation is undefined"
        )
    return float(((sx * sy).sum(axis=1)[valid] / denom[valid]).mean())
