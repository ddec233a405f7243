"""Tests for glocal.evaluation.alignment.odd_one_out_accuracy against a brute-force loop."""

from __future__ import annotations

import numpy as np
import pytest

from glocal import GlocalError, odd_one_out_accuracy, scoring
from glocal.evaluation import alignment
from glocal.triplets import simulate_triplets


def _loop_accuracy(X, triplets, cosine=False):
    if cosine:
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
    hits = 0
    for i, j, k in triplets:
        s_ij, s_ik, s_jk = X[i] @ X[j], X[i] @ X[k], X[j] @ X[k]
        hits += s_ij > s_ik and s_ij > s_jk
    return hits / len(triplets)


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_matches_loop(rng, similarity):
    X = rng.standard_normal((40, 6))
    triplets = simulate_triplets(X, 500, seed=1)
    expected = _loop_accuracy(X, triplets, cosine=similarity == "cosine")
    assert odd_one_out_accuracy(X, triplets, similarity) == pytest.approx(expected)


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_triplet_correct_matches_loop_per_triplet(rng, similarity):
    X = rng.standard_normal((30, 5))
    triplets = simulate_triplets(X, 300, seed=3)
    cosine = similarity == "cosine"
    expected = [_loop_accuracy(X, t[None], cosine=cosine) == 1.0 for t in triplets]
    correct = alignment.triplet_correct(X, triplets, similarity)
    assert correct.dtype == bool and correct.tolist() == expected
    assert 0 < correct.sum() < len(triplets)  # both outcomes occur: the check can fail


def test_chunked_path_equals_dense(rng, monkeypatch):
    X = rng.standard_normal((50, 4))
    triplets = simulate_triplets(X, 700, seed=2)
    dense = alignment.triplet_similarities(X, triplets, "cosine")
    monkeypatch.setattr(scoring, "_DENSE_LIMIT", 10)
    chunked = alignment.triplet_similarities(X, triplets, "cosine", chunk_size=64)
    np.testing.assert_allclose(chunked, dense, rtol=1e-12)


def test_ties_count_as_wrong():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # all three pairs equally similar: a tie, wrong
    assert odd_one_out_accuracy(X, np.array([[0, 1, 2]])) == 0.0
    # pair (0, 1) strictly most similar: right
    assert odd_one_out_accuracy(X, np.array([[0, 1, 3]])) == 1.0


def test_perfect_and_chance_level(rng):
    H = rng.standard_normal((100, 5)) * 3
    triplets = simulate_triplets(H, 3000, seed=0)
    assert odd_one_out_accuracy(H, triplets) > 0.8
    assert abs(odd_one_out_accuracy(rng.standard_normal((100, 5)), triplets) - 1 / 3) < 0.05


def test_bad_input(rng):
    with pytest.raises(GlocalError, match="similarity"):
        odd_one_out_accuracy(rng.standard_normal((5, 2)), np.array([[0, 1, 2]]), "euclid")
    with pytest.raises(GlocalError, match="outside"):
        odd_one_out_accuracy(rng.standard_normal((5, 2)), np.array([[0, 1, 7]]))
    with pytest.raises(GlocalError, match="all-zero rows"):
        odd_one_out_accuracy(np.zeros((5, 2)), np.array([[0, 1, 2]]), "cosine")
    with pytest.raises(GlocalError, match="NaN"):
        odd_one_out_accuracy(np.full((5, 2), np.nan), np.array([[0, 1, 2]]))
