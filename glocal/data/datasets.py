"""Downstream image datasets through torchvision's own downloaders, kept in the glocal cache."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glocal.data._fetch import _env_help, cache_dir, fetch
from glocal.errors import DataUnavailableError, GlocalError

ENV_IMAGENET = "GLOCAL_IMAGENET_DIR"

SPLITS: dict[str, tuple[str, ...]] = {
    "cifar10": ("train", "test"),
    "cifar100": ("train", "test"),
    "cifar100-coarse": ("train", "test"),
    "dtd": ("train", "val", "test"),
    "flowers102": ("train", "val", "test"),
    "sun397": ("train", "test"),
    "imagenet": ("train", "val"),
}

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
    "ILSVRC2012_devkit_t12.tar.gz yourself and pass their folder as root=... (or set "
    f"{ENV_IMAGENET})"
)


class FileListDataset:
    """An image dataset given by a list of files and integer labels (a torch-style Dataset)."""

    def __init__(
        self,
        files: list[Path],
        targets: list[int],
        classes: list[str],
        transform: Callable | None = None,
    ) -> None:
        self.files = files
        self.targets = targets
        self.classes = classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        with Image.open(self.files[index]) as img:
            image = img.convert("RGB")
        return (self.transform(image) if self.transform else image), self.targets[index]


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


def _sun397(root: Path, split: str, download: bool, partition: int, transform: Any) -> Any:
    """SUN397 restricted to one official partition (Training_0k.txt / Testing_0k.txt)."""
    from torchvision.datasets import SUN397

    SUN397(root, download=download)  # downloads and checks the image archive
    data_dir = root / "SUN397"
    member = f"{'Training' if split == 'train' else 'Testing'}_{partition:02d}.txt"
    with zipfile.ZipFile(fetch("sun397/partitions")) as zf:
        names = [n for n in zf.namelist() if Path(n).name == member]
        if not names:
            raise GlocalError(f"SUN397 Partitions.zip has no {member}")
        lines = zf.read(names[0]).decode().split()
    with open(data_dir / "ClassName.txt", encoding="utf-8") as fh:
        class_paths = [line.strip() for line in fh if line.strip()]
    index = {c: i for i, c in enumerate(class_paths)}
    files, targets = [], []
    for line in lines:
        rel = line.strip().lstrip("/")
        files.append(data_dir / rel)
        targets.append(index["/" + str(Path(rel).parent)])
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise GlocalError(
            f"SUN397 in {data_dir}: {len(missing)} images of partition {member} are missing, "
            f"e.g. {missing[0]}; delete {data_dir} and download again"
        )
    classes = [c[3:] for c in class_paths]  # "/a/abbey" -> "abbey", as torchvision names them
    return FileListDataset(files, targets, classes, transform)


def _imagenet_root(root: str | os.PathLike | None) -> Path:
    value = root if root is not None else os.environ.get(ENV_IMAGENET)
    if not value:
        raise GlocalError(f"imagenet: no root given; {IMAGENET_HELP}")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataUnavailableError(f"imagenet: root {path} is not a folder; {IMAGENET_HELP}")
    return path


def downstream_dataset(
    name: str,
    split: str,
    root: str | os.PathLike | None = None,
    download: bool = True,
    transform: Callable | None = None,
    partition: int = 1,
) -> Any:
    """A downstream dataset split as a torch-style Dataset (``len``, ``[i] -> (image, label)``).

    ``name``: cifar10, cifar100, cifar100-coarse (the 20 superclasses), dtd, flowers102, sun397
    (official ``partition`` 1-10, 50 train / 50 test images per class) or imagenet (from a user
    path only). ``root`` defaults to ``cache_dir()/downstream/<name>``; downloads use
    torchvision's own downloaders and checksums. A missing dataset that cannot be downloaded
    raises :class:`DataUnavailableError`.
    """
    if name not in SPLITS:
        raise GlocalError(f"unknown downstream dataset {name!r}; choose one of {sorted(SPLITS)}")
    if split not in SPLITS[name]:
        raise GlocalError(f"{name}: unknown split {split!r}; choose one of {SPLITS[name]}")
    if name in ("dtd", "sun397") and not (isinstance(partition, int) and 1 <= partition <= 10):
        raise GlocalError(f"{name}: partition must be an integer from 1 to 10, got {partition!r}")
    if name == "imagenet":
        from torchvision.datasets import ImageNet

        path = _imagenet_root(root)
        try:
            return ImageNet(str(path), split=split, transform=transform)
        except (RuntimeError, OSError) as err:
            raise DataUnavailableError(f"imagenet in {path}: {err}; {IMAGENET_HELP}") from err
    folder = "cifar100" if name == "cifar100-coarse" else name
    path = Path(root).expanduser() if root is not None else cache_dir() / "downstream" / folder
    try:
        return _build(name, split, path, download, transform, partition)
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
    name: str, split: str, root: Path, download: bool, transform: Callable | None, partition: int
) -> Any:
    from torchvision import datasets

    root.mkdir(parents=True, exist_ok=True)
    train = split == "train"
    if name == "cifar10":
        return datasets.CIFAR10(root, train=train, transform=transform, download=download)
    if name in ("cifar100", "cifar100-coarse"):
        data = datasets.CIFAR100(root, train=train, transform=transform, download=download)
        return _cifar100_coarse(data, root, split) if name == "cifar100-coarse" else data
    if name == "dtd":
        return datasets.DTD(
            root, split=split, partition=partition, transform=transform, download=download
        )
    if name == "flowers102":
        return datasets.Flowers102(root, split=split, transform=transform, download=download)
    return _sun397(root, split, download, partition, transform)
