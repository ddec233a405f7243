"""The controlled simulation: the planted world, and the mechanism on a small world (naive
alignment destroys the local structure people ignore; gLocal keeps it)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from companion.paper import scenarios as sim
from glocal.errors import GlocalError
from glocal.evaluation.alignment import odd_one_out_accuracy
from glocal.evaluation.structure import block_contrast
from glocal.planted import WorldConfig, make_world

SMALL = WorldConfig(
    n_categories=6, n_subclasses=3, objects_per_subclass=10, category_dims=6, subclass_dims=12,
    noise_dims=30, n_train_triplets=12_000, n_test_triplets=5000, n_contrast=1000,
    downstream_per_subclass=12,
)  # fmt: skip
FAST_FIT = sim.FitConfig(max_steps=300, triplet_batch_size=2048)


def test_world_layout_and_determinism():
    world = make_world(SMALL, seed=3)
    m = 6 * 3 * 10
    assert world.X.shape == (m, SMALL.n_features) and world.X.dtype == np.float32
    assert world.H.shape == (m, SMALL.category_dims + SMALL.subclass_dims)
    assert np.array_equal(world.category, world.subclass // 3)
    assert np.bincount(world.subclass).tolist() == [10] * 18
    assert not set(world.train_objects) & set(world.test_objects)
    assert len(world.test_objects) == round(0.25 * m)
    assert np.isin(world.train_triplets, world.train_objects).all()
    assert np.isin(world.test_triplets, world.test_objects).all()
    assert world.contrast.shape == (1000, SMALL.n_features)
    assert world.probe.shape == (18 * 12, SMALL.n_features)
    again = make_world(SMALL, seed=3)
    assert np.array_equal(world.X, again.X) and np.array_equal(
        world.train_triplets, again.train_triplets
    )
    assert not np.array_equal(world.X, make_world(SMALL, seed=4).X)


def _mean_cosine(X: np.ndarray, mask: np.ndarray) -> float:
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    return float((unit @ unit.T)[mask].mean())


def test_planted_structure_local_in_the_network_global_in_people():
    world = make_world(SMALL, seed=0)
    same_sub = world.subclass[:, None] == world.subclass[None, :]
    same_cat = world.category[:, None] == world.category[None, :]
    off = ~np.eye(len(world.X), dtype=bool)
    # network: neighbours share the subclass; the category barely shows in raw cosines
    sub = _mean_cosine(world.X, same_sub & off)
    cat = _mean_cosine(world.X, same_cat & ~same_sub)
    other = _mean_cosine(world.X, ~same_cat)
    assert sub > cat + 0.2 and sub > other + 0.2 and abs(cat - other) < 0.1
    # ... yet the human embedding is an exact linear function of the network features
    coef, *_ = np.linalg.lstsq(world.X.astype(np.float64), world.H, rcond=None)
    np.testing.assert_allclose(world.X @ coef, world.H, atol=1e-4)
    # people: categories dominate; the network's category grouping is much weaker
    human = block_contrast(world.H @ world.H.T, world.category)
    network = block_contrast(world.X @ world.X.T, world.category)
    assert human > 1.5 and human > 3 * network
    # the simulated choices follow the human embedding, not the raw network
    assert odd_one_out_accuracy(world.H, world.test_triplets) > 0.6
    assert odd_one_out_accuracy(world.X, world.test_triplets, "cosine") < 0.5
    # the control: people weigh the subclass as the network does
    control = make_world(sim.scenarios(SMALL)["control"], seed=0)
    assert block_contrast(control.H @ control.H.T, control.subclass) > block_contrast(
        world.H @ world.H.T, world.subclass
    )


def test_bad_configs_are_refused():
    with pytest.raises(GlocalError, match="heldout_fraction"):
        make_world(replace(SMALL, heldout_fraction=1.0))
    with pytest.raises(GlocalError, match="2 subclasses"):
        make_world(replace(SMALL, n_subclasses=1))
    with pytest.raises(GlocalError, match="unknown scenario"):
        sim.run_simulation(SMALL, FAST_FIT, names=["main", "nope"])
    with pytest.raises(GlocalError, match="unknown transform"):
        sim.fit_transforms(make_world(SMALL), FAST_FIT, names=["original"])


def _table(values: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    rows = [{"scenario": s, "seed": 0, "transform": t, "metric": m, "value": v}
            for (s, t, m), v in values.items()]  # fmt: skip
    return pd.DataFrame(rows)


def test_check_predictions_pass_fail_share_and_not_run():
    preds = [
        sim.Prediction("a", "main", "x beats y", ("x", "m"), ("y", "m"), 0.1),
        sim.Prediction("b", "main", "x keeps 80% of y's gain", ("x", "m"), ("y", "m"), share=0.8),
        sim.Prediction("c", "control", "never run", ("x", "m"), ("y", "m")),
        sim.Prediction("d", "main", "metric never measured", ("x", "n"), ("y", "m")),
    ]
    table = _table({("main", "original", "m"): 0.5, ("main", "x", "m"): 0.75,
                    ("main", "y", "m"): 0.8})  # fmt: skip
    table["transform"] = table["transform"].astype(str)
    checked = sim.check_predictions(table, preds).set_index("id")
    assert checked.loc["a", "result"] == "FAIL"  # 0.75 is not > 0.8 + 0.1
    assert checked.loc["b", "result"] == "PASS"  # 0.25 ≥ 0.8 · 0.3
    assert checked.loc["c", "result"] == "NOT RUN"
    assert checked.loc["d", "result"] == "NOT RUN"
    assert checked.loc["a", "n_holding"] == 0 and checked.loc["a", "n_seeds"] == 1
    # the compared quantities, not the raw sides: the difference and the ratio of gains
    assert checked.loc["a", "value"] == pytest.approx(-0.05)
    assert checked.loc["a", "compared"] == "x − y" and checked.loc["a", "threshold"] == "> 0.1"
    assert checked.loc["b", "value"] == pytest.approx(0.25 / 0.3)
    assert checked.loc["b", "threshold"] == "≥ 0.8"


def test_a_prediction_passes_only_on_every_seed():
    pred = [sim.Prediction("a", "main", "x beats y", ("x", "m"), ("y", "m"), 0.0)]
    rows = []
    for seed, (x, y) in enumerate([(0.9, 0.5), (0.4, 0.5), (0.8, 0.5)]):
        rows += [{"scenario": "main", "seed": seed, "transform": t, "metric": "m", "value": v}
                 for t, v in (("original", 0.5), ("x", x), ("y", y))]  # fmt: skip
    results = pd.DataFrame(rows)
    checked = sim.check_predictions(results, pred).iloc[0]
    # the mean over seeds holds (0.7 > 0.5), but one seed of three does not
    assert checked["left_value"] > checked["right_value"]
    assert checked["result"] == "2 of 3 seeds" and checked["n_holding"] == 2
    assert checked["per_seed"] == "0.400, -0.100, 0.300"
    every = results.assign(value=results["value"].where(results["transform"] != "x", 0.9))
    assert sim.check_predictions(every, pred).iloc[0]["result"] == "PASS"


def test_mechanism_on_a_small_world():
    """Every stated prediction holds on a small world: gLocal keeps the neighbourhoods and the
    fine-grained accuracy that naive alignment destroys, and the control shows why."""
    runs = sim.run_simulation(SMALL, FAST_FIT, seeds=[0], names=["main"], shots=(1,), repeats=3)
    # the control needs only the naive fit (prediction C1)
    control = make_world(sim.scenarios(SMALL)["control"], seed=0)
    fitted = sim.fit_transforms(control, FAST_FIT, names=["naive"])
    control_table = sim.evaluate_world(
        control, {"original": None, **fitted}, shots=(1,), repeats=3
    ).assign(scenario="control", seed=0)
    results = pd.concat([sim.results_table(runs), control_table], ignore_index=True)
    checked = sim.check_predictions(results)
    print(sim.summarize(results).round(3).to_string())
    print(checked[["id", "value", "threshold", "per_seed", "result"]].to_string())
    assert (checked["result"] == "PASS").all(), checked[checked["result"] != "PASS"]
    main = runs[0]
    assert main.name == "main" and main.fitted["original"] is None
    assert set(main.fitted) == set(sim.TRANSFORMS)
