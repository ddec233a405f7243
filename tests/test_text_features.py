"""Real MiniLM features for the 1854 THINGS concepts (bundled weights, no download)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _features import one_torch_thread

from glocal.errors import GlocalError
from glocal.features import extract_features, load_model, things_texts


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def concepts(data_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        data_dir / "things" / "things_concepts.tsv", sep="\t", dtype=str, keep_default_na=False
    )
    assert len(frame) == 1854
    return frame


@pytest.fixture(scope="module")
def minilm():
    return load_model("all-MiniLM-L6-v2", device="cpu")


@pytest.fixture(scope="module")
def words(minilm, concepts: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory):
    return extract_features(
        minilm,
        things_texts("words", concepts),
        cache_dir=tmp_path_factory.mktemp("cache"),
        batch_size=256,
        verbose=0,
    )


def _row(concepts: pd.DataFrame, unique_id: str) -> int:
    return int(np.flatnonzero(concepts["uniqueID"].to_numpy() == unique_id)[0])


def test_word_features_of_all_concepts(words, concepts: pd.DataFrame) -> None:
    features = words.features()
    assert features.shape == (1854, 384) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-4)
    assert words.ids() == concepts["uniqueID"].tolist()
    assert words.path.parts[-3:] == ("sentence_embedding", "things-words", "concepts.h5")
    meta = words.metadata
    assert meta["model"] == "all-MiniLM-L6-v2" and meta["weights"] == "pretrained"
    assert "Normalize" in meta["preprocessing"] and meta["input"] == "text"


def test_semantic_sanity(words, concepts: pd.DataFrame) -> None:
    features = words.features()

    def sim(a: str, b: str) -> float:
        return float(features[_row(concepts, a)] @ features[_row(concepts, b)])

    assert sim("violin", "cello") > sim("violin", "hammer") + 0.2
    assert sim("hammer", "screwdriver") > sim("hammer", "cello")
    # a trained encoder: nearest neighbours are meaningful (random weights would fail this)
    violin = features[_row(concepts, "violin")]
    nearest = np.argsort(-(features @ violin))[1:6]
    assert "cello" in concepts["Word"].iloc[nearest].tolist()


def test_definitions_separate_homonyms(minilm, words, concepts: pd.DataFrame) -> None:
    rows = [_row(concepts, u) for u in ("bow1", "bow2", "mouse1", "mouse2")]
    subset = concepts.iloc[rows]
    plain = words.features()[rows]
    assert float(plain[0] @ plain[1]) == pytest.approx(1.0, abs=1e-5)  # same word, same vector
    defined = things_texts("definitions", subset)
    assert defined.texts[0].startswith("bow: ")
    vectors = minilm.encode(defined.texts)
    assert float(vectors[0] @ vectors[1]) < 0.9 and float(vectors[2] @ vectors[3]) < 0.9
    again = minilm.encode(defined.texts)
    np.testing.assert_allclose(vectors.numpy(), again.numpy(), atol=1e-6)
    registry_texts = things_texts("definitions")  # glocal.things.concepts(): same texts
    assert registry_texts.texts[rows[0]] == defined.texts[0] and len(registry_texts) == 1854


def test_text_model_errors(minilm) -> None:
    with pytest.raises(GlocalError, match="only available with their trained weights"):
        load_model("all-MiniLM-L6-v2", pretrained=False, device="cpu")
    with pytest.raises(GlocalError, match="kind 'names'"):
        things_texts("names", pd.DataFrame({"Word": ["a"], "uniqueID": ["a"]}))
