"""Similarity kernels and RSA against independent computations (SciPy, NumPy, loops by hand).

Ties are included on purpose: human ratings (SimLex-999) and coarse similarities repeat values,
and a Spearman correlation must then use mid-ranks exactly as SciPy does.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist, squareform
from scipy.stats import pearsonr, spearmanr

import glocal
from glocal import scoring
from glocal.errors import GlocalError
from glocal.evaluation import rsa as rsa_module
from glocal.evaluation.intervals import bootstrap_interval
from glocal.evaluation.rsa import (
    correlate,
    noise_ceiling,
    pair_alignment,
    rsa,
    rsa_difference,
    rsa_matrix,
    upper_triangle,
)
from glocal.evaluation.similarity import paired_similarity, similarity_matrix

SCIPY = {"spearman": spearmanr, "pearson": pearsonr}


def _upper(S: np.ndarray) -> np.ndarray:
    return S[np.triu_indices(len(S), 1)]


def _distinct_pairs(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The objects of every pair of distinct draws of a materialised object resample."""
    p, q = np.triu_indices(len(idx), 1)
    keep = idx[p] != idx[q]
    return idx[p[keep]], idx[q[keep]]


# --- kernels -----------------------------------------------------------------------------------


def test_kernels_match_scipy_and_numpy(rng):
    X = rng.normal(size=(30, 7)) + rng.normal(size=(30, 1))  # rows with different means
    assert np.allclose(similarity_matrix(X, "dot"), X @ X.T)
    assert np.allclose(similarity_matrix(X, "cosine"), 1.0 - cdist(X, X, "cosine"))
    assert np.allclose(similarity_matrix(X, "pearson"), np.corrcoef(X))
    assert np.allclose(similarity_matrix(X, "pearson"), 1.0 - cdist(X, X, "correlation"))


def test_pearson_is_cosine_after_centring_each_vector(rng):
    X = rng.normal(size=(12, 5)) + 3.0
    centred = X - X.mean(axis=1, keepdims=True)
    assert np.allclose(similarity_matrix(X, "pearson"), similarity_matrix(centred, "cosine"))
    assert not np.allclose(similarity_matrix(X, "pearson"), similarity_matrix(X, "cosine"))


@pytest.mark.parametrize("kernel", ["dot", "cosine", "pearson"])
def test_paired_similarity_matches_a_loop(rng, kernel):
    A, B = rng.normal(size=(20, 6)), rng.normal(size=(20, 6))
    expected = []
    for a, b in zip(A, B, strict=True):
        if kernel == "dot":
            expected.append(a @ b)
        elif kernel == "cosine":
            expected.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        else:
            expected.append(pearsonr(a, b)[0])
    assert np.allclose(paired_similarity(A, B, kernel), expected)


def test_every_similarity_argument_takes_pearson(rng):
    X = rng.normal(size=(40, 6))
    triplets = rng.integers(0, 40, size=(200, 3))
    triplets = triplets[(triplets[:, 0] != triplets[:, 1]) & (triplets[:, 0] != triplets[:, 2])
                        & (triplets[:, 1] != triplets[:, 2])]  # fmt: skip
    C = np.corrcoef(X)
    expected = np.mean([(C[i, j] > C[i, k]) & (C[i, j] > C[j, k]) for i, j, k in triplets])
    assert glocal.odd_one_out_accuracy(X, triplets, "pearson") == pytest.approx(expected)
    neighbours = glocal.nearest_neighbours(X, 3, similarity="pearson")
    np.fill_diagonal(C, -np.inf)
    assert np.array_equal(neighbours, np.argsort(-C, axis=1, kind="stable")[:, :3])


def test_kernel_errors_name_the_problem(rng):
    X = rng.normal(size=(5, 4))
    X[2] = 3.0  # a constant row has no correlation
    with pytest.raises(GlocalError, match="Pearson correlation is undefined for 1 constant rows"):
        similarity_matrix(X, "pearson")
    with pytest.raises(GlocalError, match="similarity must be one of 'dot', 'cosine', 'pearson'"):
        similarity_matrix(X, "euclidean")  # type: ignore[arg-type]
    with pytest.raises(GlocalError, match="same shape"):
        paired_similarity(X, X[:3])


# --- correlations ------------------------------------------------------------------------------


def _midranks_by_hand(values: np.ndarray) -> np.ndarray:
    """Each value's rank, ties given the mean of the ranks they share (1-based)."""
    return np.array([np.mean(np.flatnonzero(np.sort(values) == v)) + 1.0 for v in values])


def _pearson_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    da, db = a - a.mean(), b - b.mean()
    return float((da @ db) / np.sqrt((da @ da) * (db @ db)))


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_correlate_and_the_bootstraps_correlation_match_a_computation_by_hand(rng, method):
    """``correlate`` (SciPy) and the weighted correlation the bootstraps use (at unit weights)
    both equal mid-ranks and Pearson's formula computed by hand, ties included."""
    a = np.round(rng.normal(size=200), 1)  # many ties
    b = np.round(a + rng.normal(size=200), 0)
    if method == "spearman":
        expected = _pearson_by_hand(_midranks_by_hand(a), _midranks_by_hand(b))
    else:
        expected = _pearson_by_hand(a, b)
    assert correlate(a, b, method) == pytest.approx(expected, abs=1e-12)
    weighted = rsa_module._PairCorrelation(a, b, method).pairs(np.ones(len(a)))
    assert weighted == pytest.approx(expected, abs=1e-12)


def test_correlate_of_a_constant_or_nan_is_nan(recwarn):
    assert np.isnan(correlate(np.ones(5), np.arange(5.0)))
    assert np.isnan(correlate(np.ones(5), np.arange(5.0), "pearson"))
    assert not recwarn.list  # NaN is the documented answer, not a warning
    with_nan = np.array([0.0, 1.0, np.nan, 3.0, 4.0])
    assert np.isnan(correlate(with_nan, np.arange(5.0)))
    assert np.isnan(correlate(with_nan, np.arange(5.0), "pearson"))
    with pytest.raises(GlocalError, match="differ in length"):
        correlate(np.ones(3), np.ones(4))
    with pytest.raises(GlocalError, match="method"):
        correlate(np.ones(3), np.ones(3), "kendall")  # type: ignore[arg-type]


# --- RSA of two representations (moved from test_neighbours) -------------------------------


def test_rsa_of_a_matrix_with_itself_is_one(rng):
    X = rng.normal(size=(60, 8))
    result = rsa(X, X, similarity="dot", reference_similarity="dot", n_bootstrap=50)
    assert result.rho == pytest.approx(1.0, abs=1e-12)
    assert result.ci_low == pytest.approx(1.0, abs=1e-12)
    assert result.ci_high == pytest.approx(1.0, abs=1e-12)
    assert result.n_objects == 60 and len(result.bootstrap) == 50
    assert result.n_pairs == 60 * 59 // 2 and result.resampled == "objects"


def test_rsa_with_a_shuffled_copy_is_near_zero(rng):
    X = rng.normal(size=(300, 10))
    result = rsa(X, X[rng.permutation(300)], "cosine", "cosine", n_bootstrap=20)
    assert abs(result.rho) < 0.05
    assert result.ci_low < result.ci_high


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_rsa_point_estimate_matches_scipy_with_ties(rng, method):
    X = np.round(rng.normal(size=(40, 3)), 1)  # coarse values: many tied similarities
    R = X[:, :2] + 0.5 * rng.normal(size=(40, 2))
    result = rsa(X, R, "dot", "dot", n_bootstrap=0, method=method)
    expected = SCIPY[method](_upper(similarity_matrix(X)), _upper(similarity_matrix(R)))[0]
    assert result.rho == pytest.approx(expected, abs=1e-12)
    assert np.isnan(result.ci_low) and np.isnan(result.ci_high)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_rsa_bootstrap_replicates_match_materialised_resamples(rng, method):
    m = 25
    X = np.round(rng.normal(size=(m, 3)), 1)
    R = X + rng.normal(size=(m, 3))
    result = rsa(X, R, "cosine", "dot", n_bootstrap=6, seed=7, method=method)
    SX, SR = similarity_matrix(X, "cosine"), similarity_matrix(R, "dot")
    draws = np.random.default_rng(7)
    for b in range(6):
        a, c = _distinct_pairs(draws.integers(0, m, size=m))  # copies of one object left out
        assert result.bootstrap[b] == pytest.approx(SCIPY[method](SX[a, c], SR[a, c])[0],
                                                     abs=1e-10)  # fmt: skip


def test_rsa_interval_brackets_the_estimate(rng):
    X = rng.normal(size=(80, 6))
    R = X + rng.normal(size=(80, 6))
    result = rsa(X, R, "dot", "dot", n_bootstrap=200, confidence=0.9, seed=1)
    assert result.ci_low < result.rho < result.ci_high
    assert np.quantile(result.bootstrap, 0.05) == pytest.approx(result.ci_low)


def test_rsa_rejects_bad_inputs(rng):
    X = rng.normal(size=(10, 3))
    with pytest.raises(GlocalError, match="reference has 9"):
        rsa(X, X[:9])
    with pytest.raises(GlocalError, match="confidence"):
        rsa(X, X, confidence=1.5)
    with pytest.raises(GlocalError, match="similarity must be"):
        rsa(X, X, similarity="euclid")  # type: ignore[arg-type]
    with pytest.raises(GlocalError, match="method must be one of"):
        rsa(X, X, method="kendall")  # type: ignore[arg-type]


# --- RSA against a human matrix ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["spearman", "pearson"])
@pytest.mark.parametrize("kernel", ["cosine", "pearson"])
def test_rsa_matrix_equals_the_official_rdm_formula(rng, method, kernel):
    """The official code correlates model dissimilarities (1 - cosine / 1 - correlation, SciPy's
    pdist) with the human RDM's upper triangle; glocal negates the human RDM instead."""
    X = rng.normal(size=(30, 8))
    human = squareform(np.round(pdist(X[:, :4] + rng.normal(size=(30, 4))), 1))  # ties
    model = pdist(X, "cosine" if kernel == "cosine" else "correlation")
    expected = SCIPY[method](model, _upper(human))[0]
    result = rsa_matrix(X, human, "dissimilarity", kernel, method, n_bootstrap=0)
    assert result.rho == pytest.approx(expected, abs=1e-10)
    # a similarity matrix (here: the negated RDM) gives the same value
    assert rsa_matrix(X, -human, "similarity", kernel, method, n_bootstrap=0).rho == (
        pytest.approx(result.rho, abs=1e-12))  # fmt: skip
    # the condensed pdist vector is read like the square matrix
    assert rsa_matrix(X, _upper(human), "dissimilarity", kernel, method, n_bootstrap=0).rho == (
        pytest.approx(result.rho, abs=1e-12))  # fmt: skip


def test_rsa_matrix_reads_only_the_upper_triangle(rng):
    X = rng.normal(size=(15, 4))
    human = squareform(pdist(X))
    noisy = human.copy()
    noisy[np.tril_indices(15)] = rng.normal(size=len(np.tril_indices(15)[0]))  # never read
    noisy[np.diag_indices(15)] = np.nan
    a = rsa_matrix(X, human, n_bootstrap=0).rho
    assert rsa_matrix(X, noisy, n_bootstrap=0).rho == pytest.approx(a)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_rsa_matrix_bootstrap_matches_materialised_resamples(rng, method):
    m = 18
    X = rng.normal(size=(m, 5))
    human = np.round(squareform(pdist(X + rng.normal(size=(m, 5)))), 1)
    result = rsa_matrix(X, human, "dissimilarity", "cosine", method, n_bootstrap=5, seed=3)
    S = similarity_matrix(X, "cosine")
    draws = np.random.default_rng(3)
    for b in range(5):
        a, c = _distinct_pairs(draws.integers(0, m, size=m))
        assert result.bootstrap[b] == pytest.approx(SCIPY[method](S[a, c], -human[a, c])[0],
                                                    abs=1e-10)  # fmt: skip


def test_rsa_matrix_sees_a_planted_structure_and_not_a_shuffled_one(rng):
    X = rng.normal(size=(60, 10))
    human = squareform(pdist(X @ rng.normal(size=(10, 10)) * 0.3 + X))
    assert rsa_matrix(X, human, n_bootstrap=50).ci_low > 0.5
    order = rng.permutation(60)
    shuffled = rsa_matrix(X[order], human, n_bootstrap=50)
    assert shuffled.ci_low < 0 < shuffled.ci_high or abs(shuffled.rho) < 0.1


def test_rsa_matrix_errors_name_the_problem(rng):
    X = rng.normal(size=(6, 3))
    D = squareform(pdist(X))
    with pytest.raises(GlocalError, match="describes 6 objects but X has 5 rows"):
        rsa_matrix(X[:5], D)
    with pytest.raises(GlocalError, match="square matrix"):
        rsa_matrix(X, D[:, :5])
    with pytest.raises(GlocalError, match="not the pairs of any number of objects"):
        rsa_matrix(X, np.ones(7))
    bad = D.copy()
    bad[0, 3] = np.nan
    with pytest.raises(GlocalError, match="1 pair values .* NaN"):
        rsa_matrix(X, bad)
    with pytest.raises(GlocalError, match="kind must be one of"):
        rsa_matrix(X, D, kind="distance")  # type: ignore[arg-type]


# --- the noise ceiling -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_noise_ceiling_is_the_leave_one_subject_out_mean(rng, method):
    truth = pdist(rng.normal(size=(12, 4)))
    subjects = np.stack([np.round(truth + rng.normal(size=truth.shape), 1) for _ in range(5)])
    lower, upper = [], []
    for s in range(5):
        others = np.delete(subjects, s, axis=0).mean(axis=0)
        lower.append(SCIPY[method](subjects[s], others)[0])
        upper.append(SCIPY[method](subjects[s], subjects.mean(axis=0))[0])
    ceiling = noise_ceiling(subjects, method)
    assert ceiling.lower == pytest.approx(np.mean(lower), abs=1e-12)
    assert ceiling.upper == pytest.approx(np.mean(upper), abs=1e-12)
    assert ceiling.lower < ceiling.upper and ceiling.n_subjects == 5
    square = np.stack([squareform(s) for s in subjects])
    assert noise_ceiling(square, method).lower == pytest.approx(ceiling.lower, abs=1e-12)


def test_noise_ceiling_needs_two_subjects(rng):
    with pytest.raises(GlocalError, match="s >= 2 participants"):
        noise_ceiling(rng.normal(size=(1, 10)))


# --- listed pairs against ratings --------------------------------------------------------------


@pytest.mark.parametrize("method", ["spearman", "pearson"])
@pytest.mark.parametrize("kernel", ["cosine", "pearson", "dot"])
def test_pair_alignment_matches_scipy_with_tied_ratings(rng, method, kernel):
    X = rng.normal(size=(50, 6))
    pairs = rng.integers(0, 50, size=(300, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    ratings = np.round(rng.uniform(0, 10, size=len(pairs)), 0)  # 11 values: heavy ties
    sims = paired_similarity(X[pairs[:, 0]], X[pairs[:, 1]], kernel)
    result = pair_alignment(X, pairs, ratings, kernel, method, n_bootstrap=0)
    assert result.rho == pytest.approx(SCIPY[method](sims, ratings)[0], abs=1e-12)
    assert result.resampled == "pairs" and result.n_pairs == len(pairs)
    assert result.n_objects == len(np.unique(pairs))
    dissimilar = pair_alignment(X, pairs, 10 - ratings, kernel, method, "dissimilarity",
                                n_bootstrap=0)  # fmt: skip
    assert dissimilar.rho == pytest.approx(result.rho, abs=1e-12)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_pair_alignment_bootstrap_resamples_pairs_as_bootstrap_interval_does(rng, method):
    X = rng.normal(size=(30, 4))
    pairs = np.array([(i, j) for i in range(30) for j in range(i + 1, 30)])[:120]
    ratings = np.round(rng.uniform(0, 10, size=120), 0)
    sims = paired_similarity(X[pairs[:, 0]], X[pairs[:, 1]], "cosine")
    result = pair_alignment(X, pairs, ratings, "cosine", method, n_bootstrap=40, seed=5)
    low, high, replicates = bootstrap_interval(
        lambda idx: SCIPY[method](sims[idx], ratings[idx])[0], 120, 40, seed=5
    )  # each replicate materialised: repeated pairs and all
    assert np.allclose(result.bootstrap, replicates, atol=1e-10)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-10)


def test_pair_alignment_errors_name_the_argument(rng):
    X = rng.normal(size=(5, 3))
    pairs = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
    with pytest.raises(GlocalError, match=r"pairs: row indices must lie in \[0, 5\)"):
        pair_alignment(X, pairs + 1, np.ones(4))
    with pytest.raises(GlocalError, match="ratings: expected 4 finite numbers"):
        pair_alignment(X, pairs, np.ones(3))
    with pytest.raises(GlocalError, match="ratings: expected 4 finite numbers .* NaN"):
        pair_alignment(X, pairs, np.array([1.0, np.nan, 2.0, 3.0]))
    with pytest.raises(GlocalError, match=r"integer array of shape \(k, 2\)"):
        pair_alignment(X, pairs.astype(float), np.ones(4))
    with pytest.raises(GlocalError, match="at least 3 pairs"):
        pair_alignment(X, pairs[:2], np.ones(2))


# --- paired differences ------------------------------------------------------------------------


def test_rsa_difference_is_the_paired_percentile_interval(rng):
    X = rng.normal(size=(40, 5))
    pairs = np.array(
        [(i, (i + 1) % 40) for i in range(40)] + [(i, (i + 7) % 40) for i in range(40)]
    )
    ratings = rng.uniform(0, 10, size=80)
    a = pair_alignment(X, pairs, ratings, "cosine", n_bootstrap=100, seed=2)
    b = pair_alignment(X, pairs, ratings, "pearson", n_bootstrap=100, seed=2)
    diff, low, high = rsa_difference(a, b)
    assert diff == pytest.approx(a.rho - b.rho)
    assert (low, high) == pytest.approx(tuple(np.quantile(a.bootstrap - b.bootstrap,
                                                          [0.025, 0.975])))  # fmt: skip
    c = pair_alignment(X, pairs, ratings, "pearson", n_bootstrap=100, seed=3)
    with pytest.raises(GlocalError, match="not bootstrapped on the same resamples"):
        rsa_difference(a, c)


def test_docstring_examples_hold():
    for module in (rsa_module, scoring):
        failed, tried = doctest.testmod(module, globs={"np": np, **vars(module)})
        assert tried > 0 and failed == 0, module.__name__


def test_public_names_are_exported_lazily():
    for name in ("rsa", "rsa_matrix", "pair_alignment", "noise_ceiling", "rsa_difference",
                 "RSAResult", "NoiseCeiling", "paired_similarity", "similarity_matrix",
                 "simlex999", "similarity_judgements", "SimilarityJudgements"):  # fmt: skip
        assert getattr(glocal, name) is not None
        assert name in glocal.__all__


def test_upper_triangle_is_pdist_order(rng):
    X = rng.normal(size=(7, 3))
    assert np.array_equal(upper_triangle(squareform(pdist(X))), pdist(X))


def test_rsa_difference_of_equal_rankings_is_exactly_zero(rng):
    """Two representations that rank every pair alike can differ by float rounding (1e-16);
    that must not read as a difference whose interval excludes 0."""
    from dataclasses import replace

    X = rng.normal(size=(20, 4))
    pairs = np.array([(i, (i + step) % 20) for step in (1, 3, 5) for i in range(20)])
    base = pair_alignment(X, pairs, rng.uniform(0, 10, size=60), n_bootstrap=50)
    nudged = replace(base, rho=base.rho + 1e-15, bootstrap=base.bootstrap + 1e-15)
    assert rsa_difference(nudged, base) == (0.0, 0.0, 0.0)
    moved = replace(base, rho=base.rho + 1e-3, bootstrap=base.bootstrap + 1e-3)
    assert rsa_difference(moved, base) == pytest.approx((1e-3, 1e-3, 1e-3))
