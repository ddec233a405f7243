"""What the core scores with: similarity kernels, the odd-one-out rule, neighbour overlap."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from glocal.errors import GlocalError
from glocal.io import check_feature_matrix
from glocal.triplets import validate_triplets

Similarity = Literal["dot", "cosine", "pearson"]
#: The similarity kernels every ``similarity=`` argument accepts.
KERNELS: tuple[str, ...] = ("dot", "cosine", "pearson")
_DENSE_LIMIT = 8192  # above this many objects, gather rows instead of building S


# --- similarity kernels ---------------------------------------------------------------------


def similarity_rows(X: np.ndarray, similarity: Similarity) -> np.ndarray:
    """Rows whose dot products are the requested similarity, float64.

    ``"dot"``: the rows themselves; ``"cosine"``: unit rows; ``"pearson"``: rows centred on
    their own mean, then scaled to unit length.
    """
    X = np.asarray(X, dtype=np.float64)
    if similarity == "dot":
        return X
    if similarity == "cosine":
        return _unit_rows(X, "cosine similarity", "all-zero")
    if similarity == "pearson":
        return _unit_rows(X - X.mean(axis=1, keepdims=True), "Pearson correlation", "constant")
    raise GlocalError(
        f"similarity must be one of {', '.join(map(repr, KERNELS))}, got {similarity!r}"
    )


def _unit_rows(X: np.ndarray, kernel: str, what: str) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if (norms == 0).any():
        raise GlocalError(
            f"{kernel} is undefined for {int((norms == 0).sum())} {what} rows of X; remove "
            "them or choose another similarity"
        )
    return X / norms


def similarity_matrix(X: np.ndarray, similarity: Similarity = "dot") -> np.ndarray:
    """Pairwise similarity matrix (float64) of the rows of ``X`` under a kernel of :data:`KERNELS`.

    Examples
    --------
    >>> X = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 7.0]])
    >>> round(float(similarity_matrix(X, "pearson")[0, 1]), 4)  # np.corrcoef(X)[0, 1]
    0.9934
    """
    rows = similarity_rows(X, similarity)
    return rows @ rows.T


# --- odd-one-out triplets -------------------------------------------------------------------


def answered_correctly(similarities: Any) -> Any:
    """The rule: whether each triplet's human pair is strictly the most similar pair (ties are
    wrong), given its similarities (s_ij, s_ik, s_jk) per row as a NumPy array or a torch
    tensor; a boolean array (or tensor) of one value per row."""
    s = similarities
    return (s[:, 0] > s[:, 1]) & (s[:, 0] > s[:, 2])


def triplet_similarities(
    X: np.ndarray, triplets: np.ndarray, similarity: Similarity = "dot", chunk_size: int = 262144
) -> np.ndarray:
    """Similarities (s_ij, s_ik, s_jk) of every triplet (i, j, k), shape (n, 3), float64."""
    X = check_feature_matrix(X, "X")
    triplets = validate_triplets(triplets, len(X))
    if len(X) <= _DENSE_LIMIT:
        S = similarity_matrix(X, similarity)
        i, j, k = triplets.T
        return np.stack([S[i, j], S[i, k], S[j, k]], axis=1)
    X = similarity_rows(X, similarity)
    out = np.empty((len(triplets), 3))
    for start in range(0, len(triplets), chunk_size):
        a, b, c = (X[triplets[start : start + chunk_size, col]] for col in range(3))
        out[start : start + chunk_size] = np.stack(
            [(a * b).sum(1), (a * c).sum(1), (b * c).sum(1)], axis=1
        )
    return out


def triplet_correct(
    X: np.ndarray, triplets: np.ndarray, similarity: Similarity = "dot"
) -> np.ndarray:
    """Per triplet, whether its human pair (i, j) is strictly the most similar pair in ``X``.

    The per-triplet form of :func:`odd_one_out_accuracy` (its mean), for paired comparisons of
    two representations on the same triplets.

    Parameters
    ----------
    X : ndarray of shape (m, p)
        Features of the m objects.
    triplets : ndarray of shape (n, 3)
        Rows (i, j, k): the pair (i, j) people kept together and the odd one out k (0-based).
    similarity : {"dot", "cosine"}, default="dot"
        How object pairs are compared in ``X``.

    Returns
    -------
    ndarray of shape (n,), bool
        True where s_ij > s_ik and s_ij > s_jk (ties are wrong).

    Raises
    ------
    GlocalError
        For invalid features or triplets, as :func:`odd_one_out_accuracy`.
    """
    return answered_correctly(triplet_similarities(X, triplets, similarity))


def odd_one_out_accuracy(
    X: np.ndarray, triplets: np.ndarray, similarity: Similarity = "dot"
) -> float:
    """Fraction of triplets whose human pair (i, j) is strictly the most similar pair in ``X``.

    Ties count as wrong. Use ``similarity="cosine"`` for zero-shot accuracy of raw network
    features (as in the paper) and ``"dot"`` for transformed features.

    Parameters
    ----------
    X : ndarray of shape (m, p)
        Features of the m objects.
    triplets : ndarray of shape (n, 3)
        Rows (i, j, k) of 0-based object indices: the pair (i, j) people kept together and the
        odd one out k.
    similarity : {"dot", "cosine", "pearson"}, default="dot"
        How object pairs are compared in ``X``.

    Returns
    -------
    float
        The accuracy, in [0, 1].

    Raises
    ------
    GlocalError
        For an ``X`` that is not a finite, real 2-D array, an invalid triplet array (see
        :func:`glocal.validate_triplets`), an unknown ``similarity``, or all-zero rows with
        ``"cosine"``.
    """
    return float(triplet_correct(X, triplets, similarity).mean())


# --- nearest neighbours ---------------------------------------------------------------------


def nearest_neighbours(
    X: np.ndarray, k: int, similarity: Similarity = "cosine", chunk_size: int = 2048
) -> np.ndarray:
    """Indices (n, k) of each row's k most similar other rows, most similar first.

    Works through ``chunk_size`` rows at a time, so memory is O(chunk_size · n).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        The features.
    k : int
        Neighbours per row, in [1, n - 1]; a row is not its own neighbour.
    similarity : {"cosine", "dot", "pearson"}, default="cosine"
        Similarity that defines the neighbours.
    chunk_size : int, default=2048
        Rows compared at a time.

    Returns
    -------
    ndarray of shape (n, k)
        int64 row indices of each row's neighbours, most similar first.

    Raises
    ------
    GlocalError
        For an ``X`` that is not a finite, real 2-D array, an unknown ``similarity``, all-zero
        rows with ``"cosine"``, or ``k`` outside [1, n - 1].
    """
    Xs = similarity_rows(check_feature_matrix(X, "X"), similarity)
    n = len(Xs)
    if not 1 <= k < n:
        raise GlocalError(f"k must lie in [1, {n - 1}] for {n} rows, got {k}")
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        sims = Xs[start:stop] @ Xs.T
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        part_sims = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_sims, axis=1, kind="stable")
        out[start:stop] = np.take_along_axis(part, order, axis=1)
    return out


def shared_fraction(nx: np.ndarray, ny: np.ndarray) -> np.ndarray:
    """Each row's fraction of neighbour indices that ``nx`` and ``ny`` share.

    ``nx`` and ``ny`` are (n, k) neighbour lists of the same items, e.g. two results of
    :func:`nearest_neighbours`; an item's lists hold no repeats. Use it to compare many
    representations with one reference whose neighbours are computed once.
    """
    if np.ndim(nx) != 2 or np.shape(nx) != np.shape(ny):
        raise GlocalError(
            f"nx and ny must be neighbour lists of one shape (n items, k neighbours), got "
            f"shapes {np.shape(nx)} and {np.shape(ny)}; pass nearest_neighbours(X, k) and "
            "nearest_neighbours(Y, k) of the same items with the same k"
        )
    both = np.sort(np.concatenate([nx, ny], axis=1), axis=1)
    return (both[:, 1:] == both[:, :-1]).sum(axis=1) / nx.shape[1]
