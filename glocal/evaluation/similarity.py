"""Similarity kernels of representations, and which one a representation uses.

Three kernels, one place: ``"dot"`` (dot products), ``"cosine"`` (dot products of unit rows)
and ``"pearson"`` (the Pearson correlation of two feature vectors: the cosine after centring
each vector on its own mean). Every evaluation that takes a ``similarity=`` argument accepts
all three. Raw network features are compared with cosine similarity and transformed features
with dot products, as in the paper (:func:`default_similarity`). The kernels themselves live
in the core (:mod:`glocal.scoring`) and are re-exported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from glocal.errors import GlocalError
from glocal.scoring import KERNELS as KERNELS  # re-exported
from glocal.scoring import Similarity, similarity_rows
from glocal.scoring import similarity_matrix as similarity_matrix  # re-exported


def default_similarity(transformed: bool) -> Similarity:
    """``"dot"`` for transformed features, ``"cosine"`` for raw network features (the paper)."""
    return "dot" if transformed else "cosine"


def apply_transform(transform: Any, *arrays: np.ndarray) -> list[np.ndarray]:
    """Each array mapped by ``transform``: None (unchanged), a fitted estimator, or a function."""
    if transform is None:
        return list(arrays)
    apply = transform.transform if hasattr(transform, "transform") else transform
    return [apply(a) for a in arrays]


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
