"""THINGS category tasks: the labelling policy, held-out use, and the real categories file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glocal.errors import GlocalError
from glocal.evaluation.categories import (
    category_labels,
    near_categories,
    things_anomaly_detection,
    things_few_shot,
)

FEW_CS = (0.01, 1.0, 100.0)


@pytest.fixture
def toy_categories() -> pd.DataFrame:
    """Six objects: 0-1 only 'food', 2 'food'+'fruit', 3 only 'fruit', 4 none, 5 'tool'."""
    return pd.DataFrame(
        {
            "food": [1, 1, 1, 0, 0, 0],
            "fruit": [0, 0, 1, 1, 0, 0],
            "tool": [0, 0, 0, 0, 0, 1],
        },
        index=[f"obj{i}" for i in range(6)],
    )


def test_overlap_policies(toy_categories):
    largest = category_labels(toy_categories)
    assert largest.to_dict() == {0: "food", 1: "food", 2: "food", 3: "fruit", 5: "tool"}
    smallest = category_labels(toy_categories, overlap="smallest")
    assert smallest.to_dict() == {0: "food", 1: "food", 2: "fruit", 3: "fruit", 5: "tool"}
    dropped = category_labels(toy_categories, overlap="drop")
    assert dropped.to_dict() == {0: "food", 1: "food", 3: "fruit", 5: "tool"}
    assert 4 not in largest.index  # objects in no category are excluded


def test_min_members_reassigns_to_the_next_category(toy_categories):
    # 'fruit' has 2 members under "smallest"; with min_members=3 object 2 falls back to 'food'
    labels = category_labels(toy_categories, min_members=3, overlap="smallest")
    assert labels.to_dict() == {0: "food", 1: "food", 2: "food"}
    held = category_labels(toy_categories, objects=[1, 2, 3, 5], overlap="smallest")
    assert held.to_dict() == {1: "food", 2: "fruit", 3: "fruit", 5: "tool"}
    assert category_labels(toy_categories, [1, 2, 3, 5], 2, "smallest").to_dict() == {
        2: "fruit",
        3: "fruit",
    }


def planted_things(n_per=40, n_cats=4, dim=12, seed=0):
    """Objects in planted category clusters, some in two categories, some in none."""
    rng = np.random.default_rng(seed)
    n = n_per * n_cats + 20
    member = np.zeros((n, n_cats), dtype=int)
    cat = np.repeat(np.arange(n_cats), n_per)
    member[np.arange(n_per * n_cats), cat] = 1
    member[:5, 1] = 1  # five objects of category 0 also belong to category 1
    centres = rng.normal(size=(n_cats + 1, dim)) * 8
    labels = np.concatenate([cat, np.full(20, n_cats)])
    X = centres[labels] + rng.normal(size=(n, dim))
    frame = pd.DataFrame(member, columns=[f"c{j}" for j in range(n_cats)])
    frame.index = [f"o{i}" for i in range(n)]
    return X, frame


@pytest.mark.slow
def test_few_shot_on_planted_categories_uses_only_heldout_objects():
    X, categories = planted_things()
    heldout = np.arange(0, len(X), 2)
    results = things_few_shot(
        X, categories, heldout, shots=(1, 5), n_test_per_class=5, n_repeats=2,
        Cs=FEW_CS, verbose=0,
    )  # fmt: skip
    assert set(results["classifier"]) == {"logreg", "centroid"}
    assert (results["n_classes"] == 4).all()
    assert results["accuracy"].mean() > 0.85
    other = X.copy()
    other[np.setdiff1d(np.arange(len(X)), heldout)] = 1e3  # non-held-out rows must not matter
    again = things_few_shot(
        other, categories, heldout, shots=(1, 5), n_test_per_class=5, n_repeats=2,
        Cs=FEW_CS, verbose=0,
    )  # fmt: skip
    pd.testing.assert_frame_equal(results, again)


def test_anomaly_detection_on_planted_categories():
    X, categories = planted_things()
    heldout = np.arange(1, len(X), 2)
    result = things_anomaly_detection(X, categories, heldout, k=5)
    assert sorted(result.per_class["class"]) == ["c0", "c1", "c2", "c3"]
    assert result.mean_auroc > 0.95
    assert (result.per_class["n_normal_train"] >= 5).all()
    total = result.per_class["n_test_normal"] + result.per_class["n_test_anomalous"]
    assert total.nunique() == 1 and total.iloc[0] < len(heldout)  # uncategorised left out


def test_things_tasks_reject_bad_inputs(toy_categories):
    X, categories = planted_things()
    with pytest.raises(GlocalError, match="categories has 6 rows but X has 180"):
        things_few_shot(X, toy_categories, np.arange(6), verbose=0)
    with pytest.raises(GlocalError, match="0 or 1"):
        category_labels(toy_categories * 2)
    with pytest.raises(GlocalError, match="DataFrame"):
        category_labels(toy_categories.to_numpy())
    with pytest.raises(GlocalError, match=r"indices must lie in \[0, 180\)"):
        things_anomaly_detection(X, categories, [0, 1, 500])
    with pytest.raises(GlocalError, match="repeat"):
        things_anomaly_detection(X, categories, [0, 0, 1])
    with pytest.raises(GlocalError, match="overlap must be"):
        category_labels(toy_categories, overlap="first")
    with pytest.raises(GlocalError, match="only 1 categories"):
        things_few_shot(X, categories, np.arange(40), verbose=0)
    with pytest.raises(GlocalError, match="min_members=3 is too small"):
        things_anomaly_detection(X, categories, np.arange(180), k=5, min_members=3)


def read_categories(data_dir) -> pd.DataFrame:
    """The THINGS categories file as glocal.things.categories() describes it."""
    raw = pd.read_csv(data_dir / "things" / "Categories_final_20200131.tsv", sep="\t")
    raw = raw[raw["Word"].notna()]  # the trailing totals row has no Word
    frame = raw.drop(columns=raw.columns[1]).set_index("Word").fillna(0).astype(int)
    frame.index.name = "uniqueID"
    return frame


def test_real_categories_give_top_level_classes(data_dir):
    categories = read_categories(data_dir)
    assert categories.shape == (1854, 53)
    labels = category_labels(categories)
    assert len(labels) == 1854 - 406  # objects in no category are excluded
    counts = labels.value_counts()
    assert counts["food"] == 295 and counts["animal"] > 100  # fruit→food, mammal→animal
    assert "mammal" not in counts and "fruit" not in counts
    rng = np.random.default_rng(0)
    heldout = np.sort(rng.permutation(1854)[:371])
    kept = category_labels(categories, heldout, min_members=15)
    assert kept.nunique() >= 5 and (kept.value_counts() >= 15).all()


def test_near_categories_follow_the_reference_centroids():
    labels = pd.Series(["a", "a", "b", "b", "c", "c", "d", "d"], index=[0, 1, 2, 3, 4, 5, 6, 7])
    angle = {"a": 0.0, "b": 0.3, "c": 1.5, "d": 1.9}  # a-b close, c-d close, b nearer c than a
    reference = np.array([[np.cos(angle[c]), np.sin(angle[c])] for c in labels])
    reference[::2] *= 3.0  # the length of a row does not matter to the cosine of the centroids
    assert near_categories(reference, labels, 1) == {"a": ["b"], "b": ["a"], "c": ["d"],
                                                     "d": ["c"]}  # fmt: skip
    assert near_categories(reference, labels, 2)["b"] == ["a", "c"]
    with pytest.raises(GlocalError, match="near=4: choose 1 to 3"):
        near_categories(reference, labels, 4)


def test_near_protocol_needs_a_reference_and_counts_fewer_anomalies():
    X, categories = planted_things()
    heldout = np.arange(1, len(X), 2)
    with pytest.raises(GlocalError, match="needs reference="):
        things_anomaly_detection(X, categories, heldout, k=5, near=1)
    near = things_anomaly_detection(X, categories, heldout, k=5, near=1, reference=X)
    every = things_anomaly_detection(X, categories, heldout, k=5)
    assert (near.per_class["n_test_anomalous"] < every.per_class["n_test_anomalous"]).all()
    assert (near.per_class["n_test_normal"] == every.per_class["n_test_normal"]).all()
