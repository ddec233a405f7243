"""Profile inputs, images: feature sources (``MODEL:MODULE``, ``random:MODEL:MODULE``), the
feature stores of the THINGS images and the contrast set, the model's released transform,
downstream image tasks and the human similarity sets (paper and smoke profiles)."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from companion.paper.triplets import TRIPLETS_MISSING, _seed, cached_things_triplets
from glocal import things
from glocal.data import human
from glocal.errors import DataUnavailableError, GlocalError
from glocal.evaluation.comparison import Downstream

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
    included: :func:`companion.pipeline.smoke.register_models`)."""
    from companion.pipeline.smoke import register_models
    from glocal.features import get_config

    register_models()
    return get_config(model, module)


def model_id(model: str, pretrained: bool) -> str:
    """The feature-store folder of a model: its name, or ``NAME@random-seed0``."""
    from glocal.features import model_folder

    return model_folder(model, pretrained, seed=0)


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


def image_downstream(model: str, module: str, task: str, pretrained: bool = True) -> Downstream:
    """The features and labels of a downstream image task (:data:`IMAGE_TASKS`), with the
    official protocol: one fixed few-shot test set (per BREEDS target subclass where the task
    has them, ``test_groups``) and, for CIFAR-100-shift, the fine labels of the shift protocol.

    A missing store raises :class:`DataUnavailableError` with the command that writes it.
    """
    if task not in IMAGE_TASKS:
        raise GlocalError(f"unknown image task {task!r}; choose from {list(IMAGE_TASKS)}")
    spec = IMAGE_TASKS[task]
    config = model_config(model, module)
    train, test = _task_stores(config, pretrained, spec["dataset"])
    result = Downstream(
        train.features(np.float32),
        train.labels(),
        test.features(np.float32),
        test.labels(),
        fixed_test=True,
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
                         protocol=cast(Any, spec.get("protocol", "standard")))  # fmt: skip
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
        from companion.pipeline.smoke import smoke_world

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
