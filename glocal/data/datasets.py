"""Downstream image datasets through torchvision's own loaders, kept in the glocal cache.

Besides the torchvision datasets themselves (CIFAR-10/100, DTD, Flowers102, SUN397, ImageNet)
this module builds the paper's derived tasks from them: CIFAR-100's 20 superclasses, SUN397's
official partitions, a class-balanced ImageNet training subset, ImageNet-30 (the 30 ImageNet
classes of Hendrycks et al.'s anomaly-detection benchmark) and the BREEDS tasks Entity-13,
Entity-30, Living-17 and Nonliving-26 (ImageNet superclasses from the BREEDS hierarchy,
Santurkar et al. 2021).
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from glocal.data._fetch import _env_help, cache_dir, fetch
from glocal.errors import DataUnavailableError, GlocalError

if TYPE_CHECKING:
    import networkx as nx

ENV_IMAGENET = "GLOCAL_IMAGENET_DIR"

SPLITS: dict[str, tuple[str, ...]] = {
    "cifar10": ("train", "test"),
    "cifar100": ("train", "test"),
    "cifar100-coarse": ("train", "test"),
    "dtd": ("train", "val", "test"),
    "flowers102": ("train", "val", "test"),
    "sun397": ("train", "test"),
    "imagenet": ("train", "val"),
    "imagenet30": ("train", "test"),
    "breeds-entity13": ("train", "test", "source-val"),
    "breeds-entity30": ("train", "test", "source-val"),
    "breeds-living17": ("train", "test", "source-val"),
    "breeds-nonliving26": ("train", "test", "source-val"),
}
#: Datasets built from the user's ImageNet folder (never downloaded).
FROM_IMAGENET = ("imagenet", "imagenet30", "breeds-entity13", "breeds-entity30",
                 "breeds-living17", "breeds-nonliving26")  # fmt: skip

SOURCES = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "dtd": "https://www.robots.ox.ac.uk/~vgg/data/dtd/",
    "flowers102": "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
    "sun397": "http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz",
}

IMAGENET_HELP = (
    "ImageNet cannot be downloaded automatically (its terms require registering at "
    "https://image-net.org); download ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and "
    "ILSVRC2012_devkit_t12.tar.gz yourself, put the three files in one folder and pass it as "
    f"root=... (or set {ENV_IMAGENET}); torchvision unpacks them there on first use"
)

#: The 30 ImageNet classes of the ImageNet-30 anomaly-detection benchmark (Hendrycks et al.,
#: 2019), by the ImageNet class names torchvision's ImageNet knows them by.
IMAGENET30_CLASSES = (
    "acorn", "airliner", "ambulance", "American alligator", "banjo", "barn", "bikini",
    "digital clock", "dragonfly", "dumbbell", "forklift", "goblet", "grand piano", "hotdog",
    "hourglass", "manhole cover", "mosque", "nail", "parking meter", "pillow", "revolver",
    "dial telephone", "schooner", "snowmobile", "soccer ball", "stingray", "strawberry", "tank",
    "toaster", "volcano",
)  # fmt: skip

#: BREEDS tasks (Santurkar et al., 2021): superclasses at ``level`` of the BREEDS hierarchy
#: with at least ``n_subclasses`` ImageNet classes, below ``ancestor`` when one is named, each
#: split at random (seed 2) into two disjoint halves: source subclasses (training images) and
#: target subclasses (test images). The values are those of the BREEDS authors' ``make_*``
#: functions (MadryLab/robustness, ``robustness/tools/breeds_helpers.py``): Living-17 lies below
#: "living thing" (n00004258), Nonliving-26 below "artifact" (n00021939).
BREEDS_TASKS: dict[str, dict[str, Any]] = {
    "entity13": {"level": 3, "n_subclasses": 20, "ancestor": None},
    "entity30": {"level": 4, "n_subclasses": 8, "ancestor": None},
    "living17": {"level": 5, "n_subclasses": 4, "ancestor": "n00004258"},
    "nonliving26": {"level": 5, "n_subclasses": 4, "ancestor": "n00021939"},
}
#: The BREEDS hierarchy files (registry names) and the file name each one has on disk.
BREEDS_FILES = {
    "breeds/dataset_class_info": "dataset_class_info.json",
    "breeds/class_hierarchy": "class_hierarchy.txt",
    "breeds/node_names": "node_names.txt",
}
BREEDS_ROOT = "n00001740"  # "entity", the root of the hierarchy
BREEDS_SEED = 2


class FileListDataset:
    """An image dataset given by a list of files and integer labels (a torch-style Dataset).

    ``ids`` name the items (file paths relative to the dataset's root), so that feature stores
    of the same files get the same item ids wherever the folder lives.
    """

    def __init__(
        self,
        files: list[Path],
        targets: list[int],
        classes: list[str],
        transform: Callable | None = None,
        ids: list[str] | None = None,
        description: str = "",
    ) -> None:
        self.files = files
        self.targets = targets
        self.classes = classes
        self.transform = transform
        self.ids = ids if ids is not None else [str(f) for f in files]
        self.description = description

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return self.description or f"FileListDataset(n={len(self)})"

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        with Image.open(self.files[index]) as img:
            image = img.convert("RGB")
        return (self.transform(image) if self.transform else image), self.targets[index]


# --- torchvision loaders, with a dataset's own checksums when its files are not the public ones


def _with_checksums(cls: type, checksums: Mapping[str, str] | None) -> type:
    """``cls`` itself, or a subclass whose expected md5 of the named files is ``checksums``.

    torchvision's CIFAR and Flowers102 loaders check each file against the md5 of the public
    release; a local copy with other bytes (such as a generated miniature of the layout) names
    its own md5 per file here, and everything else the loader does stays the same.
    """
    if not checksums:
        return cls
    md5 = dict(checksums)
    attrs: dict[str, Any] = {}
    base: Any = cls
    if hasattr(base, "train_list"):  # CIFAR10 / CIFAR100
        attrs["train_list"] = [[f, md5.get(f, m)] for f, m in base.train_list]
        attrs["test_list"] = [[f, md5.get(f, m)] for f, m in base.test_list]
        attrs["meta"] = {**base.meta, "md5": md5.get(base.meta["filename"], base.meta["md5"])}
    if hasattr(base, "_file_dict"):  # Flowers102
        attrs["_file_dict"] = {k: (f, md5.get(f, m)) for k, (f, m) in base._file_dict.items()}
    return type(cls.__name__, (cls,), attrs)


def _cifar100_coarse(dataset: Any, root: Path, split: str) -> Any:
    """Replace CIFAR-100's fine labels by its 20 coarse (superclass) labels."""
    folder = root / "cifar-100-python"
    with open(folder / split, "rb") as fh:
        labels = pickle.load(fh, encoding="latin1")["coarse_labels"]
    with open(folder / "meta", "rb") as fh:
        names = pickle.load(fh, encoding="latin1")["coarse_label_names"]
    if len(labels) != len(dataset.targets):
        raise GlocalError(
            f"{folder / split}: {len(labels)} coarse labels for {len(dataset.targets)} images"
        )
    dataset.targets = list(labels)
    dataset.classes = list(names)
    dataset.class_to_idx = {name: i for i, name in enumerate(names)}
    return dataset


def _partition_lines(partitions: str | os.PathLike | None, member: str) -> list[str]:
    """The lines of ``member`` (e.g. Training_01.txt) of SUN397's Partitions.zip."""
    archive = Path(partitions) if partitions is not None else fetch("sun397/partitions")
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if Path(n).name == member]
        if not names:
            raise GlocalError(f"SUN397 partitions {archive} have no {member}")
        return zf.read(names[0]).decode().split()


def _sun397(
    root: Path,
    split: str,
    download: bool,
    partition: int,
    transform: Any,
    partitions: str | os.PathLike | None,
) -> Any:
    """SUN397 restricted to one official partition (Training_0k.txt / Testing_0k.txt)."""
    from torchvision.datasets import SUN397

    SUN397(root, download=download)  # downloads and checks the image archive
    data_dir = root / "SUN397"
    member = f"{'Training' if split == 'train' else 'Testing'}_{partition:02d}.txt"
    lines = _partition_lines(partitions, member)
    with open(data_dir / "ClassName.txt", encoding="utf-8") as fh:
        class_paths = [line.strip() for line in fh if line.strip()]
    index = {c: i for i, c in enumerate(class_paths)}
    files, targets, ids = [], [], []
    for line in lines:
        rel = line.strip().lstrip("/")
        files.append(data_dir / rel)
        ids.append(rel)
        targets.append(index["/" + str(Path(rel).parent)])
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise GlocalError(
            f"SUN397 in {data_dir}: {len(missing)} images of partition {member} are missing, "
            f"e.g. {missing[0]}; delete {data_dir} and download again"
        )
    classes = [c[3:] for c in class_paths]  # "/a/abbey" -> "abbey", as torchvision names them
    description = f"glocal.data.downstream_dataset('sun397', {split!r}, partition={partition})"
    return FileListDataset(files, targets, classes, transform, ids, description)


# --- ImageNet and the tasks built from it ------------------------------------------------------


def _imagenet_root(root: str | os.PathLike | None) -> Path:
    value = root if root is not None else os.environ.get(ENV_IMAGENET)
    if not value:
        raise DataUnavailableError(f"imagenet: no root given; {IMAGENET_HELP}")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataUnavailableError(f"imagenet: root {path} is not a folder; {IMAGENET_HELP}")
    return path


def _imagenet(root: Path, split: str) -> Any:
    """torchvision's ImageNet (``split`` train or val), a clear error when it is not there."""
    from torchvision.datasets import ImageNet

    try:
        return ImageNet(str(root), split=split)
    except (RuntimeError, OSError) as err:
        raise DataUnavailableError(f"imagenet in {root}: {err}; {IMAGENET_HELP}") from err


def _subset(
    net: Any,
    root: Path,
    keep: Mapping[int, int],
    classes: list[str],
    per_class: int | None,
    seed: int,
    transform: Any,
    description: str,
) -> FileListDataset:
    """ImageNet items whose class is a key of ``keep``, labelled ``keep[class]``; at most
    ``per_class`` of each ImageNet class (a seeded choice, in file order)."""
    by_class: dict[int, list[int]] = {}
    for i, (_, target) in enumerate(net.samples):
        if target in keep:
            by_class.setdefault(target, []).append(i)
    missing = sorted(set(keep) - set(by_class))
    if missing:
        raise GlocalError(
            f"imagenet in {root}: no {net.split} images of ImageNet classes {missing[:5]} "
            f"({len(missing)} classes); the folder is incomplete"
        )
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for target in sorted(by_class):
        items = by_class[target]
        if per_class is not None and len(items) > per_class:
            items = sorted(rng.choice(items, size=per_class, replace=False).tolist())
        chosen += items
    files = [Path(net.samples[i][0]) for i in chosen]
    ids = [f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f) for f in files]
    targets = [keep[net.samples[i][1]] for i in chosen]
    return FileListDataset(files, targets, classes, transform, ids, description)


def imagenet30_labels(classes: list[tuple[str, ...]]) -> list[int]:
    """ImageNet class indices of :data:`IMAGENET30_CLASSES`, given torchvision's ``classes``."""
    index = {name: i for i, names in enumerate(classes) for name in names}
    missing = [name for name in IMAGENET30_CLASSES if name not in index]
    if missing:
        raise GlocalError(f"imagenet: no class named {missing[0]!r} (ImageNet-30 needs it)")
    return [index[name] for name in IMAGENET30_CLASSES]


@dataclass(frozen=True)
class BreedsTask:
    """A BREEDS task: superclasses and, per superclass, its source and target ImageNet classes."""

    name: str
    superclasses: list[str]  # WordNet ids
    names: list[str]  # superclass names
    source: list[list[int]]  # ImageNet class indices seen in training, per superclass
    target: list[list[int]]  # unseen ImageNet classes whose images are the test set

    def labels(self, side: str) -> dict[int, int]:
        """``{ImageNet class: superclass}`` of the ``source`` or ``target`` subclasses."""
        groups = self.source if side == "source" else self.target
        return {c: s for s, members in enumerate(groups) for c in members}


class BreedsHierarchy:
    """The BREEDS class hierarchy of ImageNet (three files, as the BREEDS authors publish them).

    ``dataset_class_info.json`` lists ``[index, wnid, name]`` of the 1000 ImageNet classes (the
    leaves), ``class_hierarchy.txt`` one ``parent child`` edge per line, ``node_names.txt``
    ``wnid<TAB>name`` of the inner nodes. Only edges on a path from a leaf up to the root are
    kept; a node's level is its longest distance from the root.
    """

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        files = {name: folder / name for name in BREEDS_FILES.values()}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise GlocalError(f"BREEDS hierarchy folder {folder}: missing {', '.join(missing)}")
        info = json.loads(files["dataset_class_info.json"].read_text(encoding="utf-8"))
        self.leaf_index = {str(wnid): int(num) for num, wnid, _ in info}
        self.leaf_name = {str(wnid): str(name) for _, wnid, name in info}
        edges = [ln.split() for ln in files["class_hierarchy.txt"].read_text().splitlines()]
        self.node_name: dict[str, str] = {}
        for line in files["node_names.txt"].read_text(encoding="utf-8").splitlines():
            wnid, _, name = line.strip().partition("\t")
            if wnid:
                self.node_name[wnid] = name
        import networkx as nx  # here, not on import: it doubles the import time of glocal.data

        tree = nx.DiGraph(edge for edge in edges if len(edge) == 2)  # parent -> child
        # keep the edges that lead up from a leaf
        kept = {leaf for leaf in self.leaf_index if leaf in tree}
        kept.update(*(nx.ancestors(tree, leaf) for leaf in list(kept)))
        self.graph: nx.DiGraph = tree.subgraph(kept).copy()
        self.level = self._levels(BREEDS_ROOT)

    def _levels(self, root: str) -> dict[str, int]:
        """Longest distance of every node from ``root`` (a DAG: relax in topological order)."""
        import networkx as nx

        if root not in self.graph:
            return {root: 0}
        below = self.graph.subgraph(nx.descendants(self.graph, root) | {root})
        level = dict.fromkeys(below, 0)
        for node in nx.topological_sort(below):
            for child in below.successors(node):
                level[child] = max(level[child], level[node] + 1)
        return level

    def children(self, node: str) -> list[str]:
        """The nodes right below ``node``, sorted."""
        return sorted(self.graph.successors(node)) if node in self.graph else []

    def leaves(self, node: str) -> list[str]:
        """The ImageNet classes (leaves) below ``node``, sorted (the node itself if a leaf)."""
        import networkx as nx

        # below the node asked about, a leaf ends a path (ILSVRC has no class below another)
        paths = nx.subgraph_view(
            self.graph, filter_edge=lambda u, _: u == node or u not in self.leaf_index
        )
        below = nx.descendants(paths, node) if node in paths else set()
        return sorted({n for n in below | {node} if n in self.leaf_index})

    def below(self, node: str) -> set[str]:
        """``node`` and every node under it (inner nodes and leaves)."""
        import networkx as nx

        return (nx.descendants(self.graph, node) if node in self.graph else set()) | {node}

    def task(
        self,
        name: str,
        level: int,
        n_subclasses: int,
        seed: int = BREEDS_SEED,
        ancestor: str | None = None,
    ) -> BreedsTask:
        """Superclasses at ``level`` (below ``ancestor`` when given, the ancestor included) with
        at least ``n_subclasses`` leaves, each split at random into two halves of
        ``n_subclasses / 2`` (one generator, superclasses in sorted order)."""
        if n_subclasses % 2:
            raise GlocalError(f"BREEDS {name}: n_subclasses must be even, got {n_subclasses}")
        if ancestor is not None and ancestor not in self.level:
            raise GlocalError(f"BREEDS {name}: the ancestor {ancestor} is not in the hierarchy")
        subtree = self.below(ancestor) if ancestor is not None else None
        nodes = sorted(n for n, lv in self.level.items()
                       if lv == level and (subtree is None or n in subtree))  # fmt: skip
        chosen = [n for n in nodes if len(self.leaves(n)) >= n_subclasses]
        if not chosen:
            where = f" below {ancestor}" if ancestor is not None else ""
            raise GlocalError(
                f"BREEDS {name}: no node at level {level}{where} has {n_subclasses} ImageNet "
                "classes"
            )
        rng = np.random.RandomState(seed)  # the generator the BREEDS authors' splits used
        half = n_subclasses // 2
        source, target = [], []
        for node in chosen:
            top, below = node, self.children(node)
            while len(below) == 1:  # the first descendant that branches
                top = below[0]
                below = self.children(top)
            pool: list[str] = []
            for child in below:
                pool += self.leaves(child)
            picked = rng.choice(sorted(pool), n_subclasses, replace=False)
            source.append([self.leaf_index[w] for w in picked[:half]])
            target.append([self.leaf_index[w] for w in picked[half:]])
        names = [self.node_name.get(n, n) for n in chosen]
        return BreedsTask(name, chosen, names, source, target)


def breeds_hierarchy_dir() -> Path:
    """The folder holding the three BREEDS files (fetched through the registry, checksummed)."""
    paths = [fetch(name) for name in BREEDS_FILES]
    folders = {p.parent for p in paths}
    if len(folders) != 1:  # mirror and cache hold different files: gather them in the cache
        target = cache_dir() / "breeds"
        target.mkdir(parents=True, exist_ok=True)
        for path in paths:
            if path.parent != target:
                (target / path.name).write_bytes(path.read_bytes())
        return target
    return folders.pop()


@lru_cache(maxsize=8)
def _hierarchy(folder: str, stamp: tuple) -> BreedsHierarchy:
    return BreedsHierarchy(folder)


def breeds_task(name: str, hierarchy: str | os.PathLike | None = None) -> BreedsTask:
    """The BREEDS task ``entity13``, ``entity30``, ``living17`` or ``nonliving26`` from the
    hierarchy files in ``hierarchy`` (default: the registry's copies of the BREEDS authors'
    files)."""
    if name not in BREEDS_TASKS:
        raise GlocalError(f"unknown BREEDS task {name!r}; choose one of {sorted(BREEDS_TASKS)}")
    folder = Path(hierarchy) if hierarchy is not None else breeds_hierarchy_dir()
    stamp = tuple(
        (p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else None
        for p in (folder / f for f in BREEDS_FILES.values())
    )
    return _hierarchy(str(folder), stamp).task(name, **BREEDS_TASKS[name])


def _from_imagenet(
    name: str,
    split: str,
    root: Path,
    per_class: int | None,
    seed: int,
    transform: Any,
    hierarchy: str | os.PathLike | None,
) -> Any:
    """ImageNet, a class-balanced subset of it, ImageNet-30 or a BREEDS task."""
    options = f", per_class={per_class}" if per_class is not None else ""
    description = f"glocal.data.downstream_dataset({name!r}, {split!r}{options}, seed={seed})"
    if name == "imagenet":
        net = _imagenet(root, split)
        keep = {i: i for i in range(len(net.classes))}
        names = [c[0] for c in net.classes]
        return _subset(net, root, keep, names, per_class, seed, transform, description)
    net = _imagenet(root, "train" if split == "train" else "val")  # test, source-val: val
    if name == "imagenet30":
        labels = imagenet30_labels(net.classes)
        keep = {c: i for i, c in enumerate(labels)}
        return _subset(net, root, keep, list(IMAGENET30_CLASSES), per_class, seed, transform,
                       description)  # fmt: skip
    task = breeds_task(name.removeprefix("breeds-"), hierarchy)
    keep = task.labels("target" if split == "test" else "source")
    return _subset(net, root, keep, task.names, per_class, seed, transform, description)


def downstream_dataset(
    name: str,
    split: str,
    root: str | os.PathLike | None = None,
    download: bool = True,
    transform: Callable | None = None,
    partition: int = 1,
    *,
    per_class: int | None = None,
    seed: int = 0,
    checksums: Mapping[str, str] | None = None,
    hierarchy: str | os.PathLike | None = None,
    partitions: str | os.PathLike | None = None,
) -> Any:
    """A downstream dataset split as a torch-style Dataset (``len``, ``[i] -> (image, label)``).

    ``name``: cifar10, cifar100, cifar100-coarse (the 20 superclasses), dtd, flowers102, sun397
    (official ``partition`` 1-10: 50 train / 50 test images per class), and from the user's
    ImageNet folder (``root`` or ``$GLOCAL_IMAGENET_DIR``; never downloaded): imagenet (train /
    val), imagenet30 (the 30 ImageNet-30 classes; train from ImageNet train, test from ImageNet
    val) and breeds-entity13 / breeds-entity30 / breeds-living17 / breeds-nonliving26 (labels are
    superclasses; train holds the source subclasses' ImageNet training images, test the target
    subclasses' validation images, source-val the source subclasses' validation images: the
    in-distribution reference of the BREEDS protocol).
    ``per_class`` keeps a seeded choice of at most that many images of each ImageNet class
    (ImageNet-based datasets). ``root`` defaults to ``cache_dir()/downstream/<name>``; downloads
    use torchvision's own downloaders and checksums. ``checksums`` (``{file: md5}``) replace the
    md5 torchvision expects of those files of a local copy whose bytes are not the public ones
    (CIFAR, Flowers102); ``hierarchy`` is a folder with the BREEDS files and ``partitions`` a
    SUN397 Partitions.zip (defaults: the registry's checksummed copies). A missing dataset that
    cannot be downloaded raises :class:`DataUnavailableError`.
    """
    if name not in SPLITS:
        raise GlocalError(f"unknown downstream dataset {name!r}; choose one of {sorted(SPLITS)}")
    if split not in SPLITS[name]:
        raise GlocalError(f"{name}: unknown split {split!r}; choose one of {SPLITS[name]}")
    if name in ("dtd", "sun397") and not (isinstance(partition, int) and 1 <= partition <= 10):
        raise GlocalError(f"{name}: partition must be an integer from 1 to 10, got {partition!r}")
    if per_class is not None and (not isinstance(per_class, int) or per_class < 1):
        raise GlocalError(f"{name}: per_class must be a positive integer or None, got {per_class}")
    if name in FROM_IMAGENET:
        return _from_imagenet(name, split, _imagenet_root(root), per_class, seed, transform,
                              hierarchy)  # fmt: skip
    folder = "cifar100" if name == "cifar100-coarse" else name
    path = Path(root).expanduser() if root is not None else cache_dir() / "downstream" / folder
    try:
        return _build(name, split, path, download, transform, partition, checksums, partitions)
    except GlocalError:
        raise
    except (RuntimeError, OSError) as err:  # torchvision: missing/corrupt files, network errors
        why = "download=False" if not download else f"{type(err).__name__}: {err}"
        source = SOURCES.get(folder, "")
        raise DataUnavailableError(
            f"downstream dataset {name!r} ({split}) is not in {path} and could not be "
            f"downloaded ({why}); on a machine with internet run "
            f"glocal.data.downstream_dataset({name!r}, {split!r}) (source: {source}) and copy "
            f"the folder to {path}, or pass root=...; {_env_help()}"
        ) from err


def _build(
    name: str,
    split: str,
    root: Path,
    download: bool,
    transform: Callable | None,
    partition: int,
    checksums: Mapping[str, str] | None,
    partitions: str | os.PathLike | None,
) -> Any:
    from torchvision import datasets

    root.mkdir(parents=True, exist_ok=True)
    train = split == "train"
    if name == "cifar10":
        cls = _with_checksums(datasets.CIFAR10, checksums)
        return cls(root, train=train, transform=transform, download=download)
    if name in ("cifar100", "cifar100-coarse"):
        cls = _with_checksums(datasets.CIFAR100, checksums)
        data = cls(root, train=train, transform=transform, download=download)
        return _cifar100_coarse(data, root, split) if name == "cifar100-coarse" else data
    if name == "dtd":
        return datasets.DTD(
            root, split=split, partition=partition, transform=transform, download=download
        )
    if name == "flowers102":
        cls = _with_checksums(datasets.Flowers102, checksums)
        return cls(root, split=split, transform=transform, download=download)
    return _sun397(root, split, download, partition, transform, partitions)
