"""The stopping rule: fits that can move do, and a fit that keeps its start says so.

The rule is replayed on scripted objectives (no optimiser involved), then checked on the four
fits that used to keep their start and call it convergence: a large alpha, little data, a warm
start, and alpha = 1 (where the start is optimal and a rise from ~0 looked like divergence).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from glocal import GlocalTransform
from glocal._fit import MAX_HALVINGS_AT_START, FitSettings, StoppingRule
from glocal.errors import FitDivergedError
from glocal.planted import planted_problem


def _settings(**changes):
    params = {**GlocalTransform().get_params(), **changes}
    return FitSettings.from_params(params)


def _replay(objectives, start=1.0, step=10, **changes):
    rule = StoppingRule(start, _settings(**changes))
    decisions = []
    for i, value in enumerate(objectives, start=1):
        decisions.append(rule.update(value, i * step))
        if decisions[-1].stop:
            break
    return rule, decisions


def test_an_overshooting_check_goes_back_to_the_best_with_half_the_step():
    rule, (first, second, third) = _replay([1.5, 0.9, 0.95])
    assert (first.new_best, first.restore, first.stop) == (False, True, False)
    assert (second.new_best, second.restore) == (True, False)  # passes: keeps its parameters
    assert (third.new_best, third.restore) == (False, True)  # worse than the best: back to it
    assert rule.lr_scale == 0.25 and rule.best == 0.9 and rule.best_step == 20


def test_failures_before_any_improvement_are_not_stale_until_the_smallest_step():
    rule, decisions = _replay([1.2] * 50)
    assert len(decisions) == MAX_HALVINGS_AT_START  # not patience (3): smaller steps first
    assert decisions[-1].stop and rule.stop_reason == "no_improvement"
    assert rule.best_step == 0 and rule.lr_scale == 0.5**MAX_HALVINGS_AT_START
    assert all(d.restore for d in decisions[:-1])


def test_after_moving_patience_failing_checks_converge():
    rule, decisions = _replay([0.8, 0.85, 0.81, 0.82])
    assert len(decisions) == 4 and decisions[-1].stop and rule.stop_reason == "converged"
    assert rule.best_step == 10 and rule.lr_scale == 0.125


def test_slow_progress_below_tol_counts_as_moved_and_keeps_its_parameters():
    rule, decisions = _replay([0.9999, 0.9998, 0.9997], tol=1e-3)
    assert all(d.new_best and not d.restore for d in decisions)
    assert rule.stop_reason == "converged" and rule.best_step == 30


def test_a_non_finite_check_is_a_failure_not_a_crash():
    rule, (first, second) = _replay([math.nan, 0.5])[0], _replay([math.nan, 0.5])[1]
    assert first.restore and not first.new_best and second.new_best
    assert rule.best == 0.5


def test_burn_in_and_disabled_early_stopping():
    rule, decisions = _replay([1.2, 1.2, 0.9], min_steps=25)
    assert not decisions[0].restore and rule.lr_scale == 1.0  # checks at 10, 20: burn-in
    rule, decisions = _replay([1.2] * 40, early_stopping=False)
    assert len(decisions) == 40 and not any(d.stop for d in decisions)


def test_a_start_at_the_floor_of_the_objective_ends_before_the_first_step():
    for start in (0.0, -2.4e-7):  # float32 rounding of a divergence of 0 can fall below it
        rule = StoppingRule(start, _settings())
        assert rule.done_at_start and rule.stop_reason == "no_improvement"
    assert not StoppingRule(1e-6, _settings()).done_at_start
    assert not StoppingRule(0.0, _settings(early_stopping=False)).done_at_start


# --- the fits that used to stall ---------------------------------------------------------------


@pytest.fixture(scope="module")
def problem():
    return planted_problem(
        n_objects=120, n_features=16, n_dims=4, n_triplets=12_000, n_contrast=600, seed=3
    )


def _fit(problem, n_train=9000, est=None, **params):
    est = est or GlocalTransform(device="cpu", **params)
    train, val = problem.triplets[:n_train], problem.triplets[9000:]
    contrast = problem.contrast if est.alpha > 0 else None
    return est.fit(problem.X, train, contrast=contrast, val_triplets=val)


def _check_honest(est):
    """A fit that returns its start says so, after trying smaller steps; one that says it
    converged has improved the held-out objective."""
    history = est.history_
    kept = next(h for h in history if h["step"] == est.best_step_)
    assert est.stop_reason_ in ("converged", "no_improvement")
    if est.best_step_ == 0:
        assert est.stop_reason_ == "no_improvement"
        smallest = min(h["lr"] for h in history[1:])
        assert smallest <= est.lr * 0.5 ** (MAX_HALVINGS_AT_START - 1)
    else:
        assert est.stop_reason_ == "converged"
        assert kept["objective"] < history[0]["objective"]


@pytest.mark.parametrize("alpha", [0.75, 0.9])
def test_large_alpha(problem, alpha):
    est = _fit(problem, alpha=alpha)
    _check_honest(est)
    assert est.best_step_ > 0  # here smaller steps do improve on the start


@pytest.mark.parametrize(("n_train", "alpha"), [(100, 0.25), (300, 0.5)])
def test_little_data(problem, n_train, alpha):
    est = _fit(problem, n_train=n_train, alpha=alpha)
    _check_honest(est)
    assert est.best_step_ > 0


def _kept(est):
    return next(h for h in est.history_ if h["step"] == est.best_step_)


def test_warm_start_begins_where_the_last_fit_ended_and_says_when_it_cannot_improve(problem):
    """A refit with ``warm_start`` starts from the kept weights (its first check measures them,
    not the cold start's); one that no step size improves returns them exactly."""
    est = _fit(problem, alpha=0.25, lmbda=0.1)
    start, before = est.weights_.copy(), _kept(est)
    _fit(problem, est=est.set_params(lmbda=1e-3, warm_start=True))
    first = est.history_[0]
    assert (first["val_loss"], first["val_local"]) == (before["val_loss"], before["val_local"])
    assert est.init_scale_ == pytest.approx(np.trace(start) / len(start))
    cold = _fit(problem, alpha=0.25, lmbda=1e-3)
    assert cold.history_[0]["val_loss"] != first["val_loss"]  # the cold start is elsewhere
    _check_honest(est)
    assert est.stop_reason_ == "no_improvement"  # the converged map is this fit's optimum too
    np.testing.assert_array_equal(est.weights_, start)  # it returned exactly its start


def test_warm_start_continues_a_fit_cut_short(problem):
    est = _fit(problem, alpha=0.25, lmbda=0.1, max_steps=10)
    assert est.stop_reason_ == "max_steps"
    start, before = est.weights_.copy(), _kept(est)
    _fit(problem, est=est.set_params(max_steps=2000, warm_start=True))
    assert est.history_[0]["objective"] == before["objective"]  # it went on from there
    _check_honest(est)
    assert est.stop_reason_ == "converged" and est.best_step_ > 0
    assert _kept(est)["objective"] < before["objective"]
    assert not np.array_equal(est.weights_, start)


def test_alpha_one_returns_its_optimum_without_an_error(problem):
    est = _fit(problem, alpha=1.0)
    _check_honest(est)
    assert est.history_[0]["objective"] < 0.01  # the start nearly keeps every neighbourhood
    if est.best_step_ == 0:
        np.testing.assert_array_equal(est.weights_, est.init_scale_ * np.eye(16, dtype="f4"))


def test_alpha_one_with_every_neighbourhood_kept_takes_no_step(problem):
    """Features of global mean 0: standardising does not move them, so at alpha = 1 the start
    (a scaled identity) keeps every neighbourhood; the monitored objective is 0 up to float32
    rounding, which no step can beat (every term is non-negative). Without the floor rule the
    fit spent MAX_HALVINGS_AT_START checks finding that out."""
    half = problem.X[: len(problem.X) // 2]
    X = np.vstack([half, -half])
    triplets = problem.triplets % len(X)
    est = GlocalTransform(device="cpu", alpha=1.0).fit(
        X, triplets[:9000], contrast=problem.contrast, val_triplets=triplets[9000:]
    )
    assert X.mean() == 0.0 and est.history_[0]["objective"] <= 0.0
    assert (est.n_steps_, est.best_step_, est.stop_reason_) == (0, 0, "no_improvement")
    assert len(est.history_) == 1
    np.testing.assert_array_equal(est.weights_, est.init_scale_ * np.eye(16, dtype="f4"))
    moved = GlocalTransform(device="cpu", alpha=0.9).fit(
        X, triplets[:9000], contrast=problem.contrast, val_triplets=triplets[9000:]
    )
    assert moved.n_steps_ > 0  # the global term is positive below alpha = 1


def test_a_step_size_far_too_large_is_backed_off(problem):
    est = _fit(problem, alpha=0.0, lr=1.0)
    restored = [h for h in est.history_[1:] if h["restored"]]
    assert restored and restored[0]["objective"] > 5 * est.history_[0]["objective"]
    assert est.best_step_ > 0 and est.stop_reason_ == "converged"
    assert min(h["lr"] for h in est.history_[1:]) < 1.0 / 8


def test_a_start_that_is_not_finite_raises(problem):
    with pytest.raises(FitDivergedError, match="at the start"):
        _fit(problem, alpha=0.0, init_scale=1e30)
