"""Distribution shift: accuracy and drop, text corruptions, BREEDS Living-17 / Nonliving-26,
the ImageNet-C wrapper and the paired differences of page 11."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from companion.paper.text_corruptions import TEXT_CORRUPTIONS, corrupt_texts, n_edits
from glocal.data.datasets import BREEDS_TASKS, BreedsHierarchy, breeds_task
from glocal.errors import GlocalError
from glocal.evaluation.shift import shift_accuracy

# --- accuracy, shifted accuracy and drop --------------------------------------------------------


def test_shift_accuracy_and_drop_by_hand():
    # two classes with centroids (0, 0) and (10, 0) (euclidean nearest centroid)
    X_train = np.array([[-1.0, 0.0], [1.0, 0.0], [9.0, 0.0], [11.0, 0.0]])
    y_train = np.array([0, 0, 1, 1])
    # in distribution: 4 of 4 right; shifted: x = 6 and 7 go to class 1 (one of them is 0)
    in_dist = (np.array([[0.5, 0.0], [2.0, 1.0], [9.5, 0.0], [8.0, -1.0]]), np.array([0, 0, 1, 1]))
    shifted = (np.array([[6.0, 0.0], [7.0, 0.0], [4.0, 0.0], [12.0, 0.0]]), np.array([0, 1, 0, 0]))
    result = shift_accuracy(X_train, y_train, {"id": in_dist, "moved": shifted}, "id",
                            classifier="centroid", centroid_metric="euclidean")  # fmt: skip
    # shifted predictions: 1, 1, 0, 1 against 0, 1, 0, 0 -> right on items 1 and 2
    row = result.summary.iloc[0]
    assert row["shift"] == "moved"
    assert row["accuracy"] == 1.0 and row["shifted_accuracy"] == 0.5 and row["drop"] == 0.5
    assert (row["n"], row["n_shifted"]) == (4, 4)
    moved = result.per_item[result.per_item["test_set"] == "moved"]
    assert moved["prediction"].tolist() == [1, 1, 0, 1]
    assert moved["correct"].tolist() == [False, True, True, False]
    assert moved["item"].tolist() == [0, 1, 2, 3] and np.isnan(result.C)


def test_shift_accuracy_logreg_scores_every_set_with_one_fit():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    X = rng.normal(size=(60, 5)) + 4 * np.eye(5)[y]
    sets = {"id": (X[:30], y[:30]), "same": (X[:30].copy(), y[:30])}
    result = shift_accuracy(X, y, sets, "id", Cs=[1.0])
    assert result.C == 1.0
    # the same items in two sets get the same predictions: one classifier, drop exactly 0
    assert result.summary["drop"].tolist() == [0.0]
    items = result.per_item
    assert (items[items.test_set == "id"]["prediction"].to_numpy()
            == items[items.test_set == "same"]["prediction"].to_numpy()).all()  # fmt: skip


def test_shift_accuracy_refuses_bad_inputs():
    X, y = np.eye(4), np.array([0, 0, 1, 1])
    with pytest.raises(GlocalError, match="not one of the test sets"):
        shift_accuracy(X, y, {"a": (X, y), "b": (X, y)}, "c", classifier="centroid")
    with pytest.raises(GlocalError, match="at least one shifted"):
        shift_accuracy(X, y, {"a": (X, y)}, "a", classifier="centroid")
    with pytest.raises(GlocalError, match="classes the training set lacks"):
        shift_accuracy(X, y, {"a": (X, y), "b": (X, y + 5)}, "a", classifier="centroid")
    with pytest.raises(GlocalError, match="features"):
        shift_accuracy(X, y, {"a": (X, y), "b": (X[:, :2], y)}, "a", classifier="centroid")


# --- text corruptions --------------------------------------------------------------------------


def _osa(a: str, b: str) -> int:
    """Optimal string alignment distance (edits: insert, delete, substitute, adjacent swap)."""
    d = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
    d[:, 0], d[0, :] = np.arange(len(a) + 1), np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = int(a[i - 1] != b[j - 1])
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i, j] = min(d[i, j], d[i - 2, j - 2] + 1)
    return int(d[-1, -1])


TEXTS = ["abcdefghijklmnopqrst", "the quick brown foxes", "photocopier machine", "aardvark"]


@pytest.mark.parametrize("kind", TEXT_CORRUPTIONS)
@pytest.mark.parametrize("severity", [0.05, 0.1, 0.2, 0.3])
def test_text_corruptions_edit_the_stated_share_and_repeat_per_seed(kind: str, severity: float):
    out = corrupt_texts(TEXTS, kind, severity, seed=3)
    assert out == corrupt_texts(TEXTS, kind, severity, seed=3)  # deterministic per seed
    for text, new in zip(TEXTS, out, strict=True):
        k = max(1, round(severity * len(text)))
        assert n_edits(len(text), severity) == k
        if kind == "substitute":  # exactly k characters differ
            assert len(new) == len(text)
            assert sum(a != b for a, b in zip(text, new, strict=True)) == k
        else:
            assert _osa(text, new) == k, (text, new)
            if kind != "swap":
                assert len(new) == len(text) + (k if kind == "insert" else -k)
            else:
                assert sorted(new) == sorted(text)
    # another seed edits other places (the texts are long enough to tell)
    assert corrupt_texts(TEXTS, kind, severity, seed=4) != out
    # a text's corruption does not depend on the texts after it
    assert corrupt_texts(TEXTS[:1], kind, severity, seed=3) == out[:1]


def test_text_corruptions_refuse_unknown_kind_and_severity():
    with pytest.raises(GlocalError, match="unknown text corruption"):
        corrupt_texts(["word"], "shuffle", 0.1)
    with pytest.raises(GlocalError, match="severity"):
        corrupt_texts(["word"], "swap", 1.5)
    assert corrupt_texts(["word"], "swap", 0.0) == ["word"]


# --- BREEDS Living-17 and Nonliving-26 ---------------------------------------------------------


def _hierarchy(folder: Path) -> dict[str, list[str]]:
    """root -> living thing / artifact / other (level 1) -> level 2 -> 3 -> 4 -> level-5 nodes
    with 4, 2 or 6 ImageNet classes; returns the classes under each level-5 node."""
    edges, names, info, below = [], {"n00001740": "entity"}, [], {}
    branches = {"n00004258": {"L5a": 4, "L5b": 2, "L5c": 6}, "n00021939": {"N5a": 4, "N5b": 3},
                "n09999999": {"O5a": 4}}  # fmt: skip
    for top, fives in branches.items():
        n2, n3, n4 = (f"{top}-{lv}" for lv in (2, 3, 4))
        edges += [("n00001740", top), (top, n2), (n2, n3), (n3, n4)]
        for node, n_leaves in fives.items():
            edges.append((n4, node))
            below[node] = []
            for _ in range(n_leaves):
                wnid = f"n1{len(info):07d}"
                info.append([len(info), wnid, f"class {len(info)}"])
                edges.append((node, wnid))
                below[node].append(wnid)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "class_hierarchy.txt").write_text("".join(f"{p} {c}\n" for p, c in edges))
    (folder / "node_names.txt").write_text("".join(f"{w}\t{n}\n" for w, n in names.items()))
    (folder / "dataset_class_info.json").write_text(json.dumps(info))
    return below


def test_living17_and_nonliving26_keep_their_ancestor_level_and_size(tmp_path: Path):
    below = _hierarchy(tmp_path)
    index = {w: i for i, w in enumerate(sorted(w for ws in below.values() for w in ws))}
    assert BREEDS_TASKS["living17"] == {"level": 5, "n_subclasses": 4, "ancestor": "n00004258"}
    assert BREEDS_TASKS["nonliving26"]["ancestor"] == "n00021939"
    living = breeds_task("living17", tmp_path)
    # level-5 nodes below "living thing" with at least 4 classes: not L5b (2), not O5a (other)
    assert living.superclasses == ["L5a", "L5c"]
    for node, source, target in zip(living.superclasses, living.source, living.target,
                                    strict=True):  # fmt: skip
        assert len(source) == len(target) == 2 and not set(source) & set(target)
        assert set(source) | set(target) <= {index[w] for w in below[node]}
    nonliving = breeds_task("nonliving26", tmp_path)
    assert nonliving.superclasses == ["N5a"]  # N5b has 3 classes
    # without the ancestor, the level-5 nodes of every branch qualify
    everything = BreedsHierarchy(tmp_path).task("all", level=5, n_subclasses=4)
    assert everything.superclasses == ["L5a", "L5c", "N5a", "O5a"]
    with pytest.raises(GlocalError, match="not in the hierarchy"):
        BreedsHierarchy(tmp_path).task("x", level=5, n_subclasses=4, ancestor="n123")
    with pytest.raises(GlocalError, match="below n00021939"):
        BreedsHierarchy(tmp_path).task("x", level=5, n_subclasses=6, ancestor="n00021939")


# --- ImageNet-C corruptions --------------------------------------------------------------------


def _needs_imagecorruptions() -> None:
    """Skip without the optional extra (``glocal[shift]``), except in CI, which installs it."""
    import importlib.util
    import os

    if importlib.util.find_spec("imagecorruptions") is None and os.environ.get("CI") != "true":
        pytest.skip("imagecorruptions (the optional extra glocal[shift]) is not installed")


class _Images:
    """Three small random RGB images with labels and ids."""

    ids = ["val/a/1.JPEG", "val/a/2.JPEG", "val/b/3.JPEG"]
    classes = ["a", "b"]
    targets = [0, 0, 1]

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int):
        from PIL import Image

        rng = np.random.default_rng(index)
        pixels = (rng.uniform(0.2, 0.8, size=(40, 48, 3)) * 255).astype(np.uint8)
        return Image.fromarray(pixels), self.targets[index]


def test_corrupted_images_are_deterministic_and_differ_from_the_clean_ones():
    _needs_imagecorruptions()
    from glocal.features.corruptions import CorruptedImages, corruption_source

    clean = CorruptedImages(_Images(), "clean", 0, size=32)
    noisy = CorruptedImages(_Images(), "gaussian_noise", 3, size=32)
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    first = np.asarray(noisy[1][0])
    assert (np.random.get_state()[1] == state).all()  # noqa: NPY002 (restored)
    assert first.shape == (32, 32, 3) and noisy[1][1] == 0
    assert (np.asarray(noisy[1][0]) == first).all()  # the same pixels on every read
    assert (np.asarray(CorruptedImages(_Images(), "gaussian_noise", 3, size=32)[1][0])
            == first).all()  # fmt: skip
    assert np.abs(first.astype(int) - np.asarray(clean[1][0])).mean() > 5
    assert (np.asarray(CorruptedImages(_Images(), "gaussian_noise", 3, seed=1, size=32)[1][0])
            != first).any()  # fmt: skip
    # impulse noise goes through scikit-image's own generator: seeded as well
    impulse = CorruptedImages(_Images(), "impulse_noise", 2, size=32)
    assert (np.asarray(impulse[0][0]) == np.asarray(impulse[0][0])).all()
    # it travels to other processes (sharded extraction) and gives the same pixels there
    import os
    import pickle
    import subprocess

    blob = pickle.dumps(noisy)
    code = ("import pickle, sys, numpy as np; d = pickle.loads(sys.stdin.buffer.read()); "
            "sys.stdout.buffer.write(np.asarray(d[1][0]).tobytes())")  # fmt: skip
    here = Path(__file__).resolve().parent  # _Images is this module's: importable from here
    path = os.pathsep.join([str(here.parent), str(here)])
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                         check=True, env={**os.environ, "PYTHONPATH": path})  # fmt: skip
    assert out.stdout == first.tobytes()
    source = corruption_source(_Images(), "contrast", 5, size=32)
    assert source.name == "imagenet-c" and source.split == "contrast-5"
    assert source.ids() == _Images.ids and source.classes == ["a", "b"]
    with pytest.raises(GlocalError, match="unknown corruption"):
        CorruptedImages(_Images(), "rain", 1)
    with pytest.raises(GlocalError, match="severity"):
        CorruptedImages(_Images(), "fog", 6)


def test_every_benchmark_corruption_runs_on_current_numpy_and_scikit_image():
    _needs_imagecorruptions()
    from glocal.features.corruptions import CORRUPTIONS, CorruptedImages

    clean = np.asarray(CorruptedImages(_Images(), "clean", 0, size=32)[2][0]).astype(int)
    for name in CORRUPTIONS:
        image = np.asarray(CorruptedImages(_Images(), name, 5, size=32)[2][0])
        assert image.shape == (32, 32, 3) and np.abs(image - clean).mean() > 1, name


def test_missing_imagecorruptions_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    from glocal.features import corruptions

    monkeypatch.setitem(sys.modules, "imagecorruptions", None)
    monkeypatch.setitem(sys.modules, "imagecorruptions.corruptions", None)
    with pytest.raises(GlocalError, match=r"glocal\[shift\]"):
        corruptions.load_corrupt()
    with pytest.raises(GlocalError, match="imagecorruptions"):
        corruptions.CorruptedImages(_Images(), "fog", 1)
    corruptions.CorruptedImages(_Images(), "clean", 0)  # clean images need no package


# --- page 11's paired differences --------------------------------------------------------------


def _items(protocol: str, units: int, correct: dict[tuple[str, str], list[bool]]) -> pd.DataFrame:
    rows = []
    for u in range(units):
        for (test_set, name), values in correct.items():
            for i, c in enumerate(values):
                rows.append({"protocol": protocol, "task": "t", "trained_on": "names",
                             "test_set": test_set, "severity": 0.0, "fold": u, "repeat": 0,
                             "category": f"c{i % 2}", "item": i, "representation": name,
                             "correct": c})  # fmt: skip
    return pd.DataFrame(rows)


def test_shift_differences_pair_units_and_read_the_drop():
    from companion.paper.shift import accuracy_table, shift_differences

    # the transform keeps 3 of 4 right under shift where the original keeps 1: drop 0.25 vs 0.75
    correct = {("names", "original"): [True] * 4, ("names", "glocal"): [True] * 4,
               ("typo", "original"): [True, False, False, False],
               ("typo", "glocal"): [True, True, True, False]}  # fmt: skip
    items = _items("text", 3, correct)
    table = accuracy_table(items).set_index("representation")
    assert table.loc["original", "drop"] == 0.75 and table.loc["glocal", "drop"] == 0.25
    diff = shift_differences(items, margin=0.01).set_index("measure")
    assert diff.loc["drop", "mean"] == -0.5 and diff.loc["drop", "expected"] == "negative"
    # the interval is over the 2 categories (items 0, 2 and 1, 3), whose differences agree
    assert diff.loc["shifted accuracy", "mean"] == 0.5 and diff.loc["drop", "n"] == 2
    assert diff.loc["drop", "verdict"] == "holds"  # identical categories: a zero-width interval
    # one unit of the text analogue: its reference is the form it was trained on
    one = shift_differences(_items("text", 1, correct), margin=0.01, n_bootstrap=100)
    assert one.set_index("measure").loc["drop", "mean"] == pytest.approx(-0.5)
    # one split (an image task): a paired bootstrap over the items
    image = _items("breeds", 1, {(k[0].replace("names", "source").replace("typo", "target"),
                                  k[1]): v * 25 for k, v in correct.items()})  # fmt: skip
    boot = shift_differences(image, margin=0.01, n_bootstrap=200).set_index("measure")
    assert boot.loc["drop", "mean"] == pytest.approx(-0.5) and boot.loc["drop", "n"] == 100
    assert boot.loc["drop", "ci_high"] < 0 and boot.loc["drop", "verdict"] == "holds"


def _text_units(rng: np.random.Generator, n_units: int = 4, n: int = 40) -> pd.DataFrame:
    """Text-analogue items: names (in distribution), two typo severities, definitions (easier
    than the names for the original features); gLocal keeps the names but loses more under
    typos."""
    sets = {"names": (0.0, 0.70, 0.70), "swap 0.1": (0.1, 0.60, 0.50),
            "swap 0.3": (0.3, 0.50, 0.35), "definitions": (np.nan, 0.85, 0.85)}  # fmt: skip
    rows = []
    for u in range(n_units):
        for test_set, (severity, p_orig, p_glocal) in sets.items():
            for name, p in (("original", p_orig), ("glocal", p_glocal)):
                correct = rng.random(n) < p
                rows += [{"protocol": "text", "task": "t", "trained_on": "names",
                          "test_set": test_set, "severity": severity, "fold": u, "repeat": 0,
                          "category": f"c{i % 4}", "item": i, "representation": name,
                          "correct": bool(c)}
                         for i, c in enumerate(correct)]  # fmt: skip
    return pd.DataFrame(rows)


def test_family_differences_give_one_verdict_per_family_of_shifts(rng):
    from scipy import stats

    from companion.paper.shift import TYPOS, family_accuracy, family_differences, shift_answer

    items = _text_units(rng)
    families = family_differences(items, margin=0.01)
    assert len(families) == 4  # 2 families x 2 measures x 1 transform (not 3 test sets x 2)
    row = families.set_index(["family", "measure"]).loc[(TYPOS, "drop")]
    # by hand: per unit and category, the drop averaged over the typo severities, gLocal minus
    # original; the interval is over the 4 categories (CR1: every unit of a category together)
    acc = items.groupby(["fold", "category", "representation", "test_set"])["correct"].mean()
    diffs = np.zeros((4, 4))  # unit x category; every cell holds 10 items, so equal weights
    for u in range(4):
        for c in range(4):
            drop = {n: acc[(u, f"c{c}", n, "names")] - (acc[(u, f"c{c}", n, "swap 0.1")]
                                                        + acc[(u, f"c{c}", n, "swap 0.3")]) / 2
                    for n in ("original", "glocal")}  # fmt: skip
            diffs[u, c] = drop["glocal"] - drop["original"]
    mean = diffs.mean()
    per_category = (diffs - mean).sum(axis=0)
    se = np.sqrt((per_category**2).sum() * 4 / 3) / diffs.size
    half = stats.t.ppf(0.975, 3) * se
    assert (row["mean"], row["ci_low"], row["ci_high"], row["n"]) == pytest.approx(
        (mean, mean - half, mean + half, 4)
    )
    assert row["shift"] and row["expected"] == "negative"
    # names -> definitions: the original features gain there, so it is not a shift
    table = family_accuracy(items).set_index(["family", "representation"])
    assert not table.loc[("names → definitions", "original"), "shift"]
    assert table.loc[(TYPOS, "original"), "test_sets"] == 2
    text, overall = shift_answer(families)
    assert overall == row["verdict"]
    assert text.startswith("No: gLocal loses more") == (overall == "opposite")
    assert "not counted: names → definitions" in text and TYPOS in text


def test_family_differences_of_one_split_match_the_per_set_bootstrap():
    from companion.paper.shift import BREEDS_TARGET, family_differences, shift_differences

    correct = {("source", "original"): [True] * 3 + [False], ("source", "glocal"): [True] * 4,
               ("target", "original"): [True, False, False, False],
               ("target", "glocal"): [True, True, True, False]}  # fmt: skip
    items = _items("breeds", 1, {k: v * 25 for k, v in correct.items()})
    per_set = shift_differences(items, 0.01, n_bootstrap=300, seed=3).set_index("measure")
    family = family_differences(items, 0.01, n_bootstrap=300, seed=3).set_index("measure")
    assert (family["family"] == BREEDS_TARGET).all()
    for column in ("mean", "ci_low", "ci_high", "n", "verdict"):
        assert list(family[column]) == list(per_set[column])


def test_overall_verdict_reads_the_families_together():
    from companion.paper.shift import overall_verdict

    assert overall_verdict(["opposite", "not resolved"]) == "opposite"
    assert overall_verdict(["holds", "no effect"]) == "holds"
    assert overall_verdict(["holds", "opposite", "no effect"]) == "mixed"
    assert overall_verdict(["no effect", "not resolved"]) == "not resolved"
    assert overall_verdict(["no effect", "no effect"]) == "no effect"
