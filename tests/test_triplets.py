"""Tests for glocal.triplets: validation, loaders, splits and the simulated choice model."""

from __future__ import annotations

import numpy as np
import pytest

from glocal import GlocalError
from glocal.triplets import (
    load_things_csv,
    load_triplets,
    object_disjoint_folds,
    random_split,
    save_triplets,
    simulate_triplets,
    validate_triplets,
)


def test_validate_accepts_and_normalises():
    out = validate_triplets(np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int32), n_objects=6)
    assert out.dtype == np.int64 and out.flags.c_contiguous


@pytest.mark.parametrize(
    ("triplets", "message"),
    [
        (np.zeros((4, 2), dtype=int), r"shape \(n, 3\)"),
        (np.zeros((0, 3), dtype=int), "empty"),
        (np.array([[0.0, 1.0, 2.0]]), "integer object indices"),
        (np.array([[0, 1, 9]]), r"outside \[0, 5\).*row 0"),
        (np.array([[0, 1, 2], [-1, 1, 2]]), "row 1"),
        (np.array([[0, 1, 2], [3, 3, 2]]), "repeat an object, first at row 1"),
    ],
)
def test_validate_rejects_bad_input(triplets, message):
    with pytest.raises(GlocalError, match=message):
        validate_triplets(triplets, n_objects=5)


def test_npy_and_text_round_trip(tmp_path):
    triplets = np.array([[0, 1, 2], [4, 3, 1]])
    for name in ("t.npy", "t.txt"):
        save_triplets(tmp_path / name, triplets)
        np.testing.assert_array_equal(load_triplets(tmp_path / name, n_objects=5), triplets)


def test_loader_errors(tmp_path):
    with pytest.raises(GlocalError, match="does not exist"):
        load_triplets(tmp_path / "missing.npy")
    (tmp_path / "t.json").write_text("[]")
    with pytest.raises(GlocalError, match="unknown suffix"):
        load_triplets(tmp_path / "t.json")
    (tmp_path / "bad.txt").write_text("0 1 x\n")
    with pytest.raises(GlocalError, match="three whitespace-separated integers"):
        load_triplets(tmp_path / "bad.txt")
    (tmp_path / "range.txt").write_text("0 1 7\n")
    with pytest.raises(GlocalError, match="range.txt.*outside"):
        load_triplets(tmp_path / "range.txt", n_objects=5)


@pytest.mark.parametrize("sep", [",", "\t"])
def test_things_csv_converts_choice_positions(tmp_path, sep):
    rows = [
        # image1, image2, image3 (1-based), choice = position of the odd one out, extra columns
        (5, 2, 9, 1, 11, 0),
        (5, 2, 9, 2, 11, 1),
        (5, 2, 9, 3, 12, 0),
    ]
    header = sep.join(["image1", "image2", "image3", "choice", "subject_id", "noise_ceiling"])
    text = "\n".join([header] + [sep.join(map(str, r)) for r in rows]) + "\n"
    path = tmp_path / "triplets.csv"
    path.write_text(text)
    got = load_things_csv(path, n_objects=10)
    # 0-based objects 4, 1, 8; the odd one goes last, the others keep their order
    np.testing.assert_array_equal(got, [[1, 8, 4], [4, 8, 1], [4, 1, 8]])
    np.testing.assert_array_equal(load_triplets(path, n_objects=10), got)


def test_things_csv_names_found_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b,c,choice\n1,2,3,1\n")
    with pytest.raises(
        GlocalError,
        match=r"missing column\(s\) \['image1', 'image2', 'image3'\]; "
        r"found columns \['a', 'b', 'c', 'choice'\]",
    ):
        load_things_csv(path)


def test_things_csv_rejects_bad_values(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("image1,image2,image3,choice\n1,2,3,7\n")
    with pytest.raises(GlocalError, match="'choice' must be the 1-based position"):
        load_things_csv(path)
    path.write_text("image1,image2,image3,choice\n1,2,,1\n")
    with pytest.raises(
        GlocalError, match=r"column .image3. must hold whole numbers.*row 1 holds no"
    ):
        load_things_csv(path)
    path.write_text("image1,image2,image3,choice\n0,2,3,1\n")
    with pytest.raises(GlocalError, match=r"after -1.*outside"):
        load_things_csv(path)
    path.write_text("image1,image2,image3,choice\n")
    with pytest.raises(GlocalError, match="empty"):
        load_things_csv(path)


def test_random_split_is_a_seeded_partition(rng):
    triplets = simulate_triplets(rng.standard_normal((30, 3)), 1000, seed=1)
    a, b = random_split(triplets, 0.2, seed=3), random_split(triplets, 0.2, seed=3)
    np.testing.assert_array_equal(a.test, b.test)
    assert len(a.test) == 200 and len(a.train) == 800
    together = np.concatenate([a.train, a.test])
    assert sorted(map(tuple, together)) == sorted(map(tuple, triplets))
    with pytest.raises(GlocalError, match="test_size"):
        random_split(triplets, 1.5)


def test_object_disjoint_folds(rng):
    m = 60
    triplets = simulate_triplets(rng.standard_normal((m, 3)), 5000, seed=2)
    folds = object_disjoint_folds(triplets, m, n_folds=3, seed=0)
    assert len(folds) == 3
    all_test_objects = np.concatenate([f.test_objects for f in folds])
    assert sorted(all_test_objects) == list(range(m))
    for fold in folds:
        inside = np.isin(triplets, fold.test_objects)
        assert np.isin(fold.test, fold.test_objects).all()
        assert not np.isin(fold.train, fold.test_objects).any()
        assert fold.n_dropped == int((inside.any(1) & ~inside.all(1)).sum())
        assert len(fold.train) + len(fold.test) + fold.n_dropped == len(triplets)
    again = object_disjoint_folds(triplets, m, n_folds=3, seed=0)
    np.testing.assert_array_equal(again[1].test, folds[1].test)
    with pytest.raises(GlocalError, match="n_folds"):
        object_disjoint_folds(triplets, m, n_folds=1)


def test_simulate_draws_distinct_objects_from_the_pool(rng):
    pool = np.array([3, 5, 7, 11, 13])
    t = simulate_triplets(rng.standard_normal((20, 4)), 2000, objects=pool, seed=0)
    assert np.isin(t, pool).all()
    validate_triplets(t, 20)


def test_simulate_is_deterministic_and_follows_the_softmax_choice_model():
    embedding = np.array([[1.0, 0.0], [0.8, 0.3], [0.0, 1.2]])
    a = simulate_triplets(embedding, 60_000, seed=5)
    np.testing.assert_array_equal(a, simulate_triplets(embedding, 60_000, seed=5))
    S = embedding @ embedding.T
    expected = np.exp([S[0, 1], S[0, 2], S[1, 2]])
    expected /= expected.sum()
    odd = a[:, 2]
    # odd one out 2 <=> pair (0, 1) kept, odd 1 <=> (0, 2), odd 0 <=> (1, 2)
    observed = np.array([(odd == 2).mean(), (odd == 1).mean(), (odd == 0).mean()])
    np.testing.assert_allclose(observed, expected, atol=0.01)


def test_simulate_rejects_bad_arguments(rng):
    with pytest.raises(GlocalError, match="2-D"):
        simulate_triplets(np.zeros(5), 10)
    with pytest.raises(GlocalError, match="positive"):
        simulate_triplets(np.zeros((5, 2)), 0)
    with pytest.raises(GlocalError, match="at least 3"):
        simulate_triplets(np.zeros((5, 2)), 10, objects=np.array([0, 1]))
    with pytest.raises(GlocalError, match=r"\[0, 5\)"):
        simulate_triplets(np.zeros((5, 2)), 10, objects=np.array([0, 1, 9]))
    for temperature in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(GlocalError, match="temperature must be a finite positive number"):
            simulate_triplets(np.zeros((5, 2)), 10, temperature=temperature)
    with pytest.raises(GlocalError, match="embedding: 1 rows contain NaN"):
        simulate_triplets(np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0]]), 10)
    with pytest.raises(GlocalError, match="seed must be an integer >= 0"):
        simulate_triplets(np.eye(5), 10, seed=-1)


@pytest.mark.parametrize(("scale", "temperature"), [(1.0, 1e-320), (1e160, 1.0)])
def test_simulate_refuses_logits_that_overflow(rng, scale, temperature):
    # before: exit 0 and choices drawn from NaN probabilities (the embedding scored 0.31 on them)
    embedding = rng.standard_normal((30, 3)) * scale
    with pytest.raises(GlocalError, match=r"logits .* overflow .*raise the temperature"):
        simulate_triplets(embedding, 100, temperature=temperature)


def test_simulate_takes_numpy_scalars_as_python_numbers(rng):
    embedding = rng.standard_normal((30, 3))
    expected = simulate_triplets(embedding, 500, seed=4, temperature=0.5)
    got = simulate_triplets(embedding, np.int64(500), seed=np.int32(4), temperature=np.float32(0.5))
    np.testing.assert_array_equal(got, expected)


def test_simulate_chunking_does_not_change_the_draws(rng, monkeypatch):
    import glocal.triplets as module

    embedding = rng.standard_normal((40, 3))
    whole = simulate_triplets(embedding, 3000, seed=9)
    monkeypatch.setattr(module, "_SIMULATE_CHUNK", 128)
    np.testing.assert_array_equal(simulate_triplets(embedding, 3000, seed=9), whole)


def test_things_csv_accepts_bom_quoted_headers_and_spaces(tmp_path):
    path = tmp_path / "excel.csv"
    header = '"image1", "image2", "image3", "choice", "subject"'
    text = f'{header}\r\n5, 2, 9, 1, "a, b"\r\n5, 2, 9, 3, c\r\n'
    path.write_text(text, encoding="utf-8-sig")  # a byte-order mark, as Excel writes
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    np.testing.assert_array_equal(load_things_csv(path, n_objects=10), [[1, 8, 4], [4, 1, 8]])


@pytest.mark.parametrize("name", ["choices.txt", "choices.tsv", "choices.data"])
def test_things_format_is_recognised_by_its_header_not_its_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text("image1\timage2\timage3\tchoice\n5\t2\t9\t2\n")
    np.testing.assert_array_equal(load_triplets(path, n_objects=10), [[4, 8, 1]])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("latin1.csv", "image1,image2,image3,choice,who\n1,2,3,1,Jos\xe9\n".encode("latin-1"),
         r"line 2 is not UTF-8 text \(byte 0xe9 at column 12\); save the file as UTF-8"),
        ("latin1.txt", "0 1 2\n0 1 3 # Jos\xe9\n".encode("latin-1"), "line 2 is not UTF-8"),
        ("latin1_header.csv", "image1,image2,image3,choice\xe9\n".encode("latin-1"),
         "line 1 is not UTF-8"),
        ("float.csv", b"image1,image2,image3,choice\n1,2,3,1\n1,2,1e20,1\n",
         r"column 'image3' must hold whole numbers .*data row 2 holds '1e20'"),
        ("overflow.csv", b"image1,image2,image3,choice\n1,2,3,1\n1,2,3,100000000000000000000\n",
         r"column 'choice' must hold whole numbers .*data row 2 holds '1000"),
        ("overflow.txt", b"0 1 100000000000000000000\n", "three whitespace-separated integers"),
        ("empty.csv", b"", "is empty or starts with a blank line"),
        ("empty.npy", b"", r"empty\.npy is empty \(0 bytes\)"),
        ("header_only.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, "
         b"'shape': (10000000000000, 3), }" + b" " * 53 + b"\n",
         r"truncated or corrupt: its header promises shape \(10000000000000, 3\)"),
    ],
)  # fmt: skip
def test_unreadable_triplet_files_give_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(GlocalError, match=message) as err:
        load_triplets(path, n_objects=10)
    assert str(path) in str(err.value)
