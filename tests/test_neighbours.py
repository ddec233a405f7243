"""Local-structure metrics against planted answers and brute-force computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr, special_ortho_group

from glocal.errors import GlocalError
from glocal.evaluation.neighbours import (
    nearest_neighbours,
    neighbour_overlap,
    neighbourhood_correlation,
)
from glocal.evaluation.similarity import similarity_matrix


def _upper(S: np.ndarray) -> np.ndarray:
    return S[np.triu_indices(len(S), 1)]


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_neighbour_overlap_of_rotation_and_scale_is_exactly_one(rng, similarity):
    X = rng.normal(size=(300, 12))
    Y = 3.7 * X @ special_ortho_group.rvs(12, random_state=0)
    overlap = neighbour_overlap(X, Y, ks=(1, 5, 10, 50), similarity=similarity)
    assert overlap == {1: 1.0, 5: 1.0, 10: 1.0, 50: 1.0}
    assert neighbourhood_correlation(X, Y, k=10, similarity=similarity) == pytest.approx(1.0)


def test_neighbour_overlap_matches_brute_force(rng):
    X = rng.normal(size=(120, 6))
    Y = X @ rng.normal(size=(6, 6)) + 0.3 * rng.normal(size=(120, 6))
    overlap = neighbour_overlap(X, Y, ks=(1, 5, 10), similarity="cosine", chunk_size=17)
    SX, SY = similarity_matrix(X, "cosine"), similarity_matrix(Y, "cosine")
    for k in (1, 5, 10):
        shared = []
        for i in range(len(X)):
            nx = [j for j in np.argsort(-SX[i]) if j != i][:k]
            ny = [j for j in np.argsort(-SY[i]) if j != i][:k]
            shared.append(len(set(nx) & set(ny)) / k)
        assert overlap[k] == pytest.approx(np.mean(shared), abs=1e-12)
    assert 0.0 < overlap[10] < 1.0


def test_nearest_neighbours_chunked_equals_unchunked(rng):
    X = rng.normal(size=(101, 5))
    full = nearest_neighbours(X, 7, "dot", chunk_size=1000)
    assert np.array_equal(full, nearest_neighbours(X, 7, "dot", chunk_size=9))
    assert not (full == np.arange(101)[:, None]).any()  # an item is not its own neighbour


def test_neighbourhood_correlation_matches_a_loop(rng):
    X = rng.normal(size=(80, 5))
    Y = X @ rng.normal(size=(5, 5)) + 0.5 * rng.normal(size=(80, 5))
    k = 8
    value = neighbourhood_correlation(X, Y, k=k, similarity="cosine", similarity_y="dot")
    SX, SY = similarity_matrix(X, "cosine"), similarity_matrix(Y, "dot")
    rhos = []
    for i in range(len(X)):
        nbrs = [j for j in np.argsort(-SX[i]) if j != i][:k]
        rhos.append(spearmanr(SX[i, nbrs], SY[i, nbrs])[0])
    assert value == pytest.approx(np.mean(rhos), abs=1e-12)


def test_local_structure_rejects_bad_inputs(rng):
    X = rng.normal(size=(20, 4))
    with pytest.raises(GlocalError, match="Y has 19"):
        neighbour_overlap(X, X[:19])
    with pytest.raises(GlocalError, match="k must lie"):
        neighbour_overlap(X, X, ks=(20,))
    with pytest.raises(GlocalError, match="2-D"):
        neighbour_overlap(X[0], X[0])
    with pytest.raises(GlocalError, match="at least 2"):
        neighbourhood_correlation(X, X, k=1)


def test_shared_fraction_counts_common_neighbours_per_row():
    from glocal.evaluation.neighbours import shared_fraction

    rng = np.random.default_rng(11)
    nx = np.array([rng.choice(50, size=6, replace=False) for _ in range(40)])
    ny = np.array([rng.choice(50, size=6, replace=False) for _ in range(40)])
    expected = [len(set(a) & set(b)) / 6 for a, b in zip(nx, ny, strict=True)]
    np.testing.assert_allclose(shared_fraction(nx, ny), expected)
    assert (shared_fraction(nx, nx[:, ::-1]) == 1.0).all()  # order within a row does not matter
    for wrong in (ny[:, :5], ny[:30], ny[0]):
        with pytest.raises(GlocalError, match="nx and ny must be neighbour lists of one shape"):
            shared_fraction(nx, wrong)


def test_item_overlaps_find_neighbours_once_for_every_k(rng):
    from glocal.evaluation.neighbours import item_overlaps, neighbour_overlap, per_item_overlap

    X, Y = rng.normal(size=(60, 5)), rng.normal(size=(60, 4))
    overlaps = item_overlaps(X, Y, (7, 2, 7))
    assert list(overlaps) == [2, 7]
    means = neighbour_overlap(X, Y, (2, 7))
    assert {k: float(v.mean()) for k, v in overlaps.items()} == means
    np.testing.assert_array_equal(overlaps[7], per_item_overlap(X, Y, 7))
