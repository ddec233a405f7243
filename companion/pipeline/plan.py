"""What a profile needs before its notebooks run, what of it is present, and how to provide the
rest: the plan (``glocal reproduce --profile P --plan``) and the preparation that carries it out.

A profile's needs follow from its notebooks' parameters (``notebooks/profiles``): the feature
sources (``source``, ``sources``), the downstream image tasks (``task``, ``tasks``), the data
files each notebook declares, and ``notebooks/profiles/prepare.json`` (where the image
datasets come from and how extraction runs). They are, in order:

- **data**: registry files (THINGS metadata, VICE, the THINGS-data triplets, the THINGS images,
  BREEDS hierarchy files, SUN397 partitions, the released transforms of the reference column,
  the folders of the human similarity sets);
- **datasets**: the image datasets (CIFAR, DTD, Flowers102 and SUN397 download through
  torchvision; ImageNet is manual; the smoke profile generates all of them: the smoke world);
- **features**: one feature store per model x dataset x split (THINGS reference images, the
  class-balanced ImageNet contrast set, both splits of every downstream task, the images of
  every human similarity set family: ``similarity_sets``);
- **fits**: the searches and fits of notebook 01 for every source (the other notebooks reuse
  them from the cache and fit the rest themselves).

:func:`prepare` fetches what can be fetched, extracts every missing store in shards on the
Dask engine (:func:`glocal.features.extract_sharded`) and runs the fits; the runner then runs
the notebooks and builds the book.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from companion.paper.image_features import (
    CONTRAST_STORE,
    IMAGE_TASKS,
    SIMILARITY_SPLIT,
    THINGS_STORE,
    model_id,
    parse_source,
)
from companion.pipeline.notebooks import (
    declared_inputs,
    discover,
    load_parameters,
    not_utf8,
    read_notebook,
)
from glocal.data import human
from glocal.errors import DataUnavailableError, GlocalError

PREPARE_FILE = "prepare.json"
KINDS = ("data", "datasets", "features", "fits")
#: Statuses that need no action.
DONE = ("present", "not needed")
DOWNLOADABLE = ("cifar10", "cifar100", "dtd", "flowers102", "sun397")
#: A file or folder whose presence shows that torchvision unpacked a dataset there.
DATASET_MARKERS = {
    "cifar10": "cifar-10-batches-py/test_batch",
    "cifar100": "cifar-100-python/test",
    "dtd": "dtd/dtd/labels/test1.txt",
    "flowers102": "flowers-102/setid.mat",
    "sun397": "SUN397/ClassName.txt",
}
BREEDS_NAMES = ("breeds/dataset_class_info", "breeds/class_hierarchy", "breeds/node_names")
IMAGENET_MANUAL = (
    "manual (licence): register at https://image-net.org, download ILSVRC2012_img_train.tar "
    "(138 GB), ILSVRC2012_img_val.tar (6.3 GB) and ILSVRC2012_devkit_t12.tar.gz into {root} "
    "(or any folder named by $GLOCAL_IMAGENET_DIR); torchvision unpacks them there on first use"
)


@dataclass(frozen=True)
class Settings:
    """One profile's entry of ``notebooks/profiles/prepare.json``."""

    world: str = "real"
    imagenet_per_class: int = 64
    breeds_per_class: int | None = 64
    shard_size: int = 10_000
    batch_size: int = 128
    num_workers: int | None = None
    device: str = "auto"
    scheduler: str | None = None
    download: bool = True
    #: CPU threads per process (torch, OpenMP) while the profile runs; None leaves the default.
    #: Small fits on a busy 2-core machine run several times faster on one thread.
    threads: int | None = None
    #: ImageNet validation images per class of the ImageNet-C subset (None: all), and the
    #: side in pixels it is resized and centre-cropped to before corrupting (None: as it is).
    corruption_per_class: int | None = 10
    corruption_size: int | None = 224


def load_settings(notebooks_dir: Path, profile: str) -> Settings | None:
    """The profile's preparation settings; None when it prepares nothing (tiny)."""
    file = notebooks_dir / "profiles" / PREPARE_FILE
    if not file.is_file():
        return None
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise not_utf8(file, "preparation file", err) from None
    except json.JSONDecodeError as err:
        raise GlocalError(f"{file}: not valid JSON ({err.msg}, line {err.lineno})") from err
    entry = document.get(profile)
    if entry is None:
        return None
    known = set(Settings.__dataclass_fields__)
    unknown = sorted(set(entry) - known)
    if unknown:
        raise GlocalError(f"{file}: profile {profile!r} sets unknown keys {unknown}; known: "
                          f"{sorted(known)}")  # fmt: skip
    settings = Settings(**entry)
    if settings.world not in ("real", "smoke"):
        raise GlocalError(f"{file}: 'world' must be 'real' or 'smoke', got {settings.world!r}")
    return settings


@dataclass(frozen=True)
class StoreSpec:
    """One feature store a profile needs: a model (and its weights) on a dataset split."""

    source: str  # the feature source as the notebooks name it
    model: str
    module: str
    pretrained: bool
    dataset: str
    split: str

    @property
    def path(self) -> Path:
        from glocal.features import store_path

        return store_path(model_id(self.model, self.pretrained), self.module, self.dataset,
                          self.split)  # fmt: skip

    @property
    def label(self) -> str:
        weights = "" if self.pretrained else " (random weights)"
        return f"{self.model} {self.module}{weights} · {self.dataset}/{self.split}"


@dataclass(frozen=True)
class Need:
    """One input of a profile: its status and what provides it when it is not present."""

    kind: str
    name: str
    status: str  # present | missing | partial | manual | unpinned | pending | not needed
    provides: str = ""
    where: str = ""
    notebooks: tuple[str, ...] = ()
    #: Every notebook that wants it reports its absence instead of failing (see
    #: ``metadata.glocal.optional_inputs``): preparing the profile goes on without it.
    optional: bool = False

    @property
    def done(self) -> bool:
        return self.status in DONE


@dataclass
class Plan:
    """Everything a profile needs, in the order :func:`prepare` provides it."""

    profile: str
    settings: Settings | None
    needs: list[Need] = field(default_factory=list)
    stores: list[StoreSpec] = field(default_factory=list)
    fit_sources: list[str] = field(default_factory=list)
    fit_params: dict[str, Any] = field(default_factory=dict)

    def missing(self) -> list[Need]:
        """The needs that are not present."""
        return [n for n in self.needs if not n.done]

    def render(self) -> str:
        """The plan as text: a summary line, then one block per kind of input."""
        total, missing = len(self.needs), self.missing()
        manual = sum(n.status == "manual" for n in missing)
        lines = [
            f"profile {self.profile}: {total} inputs, {total - len(missing)} present, "
            f"{len(missing)} to provide ({manual} manual)"
        ]
        if self.settings is None:
            lines.append("  (no entry in notebooks/profiles/prepare.json: nothing to prepare)")
        titles = {
            "data": "data files (glocal data registry; checksummed)",
            "datasets": "image datasets",
            "features": "feature stores (model x dataset x split; extracted in shards on the "
            "Dask engine by `glocal reproduce`)",
            "fits": "searches and fits (cached in CACHE/search and CACHE/fits)",
        }
        for kind in KINDS:
            part = [n for n in self.needs if n.kind == kind]
            if not part:
                continue
            done = sum(n.done for n in part)
            lines += ["", f"{titles[kind]}: {done} of {len(part)} present"]
            width = max(len(n.status) for n in part)
            for n in part:
                lines.append(f"  {n.status:<{width}}  {n.name}" + (" (optional)" * n.optional))
                if n.where and not n.done:
                    lines.append(f"  {'':<{width}}    at {n.where}")
                if n.provides and not n.done:
                    lines.append(f"  {'':<{width}}    -> {n.provides}")
        return "\n".join(lines)


# --- what a profile needs ----------------------------------------------------------------------


def _ordered(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def _image_sources(params: dict[str, dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for p in params.values():
        found += list(p.get("sources", [])) + ([p["source"]] if "source" in p else [])
    return [s for s in _ordered(found) if not s.startswith("text:")]


def _tasks(params: dict[str, dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for p in params.values():
        found += list(p.get("tasks", [])) + ([p["task"]] if "task" in p else [])
    return [t for t in _ordered(found) if t in IMAGE_TASKS]


def _similarity_families(params: dict[str, dict[str, Any]]) -> list[str]:
    """The families (store datasets) of the human similarity sets the notebooks read."""
    found: list[str] = []
    for p in params.values():
        found += [human.family_of(name) for name in p.get("similarity_sets", [])]
    return _ordered(found)


def _similarity_sources(params: dict[str, dict[str, Any]]) -> set[str]:
    """The image sources of the notebooks that read human similarity sets."""
    found: set[str] = set()
    for p in params.values():
        if p.get("similarity_sets"):
            found |= set(p.get("sources", [])) | ({p["source"]} if "source" in p else set())
    return found


def _shift_sources(params: dict[str, dict[str, Any]]) -> set[str]:
    """The image sources of the notebooks that measure distribution shift (page 11)."""
    found: set[str] = set()
    for p in params.values():
        if p.get("breeds_tasks") or p.get("corruptions"):
            found |= set(p.get("sources", [])) | ({p["source"]} if "source" in p else set())
    return found


def _shift_stores(params: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """The stores of the distribution-shift protocols: every split of each BREEDS task of
    ``breeds_tasks`` (source-val: the in-distribution reference) and the ImageNet-C subset,
    clean and under each corruption at each severity."""
    from glocal.features.corruptions import DATASET, corruption_split

    keys: list[tuple[str, str]] = []
    for p in params.values():
        for task in p.get("breeds_tasks", []):
            keys += [(task, split) for split in ("train", "test", "source-val")]
        if p.get("corruptions"):
            keys.append((DATASET, "clean"))
            keys += [(DATASET, corruption_split(c, int(s)))
                     for c in p["corruptions"] for s in p.get("severities", [])]  # fmt: skip
    return _ordered_pairs(keys)


def _ordered_pairs(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for key in keys:
        seen.setdefault(key, None)
    return list(seen)


def _store_datasets(tasks: list[str]) -> list[str]:
    names: list[str] = []
    for task in tasks:
        spec = IMAGE_TASKS[task]
        names += [spec["dataset"]] + ([spec["fine"]] if "fine" in spec else [])
    return _ordered(names)


def _imagenet_root() -> Path:
    from glocal.data.datasets import ENV_IMAGENET
    from glocal.io import cache_dir

    value = os.environ.get(ENV_IMAGENET)
    return Path(value).expanduser() if value else cache_dir() / "downstream" / "imagenet"


def _registry_need(name: str, notebooks: tuple[str, ...]) -> Need:
    from glocal import data

    entry = data.entry(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", data.UnpinnedDataWarning)
            path = data.fetch(name, download=False)
        return Need("data", name, "present", where=str(path), notebooks=notebooks)
    except data.UnpinnedDataError:
        return Need("data", name, "unpinned", f"glocal data fetch {name} --allow-unpinned (its "
                    "sha256 is not pinned in the registry, so glocal refuses its bytes without "
                    "the flag; then pin the sha256 it prints)", notebooks=notebooks)  # fmt: skip
    except DataUnavailableError:
        if entry.served.url is None:
            target = data.cache_dir() / entry.served.path
            how = entry.manual.format(cache=data.cache_dir(), target=target)
            return Need("data", name, "manual", f"manual: {how}", notebooks=notebooks)
        return Need(
            "data",
            name,
            "missing",
            f"glocal data fetch {name}",
            where=str(data.cache_dir() / entry.served.path),
            notebooks=notebooks,
        )
    except GlocalError as err:
        return Need("data", name, "refused", str(err), notebooks=notebooks)


def _store_need(spec: StoreSpec, settings: Settings) -> Need:
    from glocal.features.shards import shards_dir
    from glocal.features.store import read_provenance

    path = spec.path
    if path.is_file():
        try:
            complete = bool(read_provenance(path).get("complete"))
        except (OSError, GlocalError):
            complete = False
        if complete:
            return Need("features", spec.label, "present", where=str(path))
        return Need("features", spec.label, "damaged", _store_command(spec, settings, True),
                    str(path))  # fmt: skip
    shards = shards_dir(path)
    status = "missing"
    if shards.is_dir():
        done = [p for p in shards.glob("*.h5") if p.is_file()]
        if done:
            total = done[0].stem.rpartition("-of-")[2]
            status = f"partial ({len(done)} of {int(total)} shards)"
    return Need("features", spec.label, status, _store_command(spec, settings), str(path))


def _store_command(spec: StoreSpec, settings: Settings, overwrite: bool = False) -> str:
    from glocal.features.corruptions import DATASET as CORRUPTED

    if settings.world == "smoke":
        return "glocal reproduce --profile smoke (extracts it from the smoke world)"
    if spec.dataset == CORRUPTED:
        return (
            f"glocal reproduce --profile paper (corrupts {settings.corruption_per_class} "
            "ImageNet validation images per class with imagecorruptions, the optional extra "
            "glocal[shift], and extracts them)"
        )
    if (spec.dataset, spec.split) == THINGS_STORE:
        source = "things"
    elif (spec.dataset, spec.split) == CONTRAST_STORE:
        source = f"dataset:imagenet:train:{settings.imagenet_per_class}"
    elif dataset_is_family(spec.dataset):
        source = f"human:{spec.dataset}"
    elif spec.dataset.startswith("breeds-") and spec.split == "train" and settings.breeds_per_class:
        source = f"dataset:{spec.dataset}:train:{settings.breeds_per_class}"
    else:
        source = f"dataset:{spec.dataset}:{spec.split}"
    flags = "" if spec.pretrained else " --random-weights"
    if spec.dataset in DOWNLOADABLE or spec.dataset in ("cifar100-coarse",):
        flags += " --download"
    if overwrite:
        flags += " --overwrite"
    return (
        f"glocal extract --model {spec.model} --module {spec.module}{flags} --source {source} "
        f"--dataset {spec.dataset} --split {spec.split} --batch-size {settings.batch_size}"
    )


def dataset_is_family(dataset: str) -> bool:
    """Whether a store's dataset is a human similarity set family (its images, split all)."""
    return dataset in human.FAMILIES


def _dataset_needs(settings: Settings, datasets: list[str]) -> list[Need]:
    from glocal.io import cache_dir

    if settings.world == "smoke":
        from companion.pipeline.smoke import _version

        root = cache_dir() / "smoke-world" / _version()
        present = (root / "complete.json").is_file()
        return [Need(
            "datasets", "the smoke world (generated THINGS images, ImageNet, BREEDS files, "
            "CIFAR-10/100, DTD, Flowers102, SUN397)", "present" if present else "missing",
            "glocal reproduce --profile smoke (generates it: deterministic, seconds)", str(root),
        )]  # fmt: skip
    needs = []
    folders = _ordered("cifar100" if d == "cifar100-coarse" else d for d in datasets)
    for name in folders:
        if name not in DOWNLOADABLE:
            continue
        root = cache_dir() / "downstream" / name
        present = (root / DATASET_MARKERS[name]).exists()
        command = (
            f'python -c "from glocal.data import downstream_dataset as d; '
            f"d('{name}', 'train'); d('{name}', 'test')\" (torchvision's downloader, md5-checked;"
            f" `glocal reproduce --profile paper` does it)"
        )
        needs.append(Need("datasets", name, "present" if present else "missing", command,
                          str(root)))  # fmt: skip
    if any(d in ("imagenet", "imagenet30") or d.startswith("breeds-") for d in datasets):
        root = _imagenet_root()
        unpacked = (
            (root / "meta.bin").is_file() and (root / "train").is_dir() and (root / "val").is_dir()
        )
        archives = all((root / f).is_file() for f in (
            "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar", "ILSVRC2012_devkit_t12.tar.gz"
        ))  # fmt: skip
        status = "present" if unpacked or archives else "manual"
        needs.append(Need("datasets", "imagenet (ILSVRC2012 train and val)", status,
                          IMAGENET_MANUAL.format(root=root), str(root)))  # fmt: skip
    return needs


def make_plan(
    profile: str,
    notebooks_dir: str | os.PathLike,
    executed_dir: Path | None = None,
    only: list[str] | None = None,
) -> Plan:
    """The plan of ``profile``: every input its notebooks (those of ``only``, default all)
    need, with its status and what provides it."""
    from companion.pipeline.notebooks import select

    folder = Path(notebooks_dir)
    settings = load_settings(folder, profile)
    chosen = select(discover(folder), only)
    params = {nb.name: load_parameters(nb, profile) for nb in chosen}
    plan = Plan(profile, settings)
    sources = _image_sources(params)
    tasks = _tasks(params)
    families = _similarity_families(params)
    judged = _similarity_sources(params)
    shifted = _shift_sources(params)
    shift_keys = _shift_stores(params)
    pretrained = [parse_source(s)[2] for s in sources]
    configs = [_config(s) for s in sources]

    # data files
    wanted: dict[str, list[str]] = {}
    optional: dict[str, list[str]] = {}
    for nb in chosen:
        notebook = read_notebook(nb.path)
        for name in declared_inputs(notebook, nb.path):
            wanted.setdefault(name, []).append(nb.number)
        for name in declared_inputs(notebook, nb.path, optional=True):
            optional.setdefault(name, []).append(nb.number)
    if sources and not any(pretrained):
        wanted.pop("things/triplets", None)  # random-weight sources simulate the choices
    elif not sources and "things/triplets" in wanted:  # text: real if cached, else simulated
        optional.setdefault("things/triplets", []).extend(wanted.pop("things/triplets"))
    real = settings is not None and settings.world == "real"
    image_notebooks = [n for n, p in params.items() if "source" in p or "sources" in p]
    extra = []
    if sources and real:
        extra.append("things/images")
    if real and any(t.startswith("breeds-") for t in [*tasks, *(k[0] for k in shift_keys)]):
        extra += list(BREEDS_NAMES)
    if real and "sun397" in tasks:
        extra.append("sun397/partitions")
    if real:
        extra += [human.FAMILIES[family] for family in families]
    for config in configs:
        reference = config.reference_model
        if reference is not None:
            extra.append(f"transform/{reference}/{config.module}")
    for name in extra:
        wanted.setdefault(name, []).extend(n[:2] for n in image_notebooks)
    for name, notebooks in wanted.items():
        plan.needs.append(_registry_need(name, tuple(_ordered(notebooks + optional.pop(name, [])))))
    for name, notebooks in optional.items():
        plan.needs.append(replace(_registry_need(name, tuple(_ordered(notebooks))), optional=True))
    if not sources:
        return _with_fits(plan, params, executed_dir) if settings is not None else plan
    if settings is None:
        raise GlocalError(
            f"profile {profile!r} reads image features but notebooks/profiles/{PREPARE_FILE} "
            f"has no {profile!r} entry saying how to prepare them"
        )

    # image datasets and feature stores
    datasets = _store_datasets(tasks)
    plan.needs += _dataset_needs(settings, ["imagenet", *datasets,
                                            *(k[0] for k in shift_keys)])  # fmt: skip
    for source, config, weights in zip(sources, configs, pretrained, strict=True):
        keys = [THINGS_STORE, CONTRAST_STORE]
        keys += [(d, split) for d in datasets for split in ("train", "test")]
        if source in judged:  # only the sources a page scores on human similarity sets
            keys += [(family, SIMILARITY_SPLIT) for family in families]
        if source in shifted:  # only the sources page 11 measures under distribution shift
            keys = _ordered_pairs([*keys, *shift_keys])
        for dataset, split in keys:
            spec = StoreSpec(source, config.name, config.module, weights, dataset, split)
            plan.stores.append(spec)
            plan.needs.append(_store_need(spec, settings))

    return _with_fits(plan, params, executed_dir)


def _with_fits(plan: Plan, params: dict[str, dict[str, Any]], executed_dir: Path | None) -> Plan:
    """``plan`` with notebook 01's searches and fits, for every source it lists."""
    first = next((n for n, p in params.items() if "sources" in p), None)
    if first is None:
        return plan
    p01 = params[first]
    plan.fit_sources = list(p01["sources"])
    plan.fit_params = p01
    current = _is_current(executed_dir, first) if executed_dir is not None else False
    for source in plan.fit_sources:
        plan.needs.append(Need(
            "fits", f"{source}: {_search_size(p01.get('selection') or {})}",
            "present" if current else "pending",
            f"glocal reproduce --profile {plan.profile} (stage fits, before the notebooks)",
            notebooks=(first[:2],),
        ))  # fmt: skip
    return plan


def _config(source: str) -> Any:
    from companion.paper.image_features import model_config

    model, module, _ = parse_source(source)
    return model_config(model, module)


def _search_size(selection: dict[str, Any]) -> str:
    from glocal.search import resolve_grid

    parts = []
    for kind in ("naive", "global", "glocal"):
        spec = selection.get(kind)
        if not spec:
            continue
        n = len(resolve_grid(spec["grid"]))
        cv = spec.get("cv", 3)
        parts.append(f"{kind} search {n} settings x {cv} folds = {n * cv} fits")
    return "; ".join(parts + ["then the naive, global and gLocal fits"])


def _is_current(executed_dir: Path, name: str) -> bool:
    """Whether notebook ``name`` has an executed copy with a key file (fits were made)."""
    return (executed_dir / f"{name}.ipynb").is_file() and (
        executed_dir / f"{name}.key.json"
    ).is_file()


# --- carrying it out -----------------------------------------------------------------------------


@dataclass
class PrepareReport:
    """What :func:`prepare` did, with seconds per stage and extraction throughput."""

    fetched: list[str] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)
    items: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: Optional inputs that could not be fetched (their notebooks report them absent).
    skipped: list[str] = field(default_factory=list)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _source_for(spec: StoreSpec, settings: Settings, world: Any) -> Any:
    """The extraction source of a store (the smoke world's files in the smoke profile)."""
    from glocal.features import downstream_source, similarity_images, things_images

    if (spec.dataset, spec.split) == THINGS_STORE:
        return things_images(world.things_images if world is not None else None)
    if dataset_is_family(spec.dataset):
        return similarity_images(
            spec.dataset, world.similarity(spec.dataset) if world is not None else None
        )
    options: dict[str, Any] = {}
    dataset, split = spec.dataset, spec.split
    from glocal.features.corruptions import DATASET as CORRUPTED

    if dataset == CORRUPTED:
        return _corrupted_source(spec, settings, world)
    if (dataset, split) == CONTRAST_STORE:
        dataset, split = "imagenet", "train"
        options["per_class"] = settings.imagenet_per_class
    elif dataset.startswith("breeds-") and split == "train" and settings.breeds_per_class:
        options["per_class"] = settings.breeds_per_class
    from_imagenet = dataset in ("imagenet", "imagenet30") or dataset.startswith("breeds-")
    if world is not None:
        if from_imagenet:
            options.update(root=world.imagenet, hierarchy=world.breeds)
        else:
            options.update(root=world.downstream(dataset), checksums=world.checksums(dataset))
            if dataset == "sun397":
                options["partitions"] = world.partitions
    elif from_imagenet:
        options["root"] = _imagenet_root()
    return downstream_source(dataset, split, store_split=spec.split,
                             download=settings.download and world is None, **options)  # fmt: skip


def _corrupted_source(spec: StoreSpec, settings: Settings, world: Any) -> Any:
    """The ImageNet-C store's source: a class-balanced ImageNet validation subset, clean or
    with one corruption at one severity (:mod:`glocal.features.corruptions`)."""
    from glocal.data.datasets import downstream_dataset
    from glocal.features.corruptions import corruption_source, parse_split

    corruption, severity = parse_split(spec.split)
    options: dict[str, Any] = (
        {"root": world.imagenet, "hierarchy": world.breeds}
        if world is not None
        else {"root": _imagenet_root()}
    )
    base = downstream_dataset("imagenet", "val", per_class=settings.corruption_per_class,
                              seed=0, download=False, **options)  # fmt: skip
    return corruption_source(base, corruption, severity, seed=0, size=settings.corruption_size)


def prepare(plan: Plan, engine: Any = None, verbose: int = 1) -> PrepareReport:
    """Fetch, generate and extract every missing input of ``plan``, then run its fits.

    Feature stores are extracted by :func:`glocal.features.extract_sharded` on ``engine`` (a
    started :class:`glocal.engine.Engine`; None: serially). An input that cannot be provided
    (a manual download, an unpinned file) does not stop the others; at the end a
    :class:`DataUnavailableError` lists every one of them with what provides it.
    """
    from glocal import data
    from glocal.features import extract_sharded
    from glocal.features.shards import drop_leftover_shards

    report = PrepareReport()
    settings = plan.settings
    if settings is None:
        return report
    began = time.perf_counter()
    for need in plan.needs:
        if need.kind != "data" or need.status != "missing":
            continue
        try:
            data.fetch(need.name, download=settings.download)
            report.fetched.append(need.name)
        except GlocalError as err:
            if need.optional:  # its notebooks say it is absent
                report.skipped.append(need.name)
            else:
                report.problems.append(f"{need.name}: {err}")
    report.seconds["data"] = time.perf_counter() - began
    world = None
    if settings.world == "smoke":
        from companion.pipeline.smoke import smoke_world

        began = time.perf_counter()
        world = smoke_world()
        report.seconds["smoke world"] = time.perf_counter() - began
    began = time.perf_counter()
    todo = []
    for spec in plan.stores:
        if spec.path.is_file():
            drop_leftover_shards(spec.path)
        else:
            todo.append(spec)
    if todo:
        _say(f"prepare ({plan.profile}): {len(plan.stores) - len(todo)} of "
             f"{len(plan.stores)} feature stores present, extracting {len(todo)}")  # fmt: skip
    for spec in todo:
        try:
            source = _source_for(spec, settings, world)
        except GlocalError as err:
            report.problems.append(f"{spec.label}: {err}")
            continue
        started = time.perf_counter()
        store = extract_sharded(
            spec.model, source, module=spec.module, pretrained=spec.pretrained,
            dataset=spec.dataset, split=spec.split, shard_size=settings.shard_size,
            engine=engine, batch_size=settings.batch_size, num_workers=settings.num_workers,
            device=settings.device, verbose=verbose,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        report.extracted.append(spec.label)
        report.items += store.n
        _say(f"  {spec.label}: {store.n} items in {seconds:.1f} s")
    report.seconds["features"] = time.perf_counter() - began
    if report.problems:
        raise DataUnavailableError(
            f"profile {plan.profile}: {len(report.problems)} input(s) could not be provided: "
            + "; ".join(report.problems)
            + f"; `glocal reproduce --profile {plan.profile} --plan` lists what provides each"
        )
    began = time.perf_counter()
    _run_fits(plan)
    report.seconds["fits"] = time.perf_counter() - began
    return report


def _run_fits(plan: Plan) -> None:
    """Notebook 01's searches and fits for each of its sources (the notebooks reuse them).

    The sources run side by side (one thread each): their searches share the engine's
    workers, and one source's final fits run while the other's searches do.
    """
    from concurrent.futures import ThreadPoolExecutor

    from companion.paper.fits import fit_transforms
    from companion.paper.inputs import load_inputs

    p = plan.fit_params

    def fit_source(source: str) -> None:
        started = time.perf_counter()
        inputs = load_inputs(
            source, p["n_train"], p["n_val"], p["n_test"], p["n_contrast"],
            p["n_contrast_eval"], seed=0, device=p.get("device", "auto"),
        )  # fmt: skip
        params = {**p.get("fit_params", {}), "alpha": p.get("alpha"), "device": p.get("device")}
        fit_transforms(inputs, params=params, selection=p.get("selection"))
        _say(f"  fits of {source}: {time.perf_counter() - started:.1f} s")

    with ThreadPoolExecutor(max_workers=max(1, len(plan.fit_sources))) as pool:
        for done in [pool.submit(fit_source, source) for source in plan.fit_sources]:
            done.result()
