"""The comparison entry point: one tidy table over named transforms, with settings recorded."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import special_ortho_group

from glocal.errors import GlocalError
from glocal.evaluation.alignment import odd_one_out_accuracy
from glocal.evaluation.comparison import (
    COLUMNS,
    UNIT_COLUMNS,
    UNITS,
    EvalSettings,
    compare,
    compare_units,
    resolve_transform,
    summarize_compare_units,
)
from glocal.evaluation.few_shot import few_shot
from glocal.triplets import simulate_triplets

SETTINGS = EvalSettings(
    n_bootstrap=20, ks=(1, 5), neighbourhood_k=5, shots=(1, 3), n_test_per_class=4,
    n_repeats=2, Cs=(0.1, 10.0), things_n_test_per_class=3, anomaly_k=3,
)  # fmt: skip


class RotateScale:
    """A stand-in fitted transform: any object with .transform works."""

    def __init__(self, dim: int):
        self.matrix = 2.5 * special_ortho_group.rvs(dim, random_state=1)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X @ self.matrix


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    things = rng.normal(size=(90, 6))
    human = things[:, :3] + 0.3 * rng.normal(size=(90, 3))
    triplets = simulate_triplets(human, 500, seed=0)
    categories = pd.DataFrame(
        {"a": (np.arange(90) % 3 == 0).astype(int), "b": (np.arange(90) % 3 == 1).astype(int)},
        index=[f"o{i}" for i in range(90)],
    )
    contrast = rng.normal(size=(50, 6))
    centres = rng.normal(size=(3, 6)) * 3
    ytr, yte = np.repeat(np.arange(3), 8), np.repeat(np.arange(3), 5)
    train = centres[ytr] + rng.normal(size=(24, 6))
    test = centres[yte] + rng.normal(size=(15, 6))
    return things, human, triplets, categories, contrast, (train, ytr, test, yte)


@pytest.fixture(scope="module")
def npz_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "official.npz"
    weights = np.random.default_rng(5).normal(size=(6, 6)).astype(np.float32)
    np.savez(path, weights=weights, bias=np.full(6, 0.1, np.float32), mean=0.2, std=1.5)
    return path


def test_compare_returns_a_tidy_table(problem, npz_path):
    things, human, triplets, categories, contrast, downstream = problem
    table = compare(
        {"original": "original", "rotated": RotateScale(6), "official": npz_path},
        things=things, triplets=triplets, reference=human, heldout_objects=np.arange(0, 90, 2),
        categories=categories, contrast=contrast, downstream={"toy": downstream},
        settings=SETTINGS, verbose=0,
    )  # fmt: skip
    assert list(table.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert {"setting_n_bootstrap", "setting_ks", "setting_seed", "glocal_version"} <= set(table)
    assert (table["setting_n_bootstrap"] == 20).all() and (table["setting_ks"] == "1,5").all()
    assert set(table["transform"]) == {"original", "rotated", "official"}
    expected = {
        "odd_one_out", "rsa", "neighbour_overlap", "neighbourhood_correlation", "few_shot",
        "anomaly_detection",
    }  # fmt: skip
    for name in ("original", "rotated", "official"):
        assert set(table.loc[table["transform"] == name, "measurement"]) == expected
    assert set(table["dataset"]) == {"things", "contrast", "toy", "things_categories"}
    assert table["value"].notna().all()

    def pick(**where):
        rows = table
        for key, value in where.items():
            rows = rows[rows[key] == value]
        return rows

    # local structure of a rotation + scale is exactly preserved
    assert (pick(transform="rotated", measurement="neighbour_overlap")["value"] == 1.0).all()
    # odd-one-out: cosine for the original features, dot products for transformed ones
    original = pick(transform="original", measurement="odd_one_out").iloc[0]
    assert original["similarity"] == "cosine"
    assert original["value"] == pytest.approx(odd_one_out_accuracy(things, triplets, "cosine"))
    with np.load(npz_path) as data:
        manual = ((things - data["mean"]) / data["std"]) @ data["weights"] + data["bias"]
    official = pick(transform="official", measurement="odd_one_out").iloc[0]
    assert official["similarity"] == "dot" and official["source"] == str(npz_path)
    assert official["value"] == pytest.approx(odd_one_out_accuracy(manual, triplets, "dot"))
    # intervals over the units a claim generalises over: the concepts of the triplets
    assert original["unit"] == f"{len(np.unique(triplets))} concepts"
    assert original["ci_low"] < original["value"] < original["ci_high"]
    rsa_row = pick(transform="original", measurement="rsa").iloc[0]
    assert rsa_row["n"] == 45 and rsa_row["ci_low"] <= rsa_row["value"] <= rsa_row["ci_high"]
    few = pick(transform="original", measurement="few_shot", dataset="toy")
    # the official protocol skips 1-shot logistic regression (no support set to choose C on)
    assert sorted(zip(few["classifier"], few["shots"].astype(int), strict=True)) == [
        ("centroid", 1), ("centroid", 3), ("logreg", 3),
    ]  # fmt: skip
    anomaly = pick(transform="original", measurement="anomaly_detection", dataset="toy")
    per_class = anomaly[anomaly["metric"] == "auroc"]
    assert sorted(per_class["category"]) == [0, 1, 2]
    mean_row = anomaly[anomaly["metric"] == "mean_auroc"].iloc[0]
    assert mean_row["value"] == pytest.approx(per_class["value"].mean())
    assert mean_row["unit"] == "3 classes" and mean_row["ci_low"] <= mean_row["value"]
    # few-shot accuracy pools every episode's test items; its interval is over the classes
    episodes = few_shot(
        *downstream,
        shots=(3,),
        n_test_per_class=SETTINGS.n_test_per_class,
        n_repeats=SETTINGS.n_repeats,
        classifier="centroid",
        seed=SETTINGS.seed,
    )
    row = few[few["classifier"] == "centroid"]
    row = row[row["shots"] == 3].iloc[0]
    pooled = (episodes["accuracy"] * episodes["n_test"]).sum() / episodes["n_test"].sum()
    assert row["value"] == pytest.approx(pooled) and row["unit"] == "3 classes"


def test_compare_skips_measurements_without_inputs(problem):
    things, *_ = problem
    table = compare(["original"], things=things, settings=SETTINGS, verbose=0)
    assert table.empty and list(table.columns[: len(COLUMNS)]) == list(COLUMNS)


def test_unknown_or_missing_transforms_raise(problem, tmp_path):
    things, *_ = problem
    with pytest.raises(GlocalError, match="unknown transform 'glocall'.*'original'"):
        compare({"mine": "glocall"}, things=things, verbose=0)
    with pytest.raises(GlocalError, match="does not exist"):
        resolve_transform(tmp_path / "absent.npz")
    with pytest.raises(GlocalError, match="at least one transform"):
        compare({}, things=things, verbose=0)


def test_compare_rejects_bad_inputs(problem):
    things, human, triplets, categories, contrast, downstream = problem
    with pytest.raises(GlocalError, match=r"downstream\['toy'\]: expected \(train_X"):
        compare(["original"], downstream={"toy": downstream[:3]}, verbose=0)
    with pytest.raises(GlocalError, match="things="):
        compare(["original"], triplets=triplets, verbose=0)
    with pytest.raises(GlocalError, match="heldout_objects"):
        compare(["original"], things=things, categories=categories, verbose=0)
    with pytest.raises(GlocalError, match="reference has 80"):
        compare(["original"], things=things, reference=human[:80], verbose=0)


def test_compare_units_are_the_rows_behind_compare(problem):
    """The unit rows, checked by hand, summarise to exactly compare's rows: one path."""
    things, human, triplets, categories, contrast, downstream = problem
    inputs = dict(things=things, triplets=triplets, heldout_objects=np.arange(0, 90, 2),
                  categories=categories, contrast=contrast, downstream={"toy": downstream},
                  settings=SETTINGS)  # fmt: skip
    transforms = {"original": "original", "rotated": RotateScale(6)}
    units = compare_units(transforms, **inputs)
    assert list(units.columns[: len(UNIT_COLUMNS)]) == list(UNIT_COLUMNS)
    assert set(units["measurement"]) == set(UNITS)
    # odd one out: one row per test triplet, 1 where the pair (i, j) is the most similar
    triplet_rows = units[(units["measurement"] == "odd_one_out")
                         & (units["transform"] == "rotated")]  # fmt: skip
    Z = RotateScale(6).transform(things)
    i, j, k = triplets.T
    dots = np.stack([(Z[i] * Z[j]).sum(1), (Z[i] * Z[k]).sum(1), (Z[j] * Z[k]).sum(1)], axis=1)
    np.testing.assert_array_equal(triplet_rows["value"], (dots.argmax(1) == 0).astype(float))
    np.testing.assert_array_equal(triplet_rows[["triplet_i", "triplet_j", "triplet_k"]],
                                  triplets)  # fmt: skip
    # few-shot: one row per class of each episode, weighted by its test items
    few = units[(units["measurement"] == "few_shot") & (units["dataset"] == "toy")]
    assert set(few["class"]) == {0, 1, 2} and (few["n_test"] > 0).all()
    # the summary of the unit rows is compare's table, number for number
    summary = summarize_compare_units(units, SETTINGS.confidence)
    table = compare(transforms, **inputs)
    table = table[table["measurement"].isin(list(UNITS))].reset_index(drop=True)
    # (the mixed table holds counts as floats: the values must agree, not the dtypes)
    pd.testing.assert_frame_equal(summary, table[list(COLUMNS)], check_exact=True,
                                  check_dtype=False)  # fmt: skip


def test_compare_units_selects_measurements_and_names_what_is_missing(problem):
    things, human, triplets, categories, contrast, downstream = problem
    units = compare_units(["original"], things=things, triplets=triplets, contrast=contrast,
                          measurements=["neighbour_overlap"], settings=SETTINGS)  # fmt: skip
    assert set(units["measurement"]) == {"neighbour_overlap"}
    assert sorted(units["k"].unique()) == [1, 5] and (units["value"] == 1.0).all()
    with pytest.raises(GlocalError, match=r"measurements: unknown \['rsa'\]"):
        compare_units(["original"], things=things, measurements=["rsa"])
    near = EvalSettings(anomaly_near=1)
    with pytest.raises(GlocalError, match="anomaly_near.*reference="):
        compare_units(["original"], things=things, heldout_objects=np.arange(90),
                      categories=categories, settings=near)  # fmt: skip
    empty = compare_units(["original"], things=things)
    assert empty.empty and list(empty.columns) == [*UNIT_COLUMNS, "value"]


def _shift_world(seed: int = 0):
    """Two superclasses of four fine classes each; test items of every fine class."""
    rng = np.random.default_rng(seed)
    fine_centres = rng.normal(size=(8, 5)) + np.repeat(3 * rng.normal(size=(2, 5)), 4, axis=0)

    def draw(n):
        fine = np.repeat(np.arange(8), n)
        return fine_centres[fine] + rng.normal(size=(len(fine), 5)), fine, fine // 4

    return (*draw(12), *draw(6))


def test_a_downstream_protocol_is_measured_as_its_library_function_measures_it():
    from glocal.evaluation.anomaly import shifted_anomaly_detection
    from glocal.evaluation.comparison import Downstream

    train_X, train_fine, train_y, test_X, test_fine, test_y = _shift_world()
    groups = test_fine  # draw the fixed test set per fine class, as BREEDS does per subclass
    task = Downstream(train_X, train_y, test_X, test_y, test_groups=groups, fixed_test=True,
                      train_fine=train_fine, test_fine=test_fine, protocol="shift")  # fmt: skip
    rotate = RotateScale(5)
    units = compare_units({"original": "original", "rotated": rotate}, downstream={"t": task},
                          settings=SETTINGS)  # fmt: skip
    for name, Z_train, Z_test in (("original", train_X, test_X),
                                  ("rotated", rotate.transform(train_X),
                                   rotate.transform(test_X))):  # fmt: skip
        shots = units[(units["transform"] == name) & (units["measurement"] == "few_shot")]
        direct = few_shot(Z_train, train_y, Z_test, test_y, shots=SETTINGS.shots,
                          n_test_per_class=SETTINGS.n_test_per_class,
                          n_repeats=SETTINGS.n_repeats, classifier=SETTINGS.classifiers,
                          Cs=SETTINGS.Cs, per_class=True, fixed_test=True,
                          test_groups=groups)  # fmt: skip
        np.testing.assert_array_equal(shots["value"], direct["accuracy"])
        np.testing.assert_array_equal(shots["n_test"], direct["n_test"])
        # one fixed test set, 4 items per fine class, 4 fine classes per class: 16 a class
        assert set(shots["n_test"]) == {16}
        auroc = units[(units["transform"] == name)
                      & (units["measurement"] == "anomaly_detection")]  # fmt: skip
        shifted = shifted_anomaly_detection(Z_train, train_fine, train_y, Z_test, test_fine,
                                            test_y, k=SETTINGS.anomaly_k)  # fmt: skip
        np.testing.assert_array_equal(auroc["value"], shifted.per_class["auroc"])
    standard = compare_units(["original"], downstream={"t": (train_X, train_y, test_X, test_y)},
                             settings=SETTINGS, measurements=["anomaly_detection"])  # fmt: skip
    assert not np.array_equal(
        standard["value"],
        units[(units["transform"] == "original") & (units["measurement"] == "anomaly_detection")][
            "value"
        ],
    )  # the shift protocol is not one-vs-rest
    for bad, field in (
        (replace(task, test_groups=groups[:-1]), "test_groups has 47 entries"),
        (replace(task, test_X=test_X[:, :2]), "X has 5 features but X_test has 2"),
        (Downstream(train_X, train_y, test_X, test_y[:-1]), "y_test has 47"),
    ):
        with pytest.raises(GlocalError, match=rf"^downstream\['t'\]: {field}"):
            compare_units(["original"], downstream={"t": bad}, settings=SETTINGS)
    with pytest.raises(GlocalError, match="protocol 'shift' needs train_fine and test_fine"):
        compare_units(["original"], downstream={"t": Downstream(train_X, train_y, test_X, test_y,
                                                                protocol="shift")})  # fmt: skip
    with pytest.raises(GlocalError, match=r"downstream\['t'\].protocol: unknown 'near'"):
        compare_units(
            ["original"],
            downstream={"t": Downstream(train_X, train_y, test_X, test_y, protocol="near")},
        )  # type: ignore[arg-type]
