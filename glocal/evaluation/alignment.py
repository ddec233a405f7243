"""Alignment with human odd-one-out choices: triplet similarities and odd-one-out accuracy.

Representational similarity analysis lives in :mod:`glocal.evaluation.rsa`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from glocal.evaluation.similarity import Similarity, similarity_matrix, similarity_rows
from glocal.io import check_feature_matrix
from glocal.triplets import validate_triplets

_DENSE_LIMIT = 8192  # above this many objects, gather rows instead of building S


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


def answered_correctly(similarities: Any) -> Any:
    """The rule: whether each triplet's human pair is strictly the most similar pair (ties are
    wrong), given its similarities (s_ij, s_ik, s_jk) per row as a NumPy array or a torch
    tensor; a boolean array (or tensor) of one value per row."""
    s = similarities
    return (s[:, 0] > s[:, 1]) & (s[:, 0] > s[:, 2])
