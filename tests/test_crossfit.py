"""Cross-fitting over the folds and paired differences, against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from companion.paper import comparisons, crossfit
from companion.paper import inputs as ci
from companion.paper import triplets as tr
from glocal import GlocalTransform, odd_one_out_accuracy, simulate_triplets, things
from glocal.errors import GlocalError
from glocal.evaluation.categories import category_labels
from glocal.evaluation.comparison import EvalSettings

N = 1854


def _fold(f: int, seed: int = 0) -> ci.Inputs:
    """Planted inputs holding out fold f's concepts (the features are the same in every fold)."""
    rng = np.random.default_rng(seed)
    human = rng.standard_normal((N, 6)).astype(np.float32)
    X = (human @ rng.standard_normal((6, 12)) + 0.5 * rng.standard_normal((N, 12))).astype("f4")
    heldout = tr.heldout_objects(5, f, seed)
    train_objects = np.setdiff1d(np.arange(N), heldout)
    test = simulate_triplets(human, 2000, objects=heldout, seed=3)
    triplets = tr.TripletData(
        train=simulate_triplets(human, 8000, objects=train_objects, seed=1),
        val=simulate_triplets(human, 1000, objects=train_objects, seed=2),
        test=test, train_objects=train_objects, heldout=heldout, source="simulated",
        ceiling=odd_one_out_accuracy(human, test), ceiling_label="generating embedding",
    )  # fmt: skip
    contrast = rng.standard_normal((300, 12)).astype(np.float32)
    return ci.Inputs("planted", "planted", "planted", "m", X, contrast[:200], contrast[200:],
                     triplets)  # fmt: skip


@pytest.fixture(scope="module")
def folds():
    return [_fold(f) for f in range(5)]


class _Scale:
    """A transform that multiplies by a constant: cosine neighbourhoods and classes unchanged."""

    def __init__(self, factor: float):
        self.factor = factor

    def transform(self, X):
        return X * self.factor


def test_the_folds_hold_out_every_concept_once(folds):
    seen = np.concatenate([f.triplets.heldout for f in folds])
    assert sorted(seen) == list(range(N))
    for f in folds:
        assert not set(f.triplets.train_objects) & set(f.triplets.heldout)


def test_few_shot_episodes_are_paired_and_test_on_every_other_member(data_dir, folds):
    transforms = [{"same": _Scale(1.0), "scaled": _Scale(3.0)} for _ in folds]
    settings = EvalSettings(shots=(2,), n_repeats=3, classifiers=("centroid",))
    table = crossfit.few_shot_folds(folds[:2], transforms[:2], "things-coarse", settings)
    wide = table.pivot_table(index=["fold", "repeat"], columns="representation",
                             values="accuracy")  # fmt: skip
    # the same episodes for every representation: a scaled copy classifies identically
    np.testing.assert_array_equal(wide["same"], wide["original"])
    np.testing.assert_array_equal(wide["scaled"], wide["original"])
    # every labelled held-out member that is not in the support set is a test item
    labels = category_labels(things.categories(), folds[0].triplets.heldout, 3, "largest")
    row = table[(table["fold"] == 0)].iloc[0]
    assert row["n_test"] == len(labels) - 2 * labels.nunique()


def test_anomaly_splits_are_paired_per_class(data_dir, folds):
    transforms = [{"scaled": _Scale(2.0)} for _ in folds]
    table = crossfit.anomaly_folds(folds[:2], transforms[:2], "things-coarse",
                                   EvalSettings(anomaly_k=3), n_splits=2)  # fmt: skip
    wide = table.pivot_table(index=["fold", "repeat", "class"], columns="representation",
                             values="auroc")  # fmt: skip
    np.testing.assert_allclose(wide["scaled"], wide["original"])
    assert set(table["fold"]) == {0, 1} and set(table["repeat"]) == {0, 1}


def test_paired_summary_matches_a_computation_by_hand():
    rng = np.random.default_rng(0)
    units = pd.MultiIndex.from_product([range(3), range(4)], names=["fold", "repeat"])
    base = rng.normal(0.6, 0.05, size=len(units))
    better = base + 0.02 + rng.normal(0, 0.005, size=len(units))
    table = pd.concat([
        pd.DataFrame({"fold": units.get_level_values(0), "repeat": units.get_level_values(1),
                      "representation": name, "accuracy": values, "task": "t"})
        for name, values in (("original", base), ("glocal", better), ("naive", base - 0.001))
    ])  # fmt: skip
    result = comparisons.paired_summary(
        table, "accuracy", units=["fold", "repeat"], by=["task"],
        expected={"naive": "negative"}, margin=0.01,
    ).set_index("representation")  # fmt: skip
    diff = better - base
    half = 2.200985 * diff.std(ddof=1) / np.sqrt(len(diff))  # t(0.975, 11)
    got = result.loc["glocal"]
    assert got["mean"] == pytest.approx(diff.mean())
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(
        (diff.mean() - half, diff.mean() + half)
    )
    assert got["n"] == 12 and got["verdict"] == "holds"
    assert result.loc["naive", "verdict"] == "no effect"  # -0.001 every time: inside ±0.01
    with pytest.raises(GlocalError, match="lacks the column"):
        comparisons.paired_summary(table, "auroc", units=["fold"])


def test_fit_folds_reuses_fold_zeros_settings(folds, monkeypatch, tmp_path):
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(tmp_path))
    params = {"max_steps": 20, "device": "cpu", "lmbda": 0.05}
    fitted = crossfit.fit_folds(folds[:2], ["global", "glocal"], params)
    for kind in ("global", "glocal"):
        a, b = fitted[0][kind], fitted[1][kind]
        assert isinstance(b, GlocalTransform)
        assert a.get_params() == b.get_params() and a.lmbda == 0.05
        assert not np.array_equal(a.weights_, b.weights_)  # other training concepts


def test_profile_folds_cross_fits_the_first_folds_of_the_five(monkeypatch):
    """crossfit_folds=2 gives folds 0 and 1 of the five-fold split (fold 0 stays page 1's), an
    image task fold 0 alone, and an out-of-range count a clear error."""
    calls = []

    def fake_load(*args, n_folds=5, fold=0, **kwargs):
        calls.append((n_folds, fold))
        return (n_folds, fold)

    monkeypatch.setattr(crossfit, "load_inputs", fake_load)
    args = ("planted", 100, 10, 10, 20, 10)
    assert crossfit.profile_folds(["things-fine"], *args, crossfit_folds=2) == [(5, 0), (5, 1)]
    assert len(crossfit.profile_folds(["things-fine"], *args)) == 5
    assert crossfit.profile_folds(["cifar100"], *args, crossfit_folds=5) == [(5, 0)]
    with pytest.raises(GlocalError, match="crossfit_folds must lie in 1..5"):
        crossfit.profile_folds(["things-fine"], *args, crossfit_folds=6)
