"""Alignment with human judgments: odd-one-out accuracy and representational similarity analysis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from glocal.errors import GlocalError
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
    similarity : {"dot", "cosine"}, default="dot"
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


@dataclass(frozen=True)
class RSAResult:
    """Spearman RSA between two representations, with a percentile bootstrap interval.

    Returned by :func:`rsa`.

    Attributes
    ----------
    rho : float
        Spearman correlation between the upper triangles of the two similarity matrices
        (NaN when either is constant).
    ci_low : float
        Lower bound of the percentile bootstrap interval (NaN without replicates).
    ci_high : float
        Upper bound of that interval (NaN without replicates).
    n_objects : int
        Number of objects m.
    confidence : float
        Level of the interval.
    bootstrap : ndarray of shape (n_bootstrap,)
        The correlation of every bootstrap replicate.
    """

    rho: float
    ci_low: float
    ci_high: float
    n_objects: int
    confidence: float
    bootstrap: np.ndarray = field(repr=False)


def _tie_groups(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Start offsets and per-position group ids of runs of equal values; None without ties."""
    new_group = np.empty(len(sorted_values), dtype=bool)
    new_group[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new_group[1:])
    if new_group.all():
        return None
    return np.flatnonzero(new_group), (np.cumsum(new_group) - 1).astype(np.int32)


def _midranks(
    sorted_weights: np.ndarray, groups: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """Mid-ranks of sorted values when position t occurs ``sorted_weights[t]`` times."""
    weight = sorted_weights if groups is None else np.add.reduceat(sorted_weights, groups[0])
    ranks = np.cumsum(weight)
    ranks -= (weight - 1.0) / 2.0
    return ranks if groups is None else ranks[groups[1]]


class _PairRanker:
    """Spearman correlation of two pair-value vectors under integer multiplicity weights.

    Both vectors are sorted once; each call then costs a few O(pairs) passes, which makes an
    exact object bootstrap affordable for thousands of objects (millions of pairs).
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, rows: np.ndarray, cols: np.ndarray):
        rows, cols = rows.astype(np.int32), cols.astype(np.int32)
        order_a = np.argsort(a, kind="stable")
        self.rows_a, self.cols_a = rows[order_a], cols[order_a]
        self.groups_a = _tie_groups(a[order_a])
        b = b[order_a]
        self.perm = np.argsort(b, kind="stable").astype(np.int32)  # b's order in a-sorted slots
        self.rows_b, self.cols_b = self.rows_a[self.perm], self.cols_a[self.perm]
        self.groups_b = _tie_groups(b[self.perm])

    def __call__(self, counts: np.ndarray) -> float:
        """Spearman rho over the multiset where pair (i, j) occurs counts[i]·counts[j] times."""
        rank_a = _midranks(counts[self.rows_a] * counts[self.cols_a], self.groups_a)[self.perm]
        w = counts[self.rows_b] * counts[self.cols_b]
        rank_b = _midranks(w, self.groups_b)
        mean = (w.sum() + 1.0) / 2.0  # the mean mid-rank of any weighted ranking
        rank_a -= mean
        rank_b -= mean
        wa = w * rank_a
        denom = np.sqrt((wa @ rank_a) * ((w * rank_b) @ rank_b))
        return float((wa @ rank_b) / denom) if denom > 0 else float("nan")


def rsa(
    X: np.ndarray,
    reference: np.ndarray,
    similarity: Similarity = "cosine",
    reference_similarity: Similarity = "dot",
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = False,
) -> RSAResult:
    """Spearman correlation between the upper triangles of two objects' similarity matrices.

    ``X`` (m, p) and ``reference`` (m, q) describe the same m objects (e.g. model features and
    the VICE human embedding, whose dot products model human similarity). The interval is a
    percentile bootstrap over objects: each replicate draws m objects with replacement and
    correlates all pairs of distinct draws (pairs of two copies of one object are left out),
    computed exactly with multiplicity weights instead of materialising the resampled matrix.

    Parameters
    ----------
    X : ndarray of shape (m, p)
        The representation to test.
    reference : ndarray of shape (m, q)
        The reference of the same objects, in the same order.
    similarity, reference_similarity : {"cosine", "dot"}
        How the similarity matrices of ``X`` and of ``reference`` are formed.
    n_bootstrap : int
        Bootstrap replicates over objects (0: no interval).
    confidence : float
        Level of the percentile interval.
    seed : int
        Seeds the bootstrap.
    progress : bool
        Show a progress bar over replicates.
    """
    X = check_feature_matrix(X, "X")
    reference = check_feature_matrix(reference, "reference")
    if len(X) != len(reference):
        raise GlocalError(
            f"X has {len(X)} rows but reference has {len(reference)}; both must list the same "
            "objects in the same order"
        )
    if len(X) < 3:
        raise GlocalError(f"X: RSA needs at least 3 objects, got {len(X)}")
    if n_bootstrap < 0:
        raise GlocalError(f"n_bootstrap must be 0 or positive, got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise GlocalError(f"confidence must lie in (0, 1), got {confidence}")
    m = len(X)
    rows, cols = np.triu_indices(m, 1)
    ranker = _PairRanker(
        similarity_matrix(X, similarity)[rows, cols],
        similarity_matrix(reference, reference_similarity)[rows, cols],
        rows,
        cols,
    )
    rho = ranker(np.ones(m))
    rng = np.random.default_rng(seed)
    boots = np.empty(n_bootstrap)
    for b in tqdm(range(n_bootstrap), desc="RSA bootstrap", disable=not progress):
        boots[b] = ranker(np.bincount(rng.integers(0, m, size=m), minlength=m).astype(float))
    tail = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(boots, [tail, 1.0 - tail]) if n_bootstrap else (np.nan, np.nan)
    return RSAResult(
        rho=rho,
        ci_low=float(low),
        ci_high=float(high),
        n_objects=m,
        confidence=confidence,
        bootstrap=boots,
    )
