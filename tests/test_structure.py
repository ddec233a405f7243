"""Global-structure helpers: category sorting, percentile ranks, block contrast, 2-D PCA."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glocal.errors import GlocalError
from glocal.evaluation.structure import (
    block_contrast,
    block_contrast_interval,
    category_order,
    category_spans,
    describe_spaces,
    pca_2d,
    percentile_ranks,
    sorted_similarity,
)


def test_category_order_puts_large_categories_first_and_is_stable():
    labels = np.array(["b", "a", "b", "c", "a", "b"])
    order = category_order(labels)
    assert order.tolist() == [0, 2, 5, 1, 4, 3]  # b (3), a (2), c (1); original order inside
    assert category_order(labels, ["c", "a", "b"]).tolist() == [3, 1, 4, 0, 2, 5]
    series = pd.Series(labels, index=[10, 11, 12, 13, 14, 15])
    assert category_order(series).tolist() == order.tolist()  # positions, not index labels
    with pytest.raises(GlocalError, match="no place"):
        category_order(labels, ["a", "b"])


def _contrast_by_loops(S, labels, index):
    """Block contrast of the drawn items by loops over pairs of distinct draws."""
    within, between, every = [], [], []
    for a in range(len(index)):
        for b in range(len(index)):
            i, j = index[a], index[b]
            if i == j:
                continue  # the same item (or two copies of it): not a pair
            every.append(S[i, j])
            (within if labels[i] == labels[j] else between).append(S[i, j])
    return (np.mean(within) - np.mean(between)) / np.std(every)


def test_block_contrast_interval_resamples_items_without_self_pairs(monkeypatch):
    rng = np.random.default_rng(4)
    labels = np.repeat(["a", "b", "c"], 8)
    X = np.stack([{"a": 2.0, "b": -2.0, "c": 0.0}[c] * np.ones(4) for c in labels])
    X = X + rng.standard_normal((24, 4))
    S = X @ X.T
    # the replicates, recomputed by loops from the same draws
    from glocal.evaluation import intervals

    draws = []
    real = intervals.bootstrap_interval

    def recording(statistic, n_units, n_bootstrap, confidence, seed):
        def wrapped(index):
            draws.append((index.copy(), statistic(index)))
            return draws[-1][1]

        return real(wrapped, n_units, n_bootstrap, confidence, seed)

    monkeypatch.setattr(intervals, "bootstrap_interval", recording)
    low, high = block_contrast_interval(S, labels, n_bootstrap=40, seed=1)
    assert len(draws) == 40 and any(len(set(i)) < len(i) for i, _ in draws)  # copies drawn
    for index, value in draws[:10]:
        assert value == pytest.approx(_contrast_by_loops(S, labels, index), rel=1e-10)
    values = np.array([v for _, v in draws])
    assert (low, high) == pytest.approx(tuple(np.quantile(values, [0.025, 0.975])))
    assert low < block_contrast(S, labels) < high
    # no grouping: an interval about 0, far below the grouped one
    shuffled = labels[rng.permutation(24)]
    noise = rng.standard_normal((24, 4))
    n_low, n_high = block_contrast_interval(noise @ noise.T, shuffled, n_bootstrap=200)
    assert n_low < 0 < n_high < low


def test_category_spans_are_contiguous_runs():
    spans = category_spans(np.array(["x", "x", "y", "z", "z", "z"]))
    assert spans.to_dict("list") == {"category": ["x", "y", "z"], "start": [0, 2, 3],
                                     "stop": [2, 3, 6]}  # fmt: skip


def test_percentile_ranks_are_scale_free():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 5))
    S = X @ X.T
    R = percentile_ranks(S)
    assert np.allclose(np.diag(R), 1.0)
    off = ~np.eye(20, dtype=bool)
    assert R[off].min() == 0.0 and R[off].max() == 1.0
    np.testing.assert_allclose(percentile_ranks(3.0 * S + 7.0), R)
    with pytest.raises(GlocalError, match="square"):
        percentile_ranks(np.ones((2, 3)))


def test_sorted_similarity_and_block_contrast_see_planted_categories():
    rng = np.random.default_rng(1)
    labels = np.repeat(["p", "q", "r"], [10, 6, 4])[rng.permutation(20)]
    centres = {c: 3.0 * rng.standard_normal(8) for c in "pqr"}
    X = np.stack([centres[c] for c in labels]) + 0.3 * rng.standard_normal((20, 8))
    S, order = sorted_similarity(X, labels, similarity="cosine")
    assert S.shape == (20, 20)
    assert labels[order].tolist() == ["p"] * 10 + ["q"] * 6 + ["r"] * 4
    # within-category blocks hold the highest ranks
    assert S[:10, :10][~np.eye(10, dtype=bool)].min() > S[:10, 10:].max()
    raw, _ = sorted_similarity(X, labels, similarity="dot", ranks=False)
    assert raw[0, 0] == pytest.approx(float(X[order[0]] @ X[order[0]]))
    strong = block_contrast(S, labels[order])
    noise = rng.standard_normal((20, 8))
    weak = block_contrast(noise @ noise.T, labels)
    assert strong > 1.5 and abs(weak) < 0.5
    with pytest.raises(GlocalError, match="two categories"):
        block_contrast(S, np.repeat("p", 20))


def test_pca_2d_finds_the_dominant_plane_with_fixed_signs():
    rng = np.random.default_rng(2)
    latent = rng.standard_normal((200, 2)) * [5.0, 2.0]
    basis = np.linalg.qr(rng.standard_normal((10, 10)))[0][:, :2]
    X = latent @ basis.T + 0.01 * rng.standard_normal((200, 10)) + 4.0
    coords, explained = pca_2d(X)
    assert coords.shape == (200, 2)
    assert explained[0] > explained[1] and explained.sum() > 0.99
    assert abs(np.corrcoef(coords[:, 0], latent[:, 0])[0, 1]) > 0.99
    again, _ = pca_2d(X[::-1])
    np.testing.assert_allclose(again[::-1], coords, atol=1e-8)
    with pytest.raises(GlocalError, match="PCA"):
        pca_2d(np.ones((2, 5)))


def test_describe_spaces_sorts_scores_and_projects_every_space():
    rng = np.random.default_rng(3)
    labels = np.repeat(["a", "b", "c"], [8, 6, 4])[rng.permutation(18)]
    centres = {c: 4.0 * rng.standard_normal(6) for c in "abc"}
    grouped = np.stack([centres[c] for c in labels]) + 0.5 * rng.standard_normal((18, 6))
    noise = rng.standard_normal((18, 5))
    names = [f"item{i}" for i in range(18)]
    out = describe_spaces({"grouped": (grouped, "cosine"), "noise": (noise, "dot")}, labels,
                          names=names)  # fmt: skip
    assert out.labels.tolist() == ["a"] * 8 + ["b"] * 6 + ["c"] * 4
    assert out.spans["stop"].tolist() == [8, 14, 18]
    assert set(out.matrices) == {"grouped", "noise"}
    assert all(m.shape == (18, 18) for m in out.matrices.values())
    contrast = out.summary.set_index("space")["block_contrast"]
    assert contrast["grouped"] > 1.0 > abs(contrast["noise"])
    assert len(out.pca) == 36 and set(out.pca["item"]) == set(names)
    first = out.pca[out.pca["space"] == "grouped"]
    assert first["item"].tolist() == [names[i] for i in out.order]
    with pytest.raises(GlocalError, match="same items"):
        describe_spaces({"short": (grouped[:5], "dot")}, labels)
