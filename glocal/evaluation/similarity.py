"""Similarity kernels of representations, and which one a representation uses.

Three kernels, one place: ``"dot"`` (dot products), ``"cosine"`` (dot products of unit rows)
and ``"pearson"`` (the Pearson correlation of two feature vectors: the cosine after centring
each vector on its own mean). Every evaluation that takes a ``similarity=`` argument accepts
all three. Raw network features are compared with cosine similarity and transformed features
with dot products, as in the paper (:func:`default_similarity`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from glocal.errors import GlocalError

Similarity = Literal["dot", "cosine", "pearson"]
#: The similarity kernels every ``similarity=`` argument accepts.
KERNELS: tuple[str, ...] = ("dot", "cosine", "pearson")


def default_similarity(transformed: bool) -> Similarity:
    """``"dot"`` for transformed features, ``"cosine"`` for raw network features (the paper)."""
    return "dot" if transformed else "cosine"


def apply_transform(transform: Any, *arrays: np.ndarray) -> list[np.ndarray]:
    """Each array mapped by ``transform``: None (unchanged), a fitted estimator, or a function."""
    if transform is None:
        return list(arrays)
    apply = transform.transform if hasattr(transform, "transform") else transform
    return [apply(a) for a in arrays]


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


def paired_similarity(
    A: np.ndarray, B: np.ndarray, similarity: Similarity = "cosine"
) -> np.ndarray:
    """The similarity of each row of ``A`` with the same row of ``B`` (float64, one per row).

    Parameters
    ----------
    A, B : ndarray of shape (n, p)
        Two sets of feature vectors; row i of ``A`` is compared with row i of ``B``.
    similarity : {"dot", "cosine", "pearson"}, default="cosine"
        The kernel.

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    GlocalError
        For arrays of different shapes, an unknown kernel, or rows the kernel is undefined for
        (all-zero rows with ``"cosine"``, constant rows with ``"pearson"``).
    """
    A, B = np.asarray(A), np.asarray(B)
    if A.shape != B.shape or A.ndim != 2:
        raise GlocalError(
            f"paired similarity needs two 2-D arrays of the same shape, got {A.shape} and {B.shape}"
        )
    return (similarity_rows(A, similarity) * similarity_rows(B, similarity)).sum(axis=1)


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
