"""Representational similarity analysis: a representation's pairwise similarities against a
reference (another representation, a human similarity or dissimilarity matrix, or human ratings
of listed item pairs), with bootstrap intervals and a leave-one-subject-out noise ceiling.

Every comparison correlates two vectors of pair values, Spearman (ranks, ties as mid-ranks) or
Pearson. A *dissimilarity* (a distance, a rating of difference) is negated before it is
correlated, so a positive correlation always means that the model finds similar what people
find similar; correlating a model's dissimilarities (1 − cosine) with a human dissimilarity
matrix, as the official gLocal code does, gives the same value. Matrices are read through their
upper triangle (``i < j``, row by row: the order of SciPy's ``pdist`` and MATLAB's ``pdist``).

Intervals are percentile bootstraps. Over objects (:func:`rsa`, :func:`rsa_matrix`): each
replicate draws the m objects with replacement and correlates all pairs of distinct draws,
computed exactly with multiplicity weights instead of materialising the resampled matrix. Over
pairs (:func:`pair_alignment`): each replicate draws the listed pairs with replacement. Two
results of the same seed and units were drawn on the same resamples, so their difference has a
paired interval (:func:`rsa_difference`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.spatial.distance import squareform
from scipy.stats import ConstantInputWarning, pearsonr, spearmanr
from tqdm import tqdm

from glocal._params import verbose_level
from glocal.errors import GlocalError
from glocal.evaluation.intervals import bootstrap_interval, percentile_interval
from glocal.evaluation.similarity import Similarity, paired_similarity, similarity_matrix
from glocal.io import check_feature_matrix

Method = Literal["spearman", "pearson"]
#: The correlations a comparison can use.
METHODS: tuple[str, ...] = ("spearman", "pearson")
MatrixKind = Literal["similarity", "dissimilarity"]
#: What a human matrix or rating holds: larger means more similar, or more different.
KINDS: tuple[str, ...] = ("similarity", "dissimilarity")
#: Two correlations closer than this count as equal (float rounding of identical rankings).
EQUAL_WITHIN = 1e-12


@dataclass(frozen=True)
class RSAResult:
    """A correlation between model and reference pair values, with a percentile bootstrap
    interval.

    Returned by :func:`rsa`, :func:`rsa_matrix` and :func:`pair_alignment`.

    Attributes
    ----------
    rho : float
        The correlation (Spearman's rho or Pearson's r, see ``method``) between the model's and
        the reference's pair values; NaN when either is constant.
    ci_low : float
        Lower bound of the percentile bootstrap interval (NaN without replicates).
    ci_high : float
        Upper bound of that interval (NaN without replicates).
    n_objects : int
        Number of objects (items) the pairs are made of.
    confidence : float
        Level of the interval.
    bootstrap : ndarray of shape (n_bootstrap,)
        The correlation of every bootstrap replicate.
    method : {"spearman", "pearson"}
        The correlation.
    n_pairs : int
        Number of pairs correlated.
    resampled : {"objects", "pairs"}
        The bootstrap's unit.
    seed : int
        The bootstrap's seed: results of equal seed and units share their resamples.
    """

    rho: float
    ci_low: float
    ci_high: float
    n_objects: int
    confidence: float
    bootstrap: np.ndarray = field(repr=False)
    method: str = "spearman"
    n_pairs: int = 0
    resampled: str = "objects"
    seed: int = 0


@dataclass(frozen=True)
class NoiseCeiling:
    """How well one participant's judgements predict the group's: the best a model can expect.

    Returned by :func:`noise_ceiling`.

    Attributes
    ----------
    lower : float
        Mean over participants of the correlation of their pair values with the mean of all
        *other* participants (leave one subject out): a model that matches the group exactly
        would reach at least about this.
    upper : float
        Mean over participants of the correlation with the mean of *all* participants (their
        own judgements included): an overestimate of the ceiling.
    n_subjects : int
        Number of participants.
    method : {"spearman", "pearson"}
        The correlation.
    per_subject : ndarray of shape (n_subjects, 2)
        Each participant's leave-one-out and all-participants correlation.
    """

    lower: float
    upper: float
    n_subjects: int
    method: str
    per_subject: np.ndarray = field(repr=False)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise GlocalError(f"method must be one of {METHODS}, got {method!r}")


def _check_kind(kind: str, where: str) -> None:
    if kind not in KINDS:
        raise GlocalError(f"{where}: kind must be one of {KINDS}, got {kind!r}")


def _check_bootstrap(n_bootstrap: int, confidence: float) -> None:
    if n_bootstrap < 0:
        raise GlocalError(f"n_bootstrap must be 0 or positive, got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise GlocalError(f"confidence must lie in (0, 1), got {confidence}")


# --- weighted correlations of pair values -------------------------------------------------------


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


class _PairCorrelation:
    """The correlation of two pair-value vectors under integer multiplicity weights.

    The weight of a pair is how often it occurs in a resample: ``counts[i]·counts[j]`` when
    objects are drawn (:meth:`objects`), the pair's own count when pairs are drawn
    (:meth:`pairs`). For Spearman both vectors are sorted once; each call then costs a few
    O(pairs) passes, which makes an exact object bootstrap affordable for thousands of objects
    (millions of pairs).
    """

    def __init__(
        self,
        a: np.ndarray,
        b: np.ndarray,
        method: str = "spearman",
        rows: np.ndarray | None = None,
        cols: np.ndarray | None = None,
    ):
        _check_method(method)
        self.method = method
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        # pairs are kept in a's sorted order (Spearman) or as given (Pearson)
        self.order = np.argsort(a, kind="stable") if method == "spearman" else np.arange(len(a))
        self.rows = None if rows is None else rows.astype(np.int32)[self.order]
        self.cols = None if cols is None else cols.astype(np.int32)[self.order]
        a, b = a[self.order], b[self.order]
        if method == "spearman":
            self.groups_a = _tie_groups(a)
            self.perm = np.argsort(b, kind="stable").astype(np.int32)  # b's order in a's slots
            self.groups_b = _tie_groups(b[self.perm])
        else:
            self.a, self.b = a, b

    def objects(self, counts: np.ndarray) -> float:
        """The correlation over the multiset where pair (i, j) occurs counts[i]·counts[j] times."""
        if self.rows is None or self.cols is None:
            raise GlocalError("this correlation was built without the pairs' objects")
        return self._weighted(counts[self.rows] * counts[self.cols])

    def pairs(self, counts: np.ndarray) -> float:
        """The correlation over the multiset where pair t occurs counts[t] times."""
        return self._weighted(np.asarray(counts, dtype=np.float64)[self.order])

    def _weighted(self, w: np.ndarray) -> float:
        if self.method == "pearson":
            total = w.sum()
            if total <= 0:  # every draw was one object: no pair of distinct draws
                return float("nan")
            da = self.a - (w @ self.a) / total
            db = self.b - (w @ self.b) / total
            wa = w * da
            denom = np.sqrt((wa @ da) * ((w * db) @ db))
            return float((wa @ db) / denom) if denom > 0 else float("nan")
        rank_a = _midranks(w, self.groups_a)[self.perm]
        w = w[self.perm]
        rank_b = _midranks(w, self.groups_b)
        mean = (w.sum() + 1.0) / 2.0  # the mean mid-rank of any weighted ranking
        rank_a -= mean
        rank_b -= mean
        wa = w * rank_a
        denom = np.sqrt((wa @ rank_a) * ((w * rank_b) @ rank_b))
        return float((wa @ rank_b) / denom) if denom > 0 else float("nan")


def correlate(a: np.ndarray, b: np.ndarray, method: Method = "spearman") -> float:
    """Spearman's rho (ties as mid-ranks) or Pearson's r of two vectors; NaN if one is constant
    or holds NaN.

    Examples
    --------
    >>> round(correlate(np.array([1.0, 2.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0, 9.0])), 4)
    0.9487
    """
    _check_method(method)
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if len(a) != len(b):
        raise GlocalError(f"correlate: the vectors differ in length ({len(a)} and {len(b)})")
    if len(a) < 2:
        raise GlocalError(f"correlate: need at least 2 values, got {len(a)}")
    # SciPy's (mid-ranks for ties); the bootstrap keeps _PairCorrelation, which weights pairs by
    # their multiplicity in a resample (SciPy has no weights; materialising a resample of 1854
    # objects and calling spearmanr took 1.43 s per replicate against 0.12 s weighted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)  # a constant vector: NaN
        return float((spearmanr if method == "spearman" else pearsonr)(a, b)[0])


def _object_bootstrap(
    correlation: _PairCorrelation, m: int, n_bootstrap: int, seed: int, verbose: int
) -> np.ndarray:
    """The correlation of ``n_bootstrap`` object resamples, drawn as :func:`bootstrap_interval`
    draws its units."""
    rng = np.random.default_rng(seed)
    boots = np.empty(n_bootstrap)
    for b in tqdm(range(n_bootstrap), desc="RSA bootstrap", disable=not verbose):
        boots[b] = correlation.objects(np.bincount(rng.integers(0, m, size=m), minlength=m) * 1.0)
    return boots


def _result(
    rho: float,
    boots: np.ndarray,
    n_objects: int,
    confidence: float,
    method: str,
    n_pairs: int,
    resampled: str,
    seed: int,
) -> RSAResult:
    low, high = percentile_interval(boots, confidence) if len(boots) else (np.nan, np.nan)
    return RSAResult(rho=rho, ci_low=float(low), ci_high=float(high), n_objects=n_objects,
                     confidence=confidence, bootstrap=boots, method=method, n_pairs=n_pairs,
                     resampled=resampled, seed=seed)  # fmt: skip


# --- representation against representation --------------------------------------------------


def rsa(
    X: np.ndarray,
    reference: np.ndarray,
    similarity: Similarity = "cosine",
    reference_similarity: Similarity = "dot",
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    verbose: int = 0,
    *,
    method: Method = "spearman",
    progress: bool | None = None,
) -> RSAResult:
    """The correlation between the upper triangles of two representations' similarity matrices.

    ``X`` (m, p) and ``reference`` (m, q) describe the same m objects (e.g. model features and
    the VICE human embedding, whose dot products model human similarity). The interval is a
    bootstrap over objects (see the module docstring).

    Parameters
    ----------
    X : ndarray of shape (m, p)
        The representation to test.
    reference : ndarray of shape (m, q)
        The reference of the same objects, in the same order.
    similarity, reference_similarity : {"cosine", "dot", "pearson"}
        The kernels that form the similarity matrices of ``X`` and of ``reference``.
    n_bootstrap : int, default=1000
        Bootstrap replicates over objects (0: no interval).
    confidence : float, default=0.95
        Level of the percentile interval.
    seed : int, default=0
        Seeds the bootstrap.
    verbose : int, default=0
        0: quiet; 1 or more: a progress bar over replicates.
    method : {"spearman", "pearson"}, default="spearman"
        The correlation of the two matrices' upper triangles (keyword only).
    progress : bool or None, default=None
        Deprecated name of ``verbose`` (``True`` is 1): accepted for one release, with a
        :class:`FutureWarning`.

    Returns
    -------
    RSAResult

    Raises
    ------
    GlocalError
        For feature matrices that are not finite real 2-D arrays or differ in rows, fewer than
        3 objects, an unknown kernel or method, or a bad ``n_bootstrap`` / ``confidence``.
    """
    X = check_feature_matrix(X, "X")
    reference = check_feature_matrix(reference, "reference")
    if len(X) != len(reference):
        raise GlocalError(
            f"X has {len(X)} rows but reference has {len(reference)}; both must list the same "
            "objects in the same order"
        )
    return _rsa_vectors(
        similarity_matrix(X, similarity),
        _upper(similarity_matrix(reference, reference_similarity)),
        method, n_bootstrap, confidence, seed, verbose_level(verbose, progress, "rsa"),
    )  # fmt: skip


def _upper(matrix: np.ndarray) -> np.ndarray:
    """The entries i < j of a square matrix, row by row (the diagonal and below are not read)."""
    return squareform(matrix, checks=False)


def _rsa_vectors(
    model_matrix: np.ndarray,
    reference_pairs: np.ndarray,
    method: str,
    n_bootstrap: int,
    confidence: float,
    seed: int,
    verbose: int,
) -> RSAResult:
    """RSA of a model similarity matrix (m, m) and reference values of its upper triangle."""
    _check_method(method)
    _check_bootstrap(n_bootstrap, confidence)
    m = len(model_matrix)
    if m < 3:
        raise GlocalError(f"X: RSA needs at least 3 objects, got {m}")
    rows, cols = np.triu_indices(m, 1)
    correlation = _PairCorrelation(model_matrix[rows, cols], reference_pairs, method, rows, cols)
    rho = correlation.objects(np.ones(m))
    boots = _object_bootstrap(correlation, m, n_bootstrap, seed, verbose)
    return _result(rho, boots, m, confidence, method, len(rows), "objects", seed)


# --- representation against a human matrix -------------------------------------------------


def upper_triangle(matrix: np.ndarray, where: str = "matrix") -> np.ndarray:
    """The pair values of a square matrix (m, m) or a condensed vector, in ``pdist`` order.

    A condensed vector (m(m − 1)/2,) is returned as is; of a square matrix, the entries
    ``i < j`` row by row (``matrix[np.triu_indices(m, 1)]``). The diagonal is never read.
    """
    values = np.asarray(matrix)
    if values.dtype.kind not in "biuf":
        raise GlocalError(f"{where}: expected a numeric matrix, got dtype {values.dtype}")
    if values.ndim == 2:
        if values.shape[0] != values.shape[1]:
            raise GlocalError(f"{where}: expected a square matrix, got shape {values.shape}")
        values = _upper(values)
    elif values.ndim != 1:
        raise GlocalError(
            f"{where}: expected a square (m, m) matrix or a condensed (m(m-1)/2,) vector, got "
            f"shape {values.shape}"
        )
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise GlocalError(f"{where}: {bad} pair values (off the diagonal) are NaN or infinite")
    return values


def _objects_of(n_pairs: int, where: str) -> int:
    """m such that m(m − 1)/2 = n_pairs."""
    m = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if m * (m - 1) // 2 != n_pairs:
        raise GlocalError(f"{where}: {n_pairs} values are not the pairs of any number of objects")
    return m


def rsa_matrix(
    X: np.ndarray,
    matrix: np.ndarray,
    kind: MatrixKind = "dissimilarity",
    similarity: Similarity = "cosine",
    method: Method = "spearman",
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    verbose: int = 0,
    progress: bool | None = None,
) -> RSAResult:
    """RSA of a representation against a human similarity or dissimilarity matrix.

    The model's similarity matrix of the rows of ``X`` (kernel ``similarity``) is correlated
    with the human matrix over the pairs i < j; a ``"dissimilarity"`` matrix is negated first.
    The interval is a bootstrap over objects (see the module docstring).

    Parameters
    ----------
    X : ndarray of shape (m, p)
        Features of the m objects, in the order of the matrix's rows.
    matrix : ndarray of shape (m, m) or (m(m - 1)/2,)
        The human matrix (only its upper triangle is read) or its condensed pair values in
        ``pdist`` order.
    kind : {"dissimilarity", "similarity"}, default="dissimilarity"
        What the matrix holds: distances / dissimilarities (an RDM) or similarities.
    similarity : {"cosine", "pearson", "dot"}, default="cosine"
        The model's kernel.
    method : {"spearman", "pearson"}, default="spearman"
        The correlation.
    n_bootstrap, confidence, seed, verbose, progress
        As in :func:`rsa`.

    Returns
    -------
    RSAResult

    Raises
    ------
    GlocalError
        For an ``X`` that is not a finite real 2-D array, a matrix that is not square (or
        condensed), has non-finite pair values or another number of objects than ``X``, an
        unknown ``kind``, kernel or method, or a bad ``n_bootstrap`` / ``confidence``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(20, 5))
    >>> distances = np.linalg.norm(X[:, None] - X[None], axis=-1)  # a "human" RDM
    >>> rsa_matrix(X, distances, "dissimilarity", similarity="dot", n_bootstrap=0).rho > 0.5
    True
    """
    _check_kind(kind, "rsa_matrix")
    X = check_feature_matrix(X, "X")
    pairs = upper_triangle(matrix, "matrix")
    m = _objects_of(len(pairs), "matrix")
    if m != len(X):
        raise GlocalError(
            f"matrix describes {m} objects but X has {len(X)} rows; give the features of the "
            "matrix's objects in its row order"
        )
    reference = -pairs if kind == "dissimilarity" else pairs
    return _rsa_vectors(similarity_matrix(X, similarity), reference, method, n_bootstrap,
                        confidence, seed,
                        verbose_level(verbose, progress, "rsa_matrix"))  # fmt: skip


def noise_ceiling(subjects: np.ndarray, method: Method = "spearman") -> NoiseCeiling:
    """The leave-one-subject-out noise ceiling of per-participant matrices.

    For each participant, the correlation of their pair values with the mean of every other
    participant's (``lower``) and with the mean of all participants' (``upper``), averaged over
    participants (Nili et al. 2014). Negating every matrix changes nothing, so similarity and
    dissimilarity matrices are treated alike.

    Parameters
    ----------
    subjects : ndarray of shape (s, m, m) or (s, m(m - 1)/2)
        One matrix (upper triangle read) or condensed vector per participant, s >= 2.
    method : {"spearman", "pearson"}, default="spearman"
        The correlation.

    Returns
    -------
    NoiseCeiling

    Raises
    ------
    GlocalError
        For fewer than two participants, matrices that are not square, or non-finite values.
    """
    _check_method(method)
    values = np.asarray(subjects)
    if values.ndim not in (2, 3) or len(values) < 2:
        raise GlocalError(
            "subjects: expected (s, m, m) matrices or (s, m(m-1)/2) vectors of s >= 2 "
            f"participants, got shape {values.shape}"
        )
    pairs = np.stack([upper_triangle(v, f"subjects[{i}]") for i, v in enumerate(values)])
    group = pairs.mean(axis=0)
    s = len(pairs)
    # the others' mean summed afresh (not total minus one): rounding must not break ties
    per_subject = np.array(
        [
            [correlate(p, np.delete(pairs, i, axis=0).mean(axis=0), method),
             correlate(p, group, method)]
            for i, p in enumerate(pairs)
        ]
    )  # fmt: skip
    lower, upper = np.nanmean(per_subject, axis=0)
    return NoiseCeiling(float(lower), float(upper), s, method, per_subject)


# --- listed pairs against human ratings -----------------------------------------------------


def pair_alignment(
    X: np.ndarray,
    pairs: np.ndarray,
    ratings: np.ndarray,
    similarity: Similarity = "cosine",
    method: Method = "spearman",
    kind: MatrixKind = "similarity",
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RSAResult:
    """The correlation between the model's similarity of listed item pairs and human ratings.

    For word-pair data such as SimLex-999: the kernel similarity of each pair's two items
    against the pair's mean human rating. The interval is a percentile bootstrap over pairs
    (:func:`glocal.evaluation.intervals.bootstrap_interval`).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Features of the items.
    pairs : ndarray of shape (k, 2)
        Row indices into ``X`` of each pair's two items, k >= 3.
    ratings : ndarray of shape (k,)
        The human rating of each pair.
    similarity : {"cosine", "pearson", "dot"}, default="cosine"
        The model's kernel.
    method : {"spearman", "pearson"}, default="spearman"
        The correlation.
    kind : {"similarity", "dissimilarity"}, default="similarity"
        What the ratings measure (a dissimilarity is negated).
    n_bootstrap : int, default=1000
        Bootstrap replicates over pairs (0: no interval).
    confidence : float, default=0.95
        Level of the interval.
    seed : int, default=0
        Seeds the bootstrap.

    Returns
    -------
    RSAResult
        With ``resampled="pairs"``, ``n_pairs`` = k and ``n_objects`` the number of distinct
        items in ``pairs``.

    Raises
    ------
    GlocalError
        For an ``X`` that is not a finite real 2-D array, pairs that are not (k, 2) integer row
        indices of ``X``, ratings that are not k finite numbers, fewer than 3 pairs, an unknown
        kernel, method or kind, or a bad ``n_bootstrap`` / ``confidence``.

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.7, 0.7]])
    >>> pairs = np.array([[0, 1], [0, 2], [1, 3], [2, 3]])
    >>> pair_alignment(X, pairs, np.array([9.0, 1.0, 6.0, 7.0]), n_bootstrap=0).rho
    0.8
    """
    _check_method(method)
    _check_kind(kind, "pair_alignment")
    _check_bootstrap(n_bootstrap, confidence)
    X = check_feature_matrix(X, "X")
    index = np.asarray(pairs)
    if index.ndim != 2 or index.shape[1] != 2 or index.dtype.kind not in "iu":
        raise GlocalError(
            f"pairs: expected an integer array of shape (k, 2), got {index.dtype} {index.shape}"
        )
    if len(index) < 3:
        raise GlocalError(f"pairs: need at least 3 pairs, got {len(index)}")
    if index.min() < 0 or index.max() >= len(X):
        raise GlocalError(f"pairs: row indices must lie in [0, {len(X)}) (the rows of X)")
    values = np.asarray(ratings, dtype=np.float64)
    if values.shape != (len(index),) or not np.isfinite(values).all():
        raise GlocalError(
            f"ratings: expected {len(index)} finite numbers (one per pair), got shape "
            f"{values.shape}" + ("" if values.shape != (len(index),) else " with NaN or inf")
        )
    model = paired_similarity(X[index[:, 0]], X[index[:, 1]], similarity)
    human = -values if kind == "dissimilarity" else values
    correlation = _PairCorrelation(model, human, method)
    k = len(index)
    rho = correlation.pairs(np.ones(k))
    _, _, boots = bootstrap_interval(
        lambda draw: correlation.pairs(np.bincount(draw, minlength=k)), k, n_bootstrap,
        confidence, seed,
    )  # fmt: skip
    n_items = len(np.unique(index))
    return _result(rho, boots, n_items, confidence, method, k, "pairs", seed)


def rsa_difference(
    a: RSAResult, b: RSAResult, confidence: float | None = None
) -> tuple[float, float, float]:
    """``a.rho − b.rho`` with a paired percentile bootstrap interval.

    ``a`` and ``b`` must come from the same units, seed and number of replicates (e.g. two
    representations, or two kernels, scored on the same matrix or pairs), so that replicate r
    of both was computed on the same resample.

    Returns
    -------
    tuple of float
        ``(difference, low, high)``; NaN bounds without replicates.

    Raises
    ------
    GlocalError
        When the two results were not drawn on the same resamples.
    """
    same = (a.resampled, a.n_objects, a.n_pairs, a.seed, len(a.bootstrap)) == (
        b.resampled, b.n_objects, b.n_pairs, b.seed, len(b.bootstrap))  # fmt: skip
    if not same:
        raise GlocalError(
            "rsa_difference: the two results were not bootstrapped on the same resamples "
            f"({a.resampled}, n={a.n_objects}/{a.n_pairs}, seed {a.seed}, {len(a.bootstrap)} "
            f"replicates vs {b.resampled}, n={b.n_objects}/{b.n_pairs}, seed {b.seed}, "
            f"{len(b.bootstrap)}); score both on the same data with the same seed"
        )
    level = a.confidence if confidence is None else confidence
    difference = _exact_zero(np.array([a.rho - b.rho]))[0]
    if not len(a.bootstrap):
        return float(difference), float("nan"), float("nan")
    low, high = percentile_interval(_exact_zero(a.bootstrap - b.bootstrap), level)
    return float(difference), low, high


def _exact_zero(differences: np.ndarray) -> np.ndarray:
    """Differences of two correlations within rounding of 0 set to 0: two representations that
    rank every pair alike (e.g. one a scaled copy of the other) must not differ by 1e-17."""
    return np.where(np.abs(differences) < EQUAL_WITHIN, 0.0, differences)
