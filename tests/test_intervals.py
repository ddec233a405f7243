"""Confidence intervals and verdicts, against independent computations (SciPy, loops by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from glocal.errors import GlocalError
from glocal.evaluation.intervals import (
    bootstrap_interval,
    mean_interval,
    paired_interval,
    sign_of,
    verdict,
    wilson_interval,
)


@pytest.mark.parametrize(("k", "n"), [(50, 100), (3, 40), (0, 25), (25, 25), (4567, 10000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_scipy(k, n, confidence):
    expected = stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
    low, high = wilson_interval(k / n, n, confidence)
    assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_wilson_interval_without_trials_is_nan():
    assert all(map(math.isnan, wilson_interval(0.5, 0)))


@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_mean_interval_matches_scipy_t_interval(rng, confidence):
    x = rng.normal(2.0, 3.0, size=17)
    low, high = stats.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    mean, lo, hi, n = mean_interval(np.append(x, np.nan), confidence)  # NaN is left out
    assert (mean, lo, hi, n) == pytest.approx((x.mean(), low, high, 17), abs=1e-12)


def test_mean_interval_edges():
    assert mean_interval([1.0])[0] == 1.0 and math.isnan(mean_interval([1.0])[1])
    assert mean_interval([])[3] == 0 and math.isnan(mean_interval([])[0])
    with pytest.raises(GlocalError, match="confidence"):
        mean_interval([1.0, 2.0], confidence=1.0)


def test_paired_interval_is_the_interval_of_the_differences(rng):
    a, b = rng.normal(size=30), rng.normal(size=30)
    assert paired_interval(a, b) == pytest.approx(mean_interval(a - b))
    with pytest.raises(GlocalError, match="same shape"):
        paired_interval(a, b[:-1])


def test_bootstrap_interval_matches_a_loop_by_hand(rng):
    x = rng.exponential(size=40)
    low, high, reps = bootstrap_interval(lambda idx: float(np.median(x[idx])), 40, 300, 0.9, 7)
    draw = np.random.default_rng(7)
    by_hand = np.array([np.median(x[draw.integers(0, 40, size=40)]) for _ in range(300)])
    np.testing.assert_array_equal(reps, by_hand)
    assert (low, high) == pytest.approx(tuple(np.quantile(by_hand, [0.05, 0.95])))
    assert all(map(math.isnan, bootstrap_interval(np.mean, 5, 0)[:2]))


@pytest.mark.parametrize(
    ("low", "high", "expected", "margin", "answer"),
    [
        (0.1, 0.3, "positive", 0.0, "holds"),
        (-0.3, -0.1, "positive", 0.0, "opposite"),
        (-0.3, -0.1, "negative", 0.0, "holds"),
        (-0.1, 0.3, "positive", 0.0, "not resolved"),
        (-0.004, 0.006, "positive", 0.01, "no effect"),
        (-0.004, 0.012, "positive", 0.01, "not resolved"),
        (0.002, 0.006, "positive", 0.01, "no effect"),  # excludes 0, but too small to matter
        (0.002, 0.016, "positive", 0.01, "holds"),
        (-0.01, 0.005, "positive", 0.01, "not resolved"),  # touches the margin
        (math.nan, math.nan, "positive", 0.01, "n/a"),
    ],
)
def test_verdicts(low, high, expected, margin, answer):
    assert verdict(low, high, expected, margin) == answer


def test_verdict_rejects_bad_arguments():
    with pytest.raises(GlocalError, match="expected"):
        verdict(0, 1, expected="up")
    with pytest.raises(GlocalError, match="margin"):
        verdict(0, 1, margin=-0.1)


def test_sign_of_is_neutral():
    assert sign_of(0.1, 0.2) == "> 0"
    assert sign_of(-0.2, -0.1) == "< 0"
    assert sign_of(-0.1, 0.1) == "contains 0"
    assert sign_of(math.nan, 0.1) == "n/a"
