"""The companion's notebook helpers: triplet splits, the contrast vocabulary, fits, measurements."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from companion.paper import fits as cf
from companion.paper import image_features as imf
from companion.paper import inputs as ci
from companion.paper import sweeps
from companion.paper import tables as ct
from companion.paper import text_features as tf
from companion.paper import triplets as tr
from glocal import (
    PRESETS,
    GlocalTransform,
    object_disjoint_folds,
    odd_one_out_accuracy,
    simulate_triplets,
    things,
)
from glocal.errors import DataUnavailableError, GlocalError

N = 1854
FAST = {"max_steps": 20, "device": "cpu", "triplet_batch_size": None}


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _planted_inputs(seed: int = 0, p: int = 12) -> ci.Inputs:
    """Features = a hidden 'human' embedding seen through a random map, plus noise."""
    rng = np.random.default_rng(seed)
    human = rng.standard_normal((N, 6)).astype(np.float32)
    X = (human @ rng.standard_normal((6, p)) + 0.5 * rng.standard_normal((N, p))).astype(np.float32)
    heldout = tr.heldout_objects(5, 0, seed)
    train_objects = np.setdiff1d(np.arange(N), heldout)
    test = simulate_triplets(human, 3000, objects=heldout, seed=3)
    triplets = tr.TripletData(
        train=simulate_triplets(human, 20000, objects=train_objects, seed=1),
        val=simulate_triplets(human, 2000, objects=train_objects, seed=2),
        test=test,
        train_objects=train_objects,
        heldout=heldout,
        source="simulated",
        ceiling=odd_one_out_accuracy(human, test),
        ceiling_label="generating embedding",
    )
    contrast = rng.standard_normal((400, p)).astype(np.float32)
    return ci.Inputs("planted", "planted", "planted", "m", X, contrast[:300], contrast[300:],
                     triplets)  # fmt: skip


def test_heldout_objects_are_the_object_disjoint_fold():
    triplets = np.random.default_rng(0).integers(0, N, size=(5000, 3))
    triplets = triplets[(triplets[:, 0] != triplets[:, 1]) & (triplets[:, 0] != triplets[:, 2])
                        & (triplets[:, 1] != triplets[:, 2])]  # fmt: skip
    for fold in (0, 3):
        expected = object_disjoint_folds(triplets, N, 5, seed=7)[fold].test_objects
        np.testing.assert_array_equal(tr.heldout_objects(5, fold, seed=7), expected)
    with pytest.raises(GlocalError, match="fold"):
        tr.heldout_objects(5, 5)


def test_simulated_triplets_split_objects_and_are_nested(data_dir):
    split = tr.make_triplets(5000, 500, 2000, source="simulated", seed=1)
    assert split.source == "simulated" and len(split.heldout) == 371
    held = set(split.heldout.tolist())
    assert not held & set(split.train.ravel().tolist())
    assert not held & set(split.val.ravel().tolist())
    assert set(split.test.ravel().tolist()) <= held
    assert 0.5 < split.ceiling < 0.8  # VICE predicts its own choices well above chance
    again = tr.make_triplets(5000, 500, 2000, source="simulated", seed=1)
    np.testing.assert_array_equal(split.train, again.train)
    np.testing.assert_array_equal(split.test, again.test)
    small = split.with_train_size(1000)
    np.testing.assert_array_equal(small.train, split.train[:1000])
    np.testing.assert_array_equal(small.val, split.val)
    with pytest.raises(GlocalError, match="n must lie"):
        split.with_train_size(10**6)


def test_auto_triplets_simulate_when_things_data_is_absent(data_dir, cache):
    assert tr.cached_things_triplets() is None  # the mirror has no THINGS-data triplets
    assert tr.make_triplets(100, 10, 100, source="auto").source == "simulated"
    with pytest.raises(DataUnavailableError, match="glocal data fetch things/triplets"):
        tr.make_triplets(100, 10, 100, source="things")


def test_contrast_vocabulary_is_whole_words_disjoint_from_things(data_dir):
    words = tf.vocabulary_words()
    assert len(words) > 15000 and words == sorted(set(words))
    assert all(re.fullmatch(r"[a-z]{3,}", w) for w in words)
    names = {w.lower() for w in things.concepts()["Word"]}
    assert not names & set(words)
    assert "apple" in names and "apples" not in words
    sample = tf.contrast_words(50, seed=3)
    assert sample == tf.contrast_words(50, seed=3) and len(set(sample)) == 50
    assert sample != tf.contrast_words(50, seed=4)
    with pytest.raises(GlocalError, match="n_contrast"):
        tf.contrast_words(1)


def test_contrast_features_come_from_minilm_and_the_store(data_dir, cache):
    first = tf.contrast_text_features(6, seed=0, device="cpu")
    assert first.shape == (6, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-4)
    stores = list((cache / "features").rglob("*.h5"))
    assert len(stores) == 1 and "vocabulary-contrast" in stores[0].parts
    np.testing.assert_array_equal(tf.contrast_text_features(6, seed=0, device="cpu"), first)


def test_text_inputs_are_wired_in_things_order(data_dir, monkeypatch):
    fake = np.random.default_rng(0).standard_normal((N, 8)).astype(np.float32)
    calls = {}
    monkeypatch.setattr(ci, "things_text_features", lambda kind, *a: calls.setdefault(kind, fake))
    monkeypatch.setattr(ci, "contrast_text_features", lambda n, *a: np.ones((n, 8), np.float32))
    inputs = ci.load_inputs("text:words", 1000, 100, 500, n_contrast=30, n_contrast_eval=10)
    assert calls == {"words": fake} and inputs.label == tf.TEXT_LABELS["words"]
    assert inputs.contrast.shape == (30, 8) and inputs.contrast_eval.shape == (10, 8)
    assert len(inputs.triplets.train) == 1000 and len(inputs.describe()) == 7
    with pytest.raises(GlocalError, match="text kind"):
        ci.load_inputs("text:sentences")
    with pytest.raises(GlocalError, match="MODEL:MODULE"):
        ci.load_inputs("clip")


def test_paper_inputs_name_what_is_missing_and_how_to_fetch_it(no_network):
    with pytest.raises(DataUnavailableError) as err:
        ci.load_inputs("clip_ViT-L/14:visual")
    message = str(err.value)
    assert "glocal extract --model clip_ViT-L/14 --module visual --source things" in message
    assert "--dataset imagenet --split train" in message
    assert "glocal data fetch things/triplets" in message
    with pytest.raises(DataUnavailableError, match="--source dataset:cifar100:train"):
        imf.image_downstream("clip_ViT-L/14", "visual", "cifar100")


def test_transform_settings_keep_each_preset_itself():
    params = {"alpha": 0.5, "regularizer": "l2", "lmbda": 0.2}
    assert cf.transform_settings("naive", params)["alpha"] == 0.0
    naive = cf.transform_settings("naive", params)
    # the official naive probe keeps its penalty, bias and start; lambda is the open choice
    assert (naive["regularizer"], naive["bias"], naive["lmbda"]) == ("fro", False, 0.2)
    assert cf.transform_settings("naive", {"lmbda": None})["lmbda"] == PRESETS["naive"]["lmbda"]
    assert cf.transform_settings("global", params)["regularizer"] == "eye"
    glocal = cf.transform_settings("glocal", params)
    assert glocal["alpha"] == 0.5 and glocal["regularizer"] == "eye" and glocal["lmbda"] == 0.2
    assert cf.transform_settings("glocal")["alpha"] == PRESETS["glocal"]["alpha"]
    with pytest.raises(GlocalError, match="kind"):
        cf.transform_settings("local")


def test_fits_ignore_heldout_objects_and_are_cached(cache, monkeypatch):
    inputs = _planted_inputs()
    fitted = cf.fit_transforms(inputs, params={**FAST, "alpha": 0.2})
    assert set(fitted) == {"naive", "global", "glocal"}
    summary = cf.fit_summary(fitted)
    assert summary["steps"].tolist() == [20, 20, 20] and summary["alpha"].tolist() == [0, 0, 0.2]
    assert summary["stopped_by"].tolist() == ["max_steps"] * 3
    assert len(list((cache / "fits").glob("*.npz"))) == 3
    again = cf.fit_transform(inputs, "glocal", {**FAST, "alpha": 0.2})  # read from the cache
    np.testing.assert_array_equal(again.weights_, fitted["glocal"].weights_)
    assert again.metadata_["experiment"]["n_train"] == 20000
    # a changed default or changed fitting code is a different fit, not a cache hit
    cf.fit_transform(inputs, "global", {**FAST, "eval_every": 5})
    assert len(list((cache / "fits").glob("*.npz"))) == 4
    monkeypatch.setattr(cf, "fit_digest", lambda: "other code")
    cf.fit_transform(inputs, "global", FAST)
    assert len(list((cache / "fits").glob("*.npz"))) == 5
    # held-out features never enter the fit: changing them changes nothing
    features = inputs.features.copy()
    features[inputs.triplets.heldout] += 5.0
    changed = cf.fit_transform(replace(inputs, features=features), "global", FAST, cache=False)
    np.testing.assert_allclose(changed.weights_, fitted["global"].weights_, rtol=1e-5, atol=1e-6)


def test_measurements_cover_every_representation(cache, data_dir):  # reads THINGS data
    inputs = _planted_inputs()
    fitted = cf.fit_transforms(inputs, ("naive", "glocal"), {**FAST, "alpha": 0.2})
    align = ct.alignment_table(inputs, fitted)
    assert align["representation"].tolist() == [
        "zero-shot", "naive", "glocal", "chance", "generating embedding",
    ]  # fmt: skip
    models = align[~align["reference"]]
    assert (models["ci_low"] <= models["accuracy"]).all()
    assert (models["accuracy"] <= models["ci_high"]).all()
    local = ct.local_structure_table(inputs, fitted, ks=(1, 5))
    assert len(local) == 2 * 2 * 2 and local["overlap"].between(0, 1).all()
    full = sweeps.evaluate_with_intervals(
        inputs, fitted, sweeps.SweepSettings(k=5, n_repeats=2, classifier="centroid")
    )
    summary = full[["representation", *sweeps.MEASURES]]
    assert summary["representation"].tolist() == ["original", "naive", "glocal"]
    # k-NN overlap against a brute-force count: cosine neighbours, the item itself excluded
    heldout = inputs.features[inputs.triplets.heldout]
    spaces = {"original": heldout, **{k: t.transform(heldout) for k, t in fitted.items()}}
    expected = [_knn_overlap(heldout, Z, 5) for Z in spaces.values()]
    np.testing.assert_allclose(summary["overlap_things"], expected, rtol=1e-9)
    assert summary.loc[0, "overlap_things"] == 1.0 > summary.loc[1, "overlap_things"]
    assert summary[["few_shot", "auroc"]].notna().all().all()
    # the paired columns: per test triplet, transform minus original, by hand
    test = inputs.triplets.test
    zero = odd_one_out_accuracy(inputs.features, test, "cosine")
    for name, t in fitted.items():
        row = full.set_index("representation").loc[name]
        assert row["alignment_diff"] == pytest.approx(
            odd_one_out_accuracy(t.transform(inputs.features), test, "dot") - zero
        )
        assert row["alignment_diff_low"] < row["alignment_diff"] < row["alignment_diff_high"]
        # each verdict is the one its own interval gives (expected: higher than the original;
        # margins of companion.paper.comparisons.MARGINS), by the rule written out here
        for measure, margin in (("alignment", 0.0), ("few_shot", 0.01), ("auroc", 0.01)):
            low, high = row[f"{measure}_diff_low"], row[f"{measure}_diff_high"]
            assert low <= row[f"{measure}_diff"] <= high
            expected = ("no effect" if -margin < low and high < margin else "holds" if low > 0
                        else "opposite" if high < 0 else "not resolved")  # fmt: skip
            assert row[f"{measure}_verdict"] == expected, (name, measure, low, high)


def _knn_overlap(X: np.ndarray, Z: np.ndarray, k: int) -> float:
    """Mean shared fraction of each row's k cosine neighbours in X and Z, by loops."""

    def neighbours(A: np.ndarray, i: int) -> set[int]:
        unit = A / np.linalg.norm(A, axis=1, keepdims=True)
        sims = unit @ unit[i]
        sims[i] = -np.inf
        return set(np.argsort(-sims, kind="stable")[:k].tolist())

    return float(np.mean([len(neighbours(X, i) & neighbours(Z, i)) / k for i in range(len(X))]))


def _scored_search(monkeypatch: pytest.MonkeyPatch, score, searched: list | None = None) -> None:
    """Replace the grid search by one that ranks every setting by ``score(setting)`` for every
    rule (no fold fits at all), recording the lambdas of each search in ``searched``."""
    import glocal.search as gs

    class Scored:
        def __init__(self, base, grid, **kwargs):
            self.grid = gs.resolve_grid(grid)  # what the real search does with its grid first

        def fit(self, X, triplets, contrast=None):
            if searched is not None:
                searched.append(sorted({s["lmbda"] for s in self.grid}))
            ranks = (-np.array([score(s) for s in self.grid])).argsort().argsort() + 1
            self.cv_results_ = {"params": self.grid, **{f"rank_test_{r}": ranks
                                                        for r in gs.RULE_SCORE}}  # fmt: skip
            return self

    monkeypatch.setattr(gs, "GlocalSearchCV", Scored)


def test_a_choice_on_the_grids_edge_grows_the_grid_until_it_is_inside(monkeypatch):
    searched: list = []
    # a search whose score peaks at lmbda = 10, whatever else is set
    _scored_search(monkeypatch, lambda s: -abs(np.log10(s["lmbda"]) - 1.0) - s["alpha"], searched)
    inputs = _planted_inputs()
    spec = {"grid": {"alpha": [0.1, 0.5], "lmbda": [1.0, 0.1]}, "scoring": "alignment",
            "extend": ["lmbda"]}  # fmt: skip
    best, table = cf.select_settings(inputs, "glocal", spec)
    assert best == {"alpha": 0.1, "lmbda": 10.0}
    assert searched == [[0.1, 1.0], [0.1, 1.0, 10.0], [0.1, 1.0, 10.0, 100.0]]
    assert table.attrs["edges"] == {"alpha": "lowest"} and table.attrs["extensions"] == 2
    assert table.attrs["grid"]["lmbda"] == [0.1, 1.0, 10.0, 100.0]
    assert len(table) == 8  # every alpha at every lambda: the grid stays a product
    searched.clear()
    best, table = cf.select_settings(inputs, "glocal", {**spec, "max_extensions": 1})
    assert best == {"alpha": 0.1, "lmbda": 10.0}
    assert table.attrs["edges"] == {"alpha": "lowest", "lmbda": "highest"}
    assert cf.edge_note(table.attrs) == ("alpha = 0.1, the lowest of 0.1 … 0.5; "
                                         "lmbda = 10, the highest of 0.1 … 10")  # fmt: skip
    assert cf.edge_note(None) == "not searched"
    with pytest.raises(GlocalError, match="'extend' names \\['tau'\\]"):
        cf.select_settings(inputs, "glocal", {**spec, "extend": ["tau"]})


def test_each_alpha_sweep_rule_sets_lambda_as_it_says(cache, monkeypatch):
    def peaked(s):  # best lambda 10^(1 - 4 alpha), and alpha costs 2 alpha
        alpha = s.get("alpha", 0.0)
        return -abs(np.log10(s["lmbda"]) - 1 + 4 * alpha) - 2 * alpha + s.get("tau", 0.0)

    _scored_search(monkeypatch, peaked)
    inputs = _planted_inputs()
    selection = {  # gLocal's grid also varies tau (0.2 wins: the score rewards it)
        "global": {"grid": {"lmbda": [1.0, 10.0, 100.0]}, "scoring": "alignment"},
        "glocal": {"grid": {"alpha": [0.1, 0.5], "lmbda": [0.01, 0.1, 1.0], "tau": [0.05, 0.2]},
                   "scoring": "alignment"},
    }  # fmt: skip
    params = {**FAST, "alpha": None}  # as the profiles leave it: chosen by the search
    assert cf.grid_alphas(selection) == [0.1, 0.5]
    lambdas, taus = {}, {}
    for rule in cf.LAMBDA_RULES:
        sweep = cf.fit_alpha_sweep(inputs, None, params, selection, lmbda=rule)
        assert list(sweep) == [0.0, 0.1, 0.5]
        assert [t.alpha for t in sweep.values()] == [0.0, 0.1, 0.5]
        assert sweep[0.0].regularizer == "eye" and sweep[0.0].max_steps == FAST["max_steps"]
        lambdas[rule] = [t.lmbda for t in sweep.values()]
        taus[rule] = [t.tau for t in sweep.values()]
    # page 1: global chooses lambda 10, gLocal alpha 0.1 with lambda 1 (10^0.6 rounds to 1)
    assert lambdas["fixed"] == [1.0, 1.0, 1.0]
    assert lambdas["selected"] == [10.0, 1.0, 1.0]
    assert lambdas["per-alpha"] == [10.0, 1.0, 0.1]  # alpha 0.5 alone prefers 10^-1
    # fixed holds lambda alone and per-alpha searches lambda alone (tau from params: the
    # preset's); selected holds all of page 1's choice
    default_tau = PRESETS["glocal"].get("tau", GlocalTransform().tau)
    assert taus["fixed"] == taus["per-alpha"] == [default_tau] * 3
    assert taus["selected"] == [default_tau, 0.2, 0.2]
    page_1 = cf.fit_transform(inputs, "global", params, selection=selection)
    again = cf.fit_alpha_sweep(inputs, [0.0], params, selection, lmbda="selected")[0.0]
    np.testing.assert_array_equal(again.weights_, page_1.weights_)
    with pytest.raises(GlocalError, match="lmbda must be one of"):
        cf.fit_alpha_sweep(inputs, [0.0], params, selection, lmbda="per alpha")
    with pytest.raises(GlocalError, match="varies no alpha"):
        cf.grid_alphas({"glocal": {"grid": {"lmbda": [1.0]}}})


def test_a_claim_names_its_units_and_where_other_settings_disagree():
    import pandas as pd

    from companion.paper.comparisons import claim

    rows = pd.DataFrame({
        "task": ["coarse", "fine", "coarse", "fine"], "representation": ["glocal"] * 4,
        "shots": [5, 5, 2, 2], "mean": [0.03, 0.01, 0.05, 0.01],
        "ci_low": [0.01, -0.01, -0.02, -0.01], "ci_high": [0.05, 0.03, 0.12, 0.03],
        "n": [19, 45, 19, 45], "unit": ["categories"] * 4,
        "verdict": ["holds", "not resolved", "not resolved", "not resolved"],
    })  # fmt: skip
    text, verdict = claim(rows[rows["shots"] == 5], "glocal", "gLocal − original",
                          others=rows[rows["shots"] == 2], other_label="shots")  # fmt: skip
    assert verdict == "mixed"
    assert text == ("gLocal − original: coarse +0.030 [+0.010, +0.050] over 19 categories, holds; "
                    "fine +0.010 [-0.010, +0.030] over 45 categories, not resolved "
                    "(elsewhere: 2 shots coarse not resolved)")  # fmt: skip
    assert claim(rows.iloc[:0], "glocal") == ("", "n/a")


def test_paired_summary_reads_insensitive_when_the_positive_control_is_inside_the_margin():
    import pandas as pd

    from companion.paper.comparisons import paired_summary

    rng = np.random.default_rng(0)
    rows = []
    for category in range(12):
        for fold in range(3):
            base = rng.normal(0.7, 0.05)
            for name, shift in (("original", 0.0), ("glocal", 0.001), ("naive", -0.002)):
                rows.append({"category": f"c{category}", "fold": fold, "representation": name,
                             "value": base + shift + rng.normal(0, 0.0005)})  # fmt: skip
    table = pd.DataFrame(rows)
    quiet = paired_summary(
        table, "value", ["fold", "category"], margin=0.01, clusters=["category"], control="naive"
    )
    quiet = quiet.set_index("representation")
    assert quiet.loc["glocal", "verdict"] == "insensitive" and quiet.loc["glocal", "n"] == 12
    assert quiet.loc["glocal", "unit"] == "categories"
    harmed = table.assign(value=np.where(table["representation"] == "naive",
                                         table["value"] - 0.05, table["value"]))  # fmt: skip
    seen = paired_summary(
        harmed, "value", ["fold", "category"], margin=0.01, clusters=["category"], control="naive"
    ).set_index("representation")
    assert seen.loc["glocal", "verdict"] == "no effect"  # the control shows the test can see harm
    assert seen.loc["naive", "verdict"] == "opposite" and np.isnan(seen.loc["naive", "control_low"])


def test_image_tasks_are_measured_as_the_official_protocol_by_the_library(monkeypatch):
    from glocal.evaluation.anomaly import shifted_anomaly_detection
    from glocal.evaluation.comparison import Downstream, EvalSettings
    from glocal.evaluation.few_shot import few_shot

    rng = np.random.default_rng(3)
    fine_train, fine_test = np.repeat(np.arange(8), 10), np.repeat(np.arange(8), 5)
    centres = rng.normal(size=(8, 6)) + np.repeat(3 * rng.normal(size=(2, 6)), 4, axis=0)
    train_X = centres[fine_train] + rng.normal(size=(80, 6))
    test_X = centres[fine_test] + rng.normal(size=(40, 6))
    data = Downstream(train_X, fine_train // 4, test_X, fine_test // 4, test_groups=fine_test,
                      fixed_test=True, train_fine=fine_train, test_fine=fine_test,
                      protocol="shift")  # fmt: skip
    monkeypatch.setattr(ct, "_task_data", lambda inputs, task: data)
    scaled = {"scaled": type("Scaled", (), {"transform": lambda self, X: 3.0 * X})()}
    settings = EvalSettings(shots=(2, 3), n_repeats=2, n_test_per_class=3, seed=5,
                            classifiers=("logreg",))  # fmt: skip
    table = ct.few_shot_table(None, scaled, ["cifar100-shift"], settings)  # type: ignore[arg-type]
    for name, scale in (("original", 1.0), ("scaled", 3.0)):
        direct = few_shot(
            scale * train_X,
            data.train_y,
            scale * test_X,
            data.test_y,
            shots=(2, 3),
            n_test_per_class=3,
            n_repeats=2,
            seed=5,
            fixed_test=True,
            test_groups=fine_test,
        )  # the code before the path
        mine = table[table["representation"] == name]
        np.testing.assert_allclose(mine["accuracy"], direct["accuracy"], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(mine["n_test"], direct["n_test"])
        assert set(mine["task"]) == {"cifar100-shift"}
    auroc = ct.anomaly_table(None, scaled, ["cifar100-shift"], EvalSettings(anomaly_k=3))  # type: ignore[arg-type]
    shifted = shifted_anomaly_detection(train_X, fine_train, data.train_y, test_X, fine_test,
                                        data.test_y, k=3)  # fmt: skip
    original = auroc[auroc["representation"] == "original"]
    np.testing.assert_array_equal(original["auroc"], shifted.per_class["auroc"])
    assert list(original.columns[:5]) == list(shifted.per_class.columns)
