"""Similarity of representations: dot products or cosines, and which one a representation uses.

Raw network features are compared with cosine similarity and transformed features with dot
products, as in the paper (:func:`default_similarity`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from glocal.errors import GlocalError

Similarity = Literal["dot", "cosine"]


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
    """Pairwise similarity matrix (float64) of the rows of ``X``: dot products or cosines."""
    rows = similarity_rows(X, similarity)
    return rows @ rows.T


def similarity_rows(X: np.ndarray, similarity: Similarity) -> np.ndarray:
    """Rows whose dot products are the requested similarity (unit rows for cosine), float64."""
    X = np.asarray(X, dtype=np.float64)
    if similarity == "cosine":
        return _unit_rows(X)
    if similarity != "dot":
        raise GlocalError(f"similarity must be 'dot' or 'cosine', got {similarity!r}")
    return X


def _unit_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if (norms == 0).any():
        raise GlocalError(
            f"cosine similarity is undefined for {int((norms == 0).sum())} all-zero rows of X"
        )
    return X / norms
