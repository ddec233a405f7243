"""Data sources for extraction: THINGS images, image folders and lists, torchvision, texts."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glocal.errors import GlocalError
from glocal.io import read_utf8

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
#: Image sources up to this many bytes in all are digested by content, larger ones by the
#: size and modification time of each file (hashing 26k THINGS images would take minutes).
SMALL_SOURCE_BYTES = 64 * 2**20


class Source:
    """A fixed, ordered collection of inputs (images or texts) with ids and integer labels.

    Subclasses set ``name`` (the dataset part of the store path), ``split``, ``kind``
    (``"image"`` or ``"text"``) and implement ``__len__``, ``ids`` and ``get``.
    """

    name: str = "source"
    split: str = "all"
    kind: str = "image"
    classes: list[str] | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def ids(self) -> list[str]:
        """One stable identifier per item (file path, concept id, index)."""
        raise NotImplementedError

    def get(self, index: int) -> tuple[Any, int]:
        """Item ``index`` as (PIL image in RGB or string, label; -1 when unlabelled)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the provenance record."""
        return f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)})"

    def fingerprint(self) -> str:
        """sha256 of the ids in order: a store is resumed or reused only for the same items."""
        digest = hashlib.sha256()
        for item_id in self.ids():
            digest.update(item_id.encode("utf-8") + b"\n")
        return digest.hexdigest()

    def content_digest(self) -> str:
        """``KIND:SHA256`` of what the items hold, so that a store of changed inputs is noticed.

        KIND says what was hashed: ``content`` (file bytes), ``stat`` (file sizes and
        modification times), ``texts`` or ``ids`` (sources that cannot look inside their items).
        """
        return f"ids:{self.fingerprint()}"


def _open_rgb(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise GlocalError(f"image {path} could not be read ({err}); remove or replace it") from err


class ImagePaths(Source):
    """A plain list of image files, with optional labels, ids and class names."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        labels: Sequence[int] | np.ndarray | None = None,
        *,
        ids: Sequence[str] | None = None,
        name: str | None = None,
        split: str = "all",
        classes: Sequence[str] | None = None,
    ):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise GlocalError("image source: the list of image paths is empty")
        n = len(self.paths)
        self.labels = (
            np.full(n, -1, dtype=np.int64) if labels is None else np.asarray(labels, np.int64)
        )
        if self.labels.shape != (n,):
            raise GlocalError(f"image source: {len(self.labels)} labels for {n} images")
        self._ids = [str(p) for p in self.paths] if ids is None else [str(i) for i in ids]
        if len(self._ids) != n:
            raise GlocalError(f"image source: {len(self._ids)} ids for {n} images")
        self.name = name or _default_name(self.paths[0].parent, "images")
        self.split = split
        self.classes = list(classes) if classes is not None else None

    def __len__(self) -> int:
        return len(self.paths)

    def ids(self) -> list[str]:
        return list(self._ids)

    def get(self, index: int) -> tuple[Any, int]:
        return _open_rgb(self.paths[index]), int(self.labels[index])

    def content_digest(self) -> str:
        stats = []
        for path in self.paths:
            try:
                stats.append(path.stat())
            except OSError as err:
                raise GlocalError(
                    f"image {path} cannot be read ({err.strerror or err}); restore it or remove "
                    "it from the source"
                ) from err
        digest = hashlib.sha256()
        if sum(st.st_size for st in stats) <= SMALL_SOURCE_BYTES:
            for item_id, path in zip(self._ids, self.paths, strict=True):
                digest.update(f"{item_id}\t{_file_sha256(path)}\n".encode())
            return f"content:{digest.hexdigest()}"
        for item_id, st in zip(self._ids, stats, strict=True):
            digest.update(f"{item_id}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        return f"stat:{digest.hexdigest()}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as err:
        raise GlocalError(
            f"image {path} cannot be read ({err.strerror or err}); restore it or remove it "
            "from the source"
        ) from err
    return digest.hexdigest()


def _default_name(folder: Path, fallback: str) -> str:
    folder = folder.resolve()
    tag = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    return f"{folder.name or fallback}-{tag}"


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def image_folder(
    root: str | os.PathLike, *, name: str | None = None, split: str = "all"
) -> ImagePaths:
    """``root/CLASS/**/IMAGE`` (ImageFolder layout): labels index the sorted class folders.

    A folder without class sub-folders is read as a flat list of images (labels -1).
    """
    root = Path(root)
    if not root.is_dir():
        raise GlocalError(f"image folder {root} does not exist or is not a folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    paths: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        found = _images_in(root / cls)
        paths += found
        labels += [label] * len(found)
    if not classes:
        paths = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        labels = [-1] * len(paths)
    if not paths:
        raise GlocalError(
            f"image folder {root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found; "
            "expected ROOT/CLASS/IMAGE or ROOT/IMAGE"
        )
    ids = [p.relative_to(root).as_posix() for p in paths]
    return ImagePaths(
        paths,
        labels,
        ids=ids,
        name=name or _default_name(root, "images"),
        split=split,
        classes=classes or None,
    )


def image_list(
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    labels: Sequence[int] | np.ndarray | None = None,
    *,
    name: str | None = None,
    split: str = "all",
) -> ImagePaths:
    """Images from a list of paths, or from a text file with one path per line (relative to it)."""
    if isinstance(paths, (str, os.PathLike)):
        listing = Path(paths)
        if not listing.is_file():
            raise GlocalError(f"image list {listing} does not exist")
        lines = [ln.strip() for ln in read_utf8(listing, f"image list {listing}").splitlines()]
        entries = [ln for ln in lines if ln and not ln.startswith("#")]
        return ImagePaths(
            [listing.parent / entry for entry in entries],
            labels,
            ids=entries,
            name=name or _default_name(listing.with_suffix(""), "list"),
            split=split,
        )
    return ImagePaths(list(paths), labels, name=name, split=split)


def _things() -> Any:
    try:
        return importlib.import_module("glocal.things")
    except ImportError as err:  # pragma: no cover - until the THINGS helpers land
        raise GlocalError("glocal.things is not available in this installation") from err


def things_images(images_root: str | os.PathLike | None = None) -> ImagePaths:
    """One reference image per THINGS concept, in the canonical order (labels 0..1853)."""
    things = _things()
    paths = things.reference_images(images_root)
    unique_ids = [str(u) for u in things.concepts()["uniqueID"]]
    if len(paths) != len(unique_ids):
        raise GlocalError(
            f"THINGS images: {len(paths)} reference images for {len(unique_ids)} concepts"
        )
    return ImagePaths(
        paths,
        np.arange(len(paths)),
        ids=unique_ids,
        name="things",
        split="reference",
        classes=unique_ids,
    )


def similarity_images(family: str, root: str | os.PathLike | None = None) -> ImagePaths:
    """Every image of a human similarity set family of :mod:`glocal.data.human`.

    ``family``: ``multi-arrangement``, ``free-arrangement`` (both stimulus sets) or ``peterson``
    (all six categories); ``root`` is its folder (None: the registry's). Item ids are the image
    paths relative to ``root``, as :class:`glocal.data.human.SimilarityJudgements` names them,
    so one store (dataset ``family``, split ``all``) serves every set of the family.
    """
    from glocal.data.human import FAMILIES, family_images

    if family not in FAMILIES:
        raise GlocalError(
            f"unknown similarity-set family {family!r}; choose one of {', '.join(FAMILIES)}"
        )
    if root is None:
        from glocal import data

        root = data.fetch(FAMILIES[family])
    root = Path(root)
    paths = family_images(family, root)
    ids = [p.relative_to(root).as_posix() for p in paths]
    return ImagePaths(paths, ids=ids, name=family, split="all")


class TextSource(Source):
    """A list of strings (e.g. THINGS concept names) to encode with a text model."""

    kind = "text"

    def __init__(
        self,
        texts: Sequence[str],
        *,
        ids: Sequence[str] | None = None,
        labels: Sequence[int] | np.ndarray | None = None,
        name: str = "texts",
        split: str = "all",
    ):
        self.texts = [str(t) for t in texts]
        if not self.texts:
            raise GlocalError("text source: the list of texts is empty")
        n = len(self.texts)
        self._ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
        self.labels = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
        if len(self._ids) != n or self.labels.shape != (n,):
            raise GlocalError(f"text source: ids/labels do not match the {n} texts")
        self.name, self.split = name, split

    def __len__(self) -> int:
        return len(self.texts)

    def ids(self) -> list[str]:
        return list(self._ids)

    def get(self, index: int) -> tuple[str, int]:
        return self.texts[index], int(self.labels[index])

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for item_id, text in zip(self._ids, self.texts, strict=True):
            digest.update(f"{item_id}\t{text}\n".encode())
        return digest.hexdigest()

    def content_digest(self) -> str:
        return f"texts:{self.fingerprint()}"


DEFINITION_COLUMNS = ("definition", "Definition (from WordNet, Google, or Wikipedia)")
THINGS_TEXT_KINDS = ("words", "definitions")


def things_texts(kind: str = "words", concepts: Any = None) -> TextSource:
    """THINGS concepts as text: ``words`` (bare names) or ``definitions`` ("word: definition").

    Bare words give homonyms (bow ×3, mouse ×2, ...) identical features; "word: definition"
    tells them apart. ``concepts``: a DataFrame with Word, uniqueID and a definition column
    (default: ``glocal.things.concepts()``).
    """
    if kind not in THINGS_TEXT_KINDS:
        raise GlocalError(f"THINGS texts: kind {kind!r} is not one of {THINGS_TEXT_KINDS}")
    if concepts is None:
        concepts = _things().concepts()
    words = [str(w) for w in concepts["Word"]]
    if kind == "definitions":
        column = next((c for c in DEFINITION_COLUMNS if c in concepts.columns), None)
        if column is None:
            raise GlocalError(
                f"THINGS concepts: no definition column (looked for {DEFINITION_COLUMNS})"
            )
        definitions = concepts[column].fillna("").astype(str)
        texts = [f"{w}: {d}" for w, d in zip(words, definitions, strict=True)]
    else:
        texts = words
    return TextSource(
        texts,
        ids=[str(u) for u in concepts["uniqueID"]],
        labels=np.arange(len(texts)),
        name=f"things-{kind}",
        split="concepts",
    )


def _class_name(value: Any) -> str:
    """A class name: the first of several synonyms (ImageNet), else the value as text."""
    if isinstance(value, (tuple, list)) and value:
        return str(value[0])
    return str(value)


class DatasetSource(Source):
    """Any map-style dataset whose items are (PIL image, label), e.g. a torchvision dataset."""

    def __init__(self, dataset: Any, *, name: str, split: str = "all", description: str = ""):
        self.dataset = dataset
        self.name, self.split = name, split
        self.description = (
            description or getattr(dataset, "description", "") or repr(dataset).splitlines()[0]
        )
        classes = getattr(dataset, "classes", None)
        self.classes = [_class_name(c) for c in classes] if classes is not None else None

    def __len__(self) -> int:
        return len(self.dataset)

    def ids(self) -> list[str]:
        """The dataset's own item ids (``dataset.ids``, e.g. relative file paths), else indices."""
        own = getattr(self.dataset, "ids", None)
        if own is not None and len(own) == len(self):
            return [str(i) for i in own]
        return [str(i) for i in range(len(self))]

    def get(self, index: int) -> tuple[Any, int]:
        item = self.dataset[index]
        image, label = (item[0], item[1]) if isinstance(item, (tuple, list)) else (item, -1)
        if not hasattr(image, "convert"):
            raise GlocalError(f"dataset {self.name}: item {index} is not a PIL image")
        try:
            label = int(label)
        except (TypeError, ValueError):
            label = -1
        return image.convert("RGB"), label

    def describe(self) -> str:
        return f"{self.description} (split={self.split!r}, n={len(self)})"

    def fingerprint(self) -> str:
        if getattr(self.dataset, "ids", None) is not None:
            return super().fingerprint()  # the item ids say which files these are
        return hashlib.sha256(f"{self.description}|{self.split}|{len(self)}".encode()).hexdigest()

    def content_digest(self) -> str:
        # the dataset's own files are not visible here; its description stands for them
        return f"dataset:{self.fingerprint()}"


def torchvision_dataset(
    name: str,
    split: str | None = None,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    **kwargs: Any,
) -> DatasetSource:
    """A ``torchvision.datasets`` class by name; ``split`` goes to its ``split`` or ``train``."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, name, None)
    if not inspect.isclass(cls):
        raise GlocalError(
            f"torchvision.datasets has no dataset {name!r} (names are case-sensitive)"
        )
    params = inspect.signature(cls).parameters
    args = dict(kwargs)
    if "root" in params:
        from glocal.features.store import cache_root

        args["root"] = str(root or cache_root().parent / "datasets" / name)
    if "download" in params:
        args["download"] = download
    if split is not None:
        if "split" in params:
            args["split"] = split
        elif "train" in params:
            if split not in ("train", "test"):
                raise GlocalError(
                    f"torchvision {name}: split must be 'train' or 'test', not {split!r}"
                )
            args["train"] = split == "train"
        else:
            raise GlocalError(f"torchvision {name} has no splits; drop the split {split!r}")
    try:
        dataset = cls(**args)
    except RuntimeError as err:
        raise GlocalError(
            f"torchvision {name} (root {args.get('root')}): {err}; pass download=True (--download) "
            "to fetch it"
        ) from err
    shown = ", ".join(
        f"{k}={v!r}" for k, v in sorted(args.items()) if k not in ("root", "download")
    )
    return DatasetSource(
        dataset,
        name=f"torchvision-{name}",
        split=split or "all",
        description=f"torchvision.datasets.{name}({shown})",
    )


def downstream_source(
    name: str,
    split: str,
    *,
    store_split: str | None = None,
    download: bool = False,
    **options: Any,
) -> DatasetSource:
    """A downstream dataset of :func:`glocal.data.downstream_dataset` as a source.

    Its items keep the dataset's own ids (file paths relative to the dataset's root, or
    indices), so a store of the same files matches wherever the folder lives. ``store_split``
    names the store's split when it differs from the dataset's (e.g. ``train-balanced`` for a
    class-balanced ImageNet subset); ``options`` go to ``downstream_dataset`` (root, partition,
    per_class, seed, checksums, hierarchy, partitions).
    """
    from glocal.data.datasets import downstream_dataset

    dataset = downstream_dataset(name, split, download=download, **options)
    shown = {k: v for k, v in options.items() if k in ("partition", "per_class", "seed")}
    extra = "".join(f", {k}={v!r}" for k, v in sorted(shown.items()))
    return DatasetSource(
        dataset,
        name=name,
        split=store_split or split,
        description=f"glocal.data.downstream_dataset({name!r}, {split!r}{extra})",
    )


SOURCE_FORMS = (
    "things[:IMAGES_ROOT]",
    "dataset:NAME:SPLIT[:PER_CLASS] (glocal.data.downstream_dataset)",
    "human:FAMILY[:ROOT] (the images of a human similarity set: multi-arrangement, "
    "free-arrangement, peterson)",
    "text:things-words",
    "text:things-definitions",
    "text:FILE (one text per line)",
    "torchvision:NAME[:SPLIT]",
    "a folder (ROOT/CLASS/IMAGE or ROOT/IMAGE)",
    "a .txt file listing image paths",
)


def resolve_source(
    spec: str | os.PathLike | Source,
    *,
    split: str | None = None,
    root: str | os.PathLike | None = None,
    download: bool = False,
) -> Source:
    """Turn a command-line source (see ``SOURCE_FORMS``) into a :class:`Source`."""
    if isinstance(spec, Source):
        return spec
    text = str(spec)
    if text == "things" or text.startswith("things:"):
        return things_images(text.partition(":")[2] or None)
    if text.startswith("text:"):
        what = text[len("text:") :]
        if what in ("things-words", "things-definitions"):
            return things_texts(what.split("-")[1])
        listing = Path(what)
        if not listing.is_file():
            raise GlocalError(f"source {text!r}: {listing} is not a file of texts")
        text_lines = read_utf8(listing, f"source {text!r}").splitlines()
        lines = [ln for ln in text_lines if ln.strip()]
        return TextSource(lines, name=_default_name(listing.with_suffix(""), "texts"))
    if text.startswith("human:"):
        _, family, folder = (text.split(":", 2) + [""])[:3]
        images = similarity_images(family, folder or root)
        return images if split is None else ImagePaths(
            images.paths, ids=images.ids(), name=images.name, split=split)  # fmt: skip
    if text.startswith("dataset:"):
        _, name, ds_split, per_class = (text.split(":", 3) + ["", ""])[:4]
        if not name or not ds_split:
            raise GlocalError(f"source {text!r}: use dataset:NAME:SPLIT[:PER_CLASS]")
        if per_class and not (per_class.isascii() and per_class.isdigit() and int(per_class) > 0):
            raise GlocalError(
                f"source {text!r}: PER_CLASS must be a positive whole number of images per "
                f"class, got {per_class!r}; use dataset:{name}:{ds_split}[:PER_CLASS], e.g. "
                f"dataset:{name}:{ds_split}:10"
            )
        options: dict[str, Any] = {"per_class": int(per_class)} if per_class else {}
        if root is not None:
            options["root"] = root
        return downstream_source(name, ds_split, store_split=split, download=download, **options)
    if text.startswith("torchvision:"):
        _, name, tv_split = (text.split(":", 2) + [""])[:3]
        return torchvision_dataset(name, split or tv_split or None, root=root, download=download)
    path = Path(text)
    if path.is_dir():
        return image_folder(path, split=split or "all")
    if path.is_file() and path.suffix.lower() in (".txt", ".lst"):
        return image_list(path, split=split or "all")
    raise GlocalError(f"source {text!r} not understood; use one of: {'; '.join(SOURCE_FORMS)}")
