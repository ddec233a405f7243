"""THINGS helpers: canonical object order of concepts, categories, embedding, triplets, images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glocal import data, things
from glocal.errors import DataUnavailableError, GlocalError


@pytest.fixture(autouse=True)
def offline(no_network: Path) -> Path:
    """No network, a private cache, and no mirror unless the test asks for the shared data."""
    return no_network


@pytest.fixture
def mirror(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(data_dir))
    return data_dir


def test_concepts_in_canonical_order(mirror):
    frame = things.concepts()
    assert len(frame) == 1854 and frame["uniqueID"].is_unique
    assert frame["uniqueID"].iloc[0] == "aardvark" and frame["uniqueID"].iloc[-1] == "zucchini"
    source = "Definition (from WordNet, Google, or Wikipedia)"
    assert {"Word", "uniqueID", source, "WordNet ID"} <= set(frame.columns)
    assert (frame["definition"] == frame[source]).all()
    assert (frame["Word"] == "bow").sum() == 3  # homonyms: Word is not an identifier
    assert pd.api.types.is_numeric_dtype(frame["Concreteness (M)"])


def test_categories_aligned_by_unique_id(mirror):
    cats = things.categories()
    ids = things.concepts()["uniqueID"]
    assert cats.shape == (1854, 53)
    assert cats.index.tolist() == ids.tolist() and cats.index.name == "uniqueID"
    assert set(np.unique(cats.to_numpy())) == {0, 1} and cats.dtypes.unique().tolist() == [np.int64]
    assert (cats.sum(axis=1) == 0).sum() == 406
    # homonyms get their own rows: the animal and the club
    assert cats.loc["bat1", "animal"] == 1 and cats.loc["bat1", "sports equipment"] == 0
    assert cats.loc["bat2", "animal"] == 0 and cats.loc["bat2", "sports equipment"] == 1
    assert cats.loc["aircraft_carrier", "watercraft"] == 1


def test_category_rows_that_match_no_concept_fail_loudly(mirror, monkeypatch, tmp_path):
    source = mirror / "things/Categories_final_20200131.tsv"
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[89] = lines[89].replace("a club used", "a stick used", 1)  # row of bat2 (after header)
    assert lines[89] != source.read_text(encoding="utf-8").splitlines(keepends=True)[89]
    broken = tmp_path / "Categories.tsv"
    broken.write_text("".join(lines), encoding="utf-8")
    real_fetch = data.fetch
    monkeypatch.setattr(
        data, "fetch", lambda name: broken if name == "things/categories" else real_fetch(name)
    )
    with pytest.raises(GlocalError, match=r"Categories.tsv: row 88 \(Word 'bat'\)"):
        things.categories()


def test_human_embedding_shape_and_object_order(mirror):
    embedding = things.human_embedding()
    assert embedding.dtype == np.float32 and embedding.shape == (1854, 42)
    words = things.concepts()["Word"].to_numpy()
    cats = things.categories()
    violin = int(np.flatnonzero(words == "violin")[0])
    similarity = embedding @ embedding[violin]
    neighbours = [i for i in np.argsort(-similarity) if i != violin][:5]
    assert cats["musical instrument"].iloc[neighbours].tolist() == [1] * 5
    assert {"guitar", "cello"} <= set(words[neighbours])
    # and a shuffled order would break it: the check is not vacuous
    shuffled = np.random.default_rng(0).permutation(1854)
    assert cats["musical instrument"].iloc[shuffled[neighbours]].sum() < 5


def write_things_csv(path: Path, rows: list[tuple[int, int, int, int]], sep: str = ",") -> None:
    header = sep.join(["image1", "image2", "image3", "choice", "subject_id", "noise_ceiling"])
    body = [sep.join(map(str, (*row, 17, 0))) for row in rows]
    path.write_text("\n".join([header, *body]) + "\n")


def test_things_csv_is_parsed_and_split_90_10(tmp_path, offline):
    rng = np.random.default_rng(1)
    objects = np.stack([rng.choice(1854, 3, replace=False) for _ in range(200)]) + 1  # 1-based
    choice = rng.integers(1, 4, size=200)
    csv = tmp_path / "triplets.csv"
    write_things_csv(csv, [(*o, c) for o, c in zip(objects.tolist(), choice.tolist(), strict=True)])
    every = things.triplets("all", source=csv)
    assert every.dtype == np.int64 and every.shape == (200, 3)
    for (a, b, c), odd_position, got in zip(objects - 1, choice, every, strict=True):
        odd = (a, b, c)[odd_position - 1]
        assert got[2] == odd and sorted(got[:2]) == sorted({a, b, c} - {odd})
    train, test = things.triplets("train", source=csv), things.triplets("test", source=csv)
    assert (len(train), len(test)) == (180, 20)
    assert sorted(map(tuple, np.vstack([train, test]))) == sorted(map(tuple, every))
    assert len(list((offline / "derived").glob("*.npy"))) == 3  # cached by the CSV's sha256
    assert np.array_equal(things.triplets("test", source=csv), test)
    tab = tmp_path / "triplets.tsv.csv"
    write_things_csv(
        tab, [(*o, c) for o, c in zip(objects.tolist(), choice.tolist(), strict=True)], sep="\t"
    )
    assert np.array_equal(things.triplets("all", source=tab), every)


def test_things_csv_errors(tmp_path):
    bad_choice = tmp_path / "bad_choice.csv"
    write_things_csv(bad_choice, [(1, 2, 3, 4)])
    with pytest.raises(GlocalError, match="choice"):
        things.triplets("all", source=bad_choice)
    out_of_range = tmp_path / "range.csv"
    write_things_csv(out_of_range, [(1, 2, 1855, 1)])
    with pytest.raises(GlocalError, match="outside"):
        things.triplets("all", source=out_of_range)
    with pytest.raises(GlocalError, match="unknown triplet split"):
        things.triplets("validation", source=out_of_range)


def test_triplets_offline_error_names_the_osf_file(offline):
    with pytest.raises(DataUnavailableError, match=r"osf\.io/h2smy.*GLOCAL_DATA_DIR"):
        things.triplets("train")


@pytest.fixture
def three_concepts(monkeypatch):
    frame = pd.DataFrame({"Word": ["bat", "bat", "cat"], "uniqueID": ["bat1", "bat2", "cat"]})
    monkeypatch.setattr(things, "concepts", lambda: frame.copy())
    return frame


def make_images(root: Path, names: dict[str, list[str]]) -> None:
    for concept, files in names.items():
        (root / concept).mkdir(parents=True)
        for name in files:
            (root / concept / name).write_bytes(b"img")


def test_reference_image_is_the_first_sorted_image(tmp_path, three_concepts):
    make_images(
        tmp_path / "object_images",
        {
            "bat1": ["bat1_02s.jpg", "bat1_01b.jpg", ".hidden.jpg", "notes.txt"],
            "bat2": ["bat2_03s.JPG", "bat2_01b.png"],
            "cat": ["cat_01b.jpg"],
            "extra": ["x.jpg"],
        },
    )
    for root in (tmp_path / "object_images", tmp_path):  # the unpacked folder or its parent
        got = things.reference_images(root)
        assert [p.name for p in got] == ["bat1_01b.jpg", "bat2_01b.png", "cat_01b.jpg"]


def test_reference_images_name_missing_concepts(tmp_path, three_concepts):
    make_images(tmp_path, {"bat1": ["a.jpg"]})
    with pytest.raises(GlocalError, match=r"2 of 3 concept folders are missing.*bat2, cat"):
        things.reference_images(tmp_path)
    make_images(tmp_path, {"bat2": ["notes.txt"], "cat": ["c.jpg"]})
    with pytest.raises(GlocalError, match="bat2 holds no image files"):
        things.reference_images(tmp_path)


def test_reference_images_default_needs_the_things_download(offline, three_concepts):
    with pytest.raises(DataUnavailableError, match="images_THINGS.zip"):
        things.reference_images()
