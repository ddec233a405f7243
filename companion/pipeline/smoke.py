"""The smoke world: a miniature, generated copy of every image dataset the paper profile reads.

The ``smoke`` profile runs every paper notebook through the paper's code path offline, in
minutes. Its inputs are generated here, deterministically, in the layouts the real loaders
expect, so that the real loaders read them:

- ``things/object_images/UNIQUEID/UNIQUEID_01b.jpg``: one small image per THINGS concept (1854
  folders; colours follow each concept's VICE embedding, so similar concepts look alike);
- ``imagenet/``: what torchvision's ``ImageNet`` leaves after unpacking the archives
  (``meta.bin``, ``train/WNID/*.JPEG``, ``val/WNID/*.JPEG``), with 48 classes of which 30 carry
  the ImageNet-30 names;
- ``breeds/``: BREEDS hierarchy files over those classes (two level-3 superclasses with 24
  classes each, six level-4 superclasses with 8, twelve level-5 superclasses with 4; the two
  level-1 nodes carry the WordNet ids of "living thing" and "artifact", the ancestors of
  Living-17 and Nonliving-26), in the BREEDS authors' file format;
- ``cifar10/``, ``cifar100/`` (pickled batches; 40 fine classes in 8 superclasses), ``dtd/``
  (images and partition lists), ``flowers102/`` (``.mat`` label and split files), ``sun397/``
  (images, ``ClassName.txt`` and a ``Partitions.zip``), each with ``checksums.json``: the md5
  of its generated files,
  which take the place of the public files' md5 that torchvision checks;
- ``multi-arrangement/``, ``free-arrangement/``, ``peterson/``: miniatures of the three human
  similarity sets in the layouts of the official gLocal readers (see ``glocal.data.human``):
  images drawn from hidden points, and per-participant distance matrices (multi-arrangement:
  ``judgments_general.mat``; free arrangement: ``BEHAVIOR.mat`` of two stimulus sets) or mean
  similarity matrices (Peterson: a ``*sim*.mat`` per category, and for ``fruits`` the pickle of
  each pair's ratings that the official reader falls back on) between those points.

Its models are tiny random-weight variants of one open_clip, one timm and one torchvision model
of the registry (``smoke_models.json``, :func:`register_models`).

The world is written once per version of this file into ``CACHE/smoke-world/VERSION``: under a
lock, into a temporary folder that is renamed into place, so parallel notebooks and workers
see either no world or a complete one. Every number computed from it means nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glocal.errors import GlocalError
from glocal.io import cache_dir, file_lock

SEED = 0
SIZE = 32  # pixels per side of every generated image
#: Images per class and split of the generated downstream datasets.
COUNTS = {
    "imagenet": {"train": 8, "val": 3},
    "cifar10": {"train": 10, "test": 5},
    "cifar100": {"train": 4, "test": 3},
    "dtd": {"train": 4, "val": 2, "test": 3},
    "flowers102": {"train": 4, "val": 1, "test": 3},
    "sun397": {"train": 4, "test": 3},
}
#: Classes per generated dataset (the smoke CIFAR-100 has 8 superclasses of 5 fine classes).
N_CLASSES = {"cifar10": 10, "cifar100": 40, "dtd": 6, "flowers102": 5, "sun397": 6}
DOWNSTREAM = ("cifar10", "cifar100", "dtd", "flowers102", "sun397")
#: Images per generated human similarity set, and participants per set with one matrix each.
SIMILARITY_IMAGES = {"multi-arrangement": 12, "free-arrangement": 10, "peterson": 8}
N_PARTICIPANTS = 4
#: The generated BREEDS hierarchy: root -> 2 level-1 nodes -> 1 level-2 node each -> 1 level-3
#: superclass each -> 3 level-4 superclasses each -> 2 level-5 superclasses each -> 4 ImageNet
#: classes each (48 classes).
N_LEVEL4, N_LEVEL5, N_LEAVES = 3, 2, 8
#: The level-1 nodes: the WordNet ids of "living thing" and "artifact" (BREEDS_TASKS' ancestors).
LEVEL1 = ("n00004258", "n00021939")


MODELS_FILE = Path(__file__).with_name("smoke_models.json")


def register_models() -> list[str]:
    """Add the smoke profile's tiny random-weight models (``smoke_models.json``) to glocal's
    model registry; returns their names. Calling it again changes nothing."""
    from glocal.features import read_model_configs, register_model

    return [register_model(config).name for config in read_model_configs(MODELS_FILE)]


def _version() -> str:
    """A digest of this file: a changed generator writes a new world."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


@dataclass(frozen=True)
class SmokeWorld:
    """Where the generated datasets are (see the module docstring for their layouts)."""

    root: Path

    @property
    def things_images(self) -> Path:
        """The THINGS image folder (one folder per concept, named by uniqueID)."""
        return self.root / "things" / "object_images"

    @property
    def imagenet(self) -> Path:
        """The ImageNet root (``meta.bin``, ``train/``, ``val/``)."""
        return self.root / "imagenet"

    @property
    def breeds(self) -> Path:
        """The folder with the three BREEDS hierarchy files."""
        return self.root / "breeds"

    @property
    def partitions(self) -> Path:
        """SUN397's ``Partitions.zip``."""
        return self.root / "sun397" / "Partitions.zip"

    def similarity(self, family: str) -> Path:
        """The folder of a human similarity set family (multi-arrangement, free-arrangement,
        peterson), laid out as the official gLocal readers read it."""
        if family not in SIMILARITY_IMAGES:
            raise GlocalError(f"the smoke world has no similarity set family {family!r}")
        return self.root / family

    def downstream(self, name: str) -> Path:
        """The root of a torchvision downstream dataset (cifar100-coarse shares cifar100's)."""
        folder = "cifar100" if name == "cifar100-coarse" else name
        if folder not in DOWNSTREAM:
            raise GlocalError(f"the smoke world has no downstream dataset {name!r}")
        return self.root / folder

    def checksums(self, name: str) -> dict[str, str]:
        """``{file: md5}`` of a dataset's generated files (empty when it has none)."""
        file = self.downstream(name) / "checksums.json"
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}


def smoke_world(root: str | os.PathLike | None = None) -> SmokeWorld:
    """The smoke world, generated on first use (locked and atomic), then read from disk."""
    base = Path(root) if root is not None else cache_dir() / "smoke-world"
    target = base / _version()
    done = target / "complete.json"
    if done.is_file():
        return SmokeWorld(target)
    with file_lock(target):
        if done.is_file():
            return SmokeWorld(target)
        base.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(dir=base, prefix=f".{target.name}."))
        try:
            counts = _generate(staging)
            (staging / "complete.json").write_text(
                json.dumps({"version": _version(), "seed": SEED, "images": counts}, indent=1),
                encoding="utf-8",
            )
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return SmokeWorld(target)


# --- generation --------------------------------------------------------------------------------


def _pixels(rng: np.random.Generator, colour: np.ndarray, noise: float = 0.25) -> np.ndarray:
    """A SIZE x SIZE RGB image: a 4 x 4 colour pattern, upsampled, plus pixel noise."""
    pattern = np.clip(colour.reshape(4, 4, 3) + noise * rng.normal(size=(4, 4, 3)), 0, 1)
    image = np.kron(pattern, np.ones((SIZE // 4, SIZE // 4, 1)))
    image = np.clip(image + 0.05 * rng.normal(size=image.shape), 0, 1)
    return (255 * image).astype(np.uint8)


def _save(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.fromarray(pixels).save(path, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))


def _colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """One random 4 x 4 x 3 colour pattern (in [0, 1]) per class."""
    return rng.uniform(0.1, 0.9, size=(n, 48))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _generate(root: Path) -> dict[str, int]:
    rng = np.random.default_rng(SEED)
    counts = {"things": _things(root / "things" / "object_images", rng)}
    counts["imagenet"] = _imagenet(root / "imagenet", root / "breeds", rng)
    counts["cifar10"] = _cifar(root / "cifar10", rng, hundred=False)
    counts["cifar100"] = _cifar(root / "cifar100", rng, hundred=True)
    counts["dtd"] = _dtd(root / "dtd", rng)
    counts["flowers102"] = _flowers(root / "flowers102", rng)
    counts["sun397"] = _sun397(root / "sun397", rng)
    counts["multi-arrangement"] = _multi_arrangement(root / "multi-arrangement", rng)
    counts["free-arrangement"] = _free_arrangement(root / "free-arrangement", rng)
    counts["peterson"] = _peterson(root / "peterson", rng)
    return counts


def _things(folder: Path, rng: np.random.Generator) -> int:
    """One image per THINGS concept; its colours are a fixed projection of the concept's VICE
    embedding, so that concepts people find similar look similar."""
    from glocal import things

    ids = [str(u) for u in things.concepts()["uniqueID"]]
    vice = things.human_embedding().astype(np.float64)
    projection = rng.normal(size=(vice.shape[1], 48)) / np.sqrt(vice.shape[1])
    z = vice @ projection
    colours = 1.0 / (1.0 + np.exp(-(z - z.mean(0)) / (z.std(0) + 1e-9)))
    for i, unique in enumerate(ids):
        _save(folder / unique / f"{unique}_01b.jpg", _pixels(rng, colours[i], noise=0.1))
    return len(ids)


def _imagenet(folder: Path, breeds: Path, rng: np.random.Generator) -> int:
    """ImageNet as torchvision leaves it after unpacking, and BREEDS files over its classes."""
    import torch

    from glocal.data.datasets import BREEDS_ROOT, IMAGENET30_CLASSES

    n_classes = 2 * N_LEVEL4 * N_LEAVES
    wnids = [f"n{10000000 + i:08d}" for i in range(n_classes)]
    names = [
        (IMAGENET30_CLASSES[i],) if i < len(IMAGENET30_CLASSES) else (f"smoke class {i}",)
        for i in range(n_classes)
    ]
    colours = _colours(rng, n_classes)
    val_wnids = []
    count = 0
    for c, wnid in enumerate(wnids):
        for j in range(COUNTS["imagenet"]["train"]):
            _save(folder / "train" / wnid / f"{wnid}_{j}.JPEG", _pixels(rng, colours[c]))
            count += 1
        for _ in range(COUNTS["imagenet"]["val"]):
            val_wnids.append(wnid)
    order = rng.permutation(len(val_wnids))
    for k, v in enumerate(order):  # validation files are numbered in shuffled class order
        wnid = val_wnids[v]
        c = wnids.index(wnid)
        _save(folder / "val" / wnid / f"ILSVRC2012_val_{k + 1:08d}.JPEG", _pixels(rng, colours[c]))
        count += 1
    torch.save(({w: n for w, n in zip(wnids, names, strict=True)},
                [val_wnids[v] for v in order]), folder / "meta.bin")  # fmt: skip

    # BREEDS: root -> living thing / artifact -> one node each -> one level-3 superclass each
    # -> three level-4 superclasses each -> two level-5 superclasses each -> four ImageNet
    # classes each
    breeds.mkdir(parents=True, exist_ok=True)
    edges, node_names, leaf = [], {BREEDS_ROOT: "entity"}, 0
    for a in range(2):
        n1 = LEVEL1[a]
        n2, n3 = (f"n0{level}00000{a}" for level in (2, 3))
        node_names.update({n1: f"smoke group {a}", n2: f"smoke kind {a}", n3: f"smoke entity {a}"})
        edges += [(BREEDS_ROOT, n1), (n1, n2), (n2, n3)]
        for b in range(N_LEVEL4):
            n4 = f"n040000{a}{b}"
            node_names[n4] = f"smoke family {a}.{b}"
            edges.append((n3, n4))
            for c in range(N_LEVEL5):
                n5 = f"n05000{a}{b}{c}"
                node_names[n5] = f"smoke genus {a}.{b}.{c}"
                edges.append((n4, n5))
                for _ in range(N_LEAVES // N_LEVEL5):
                    edges.append((n5, wnids[leaf]))
                    leaf += 1
    (breeds / "class_hierarchy.txt").write_text("".join(f"{p} {c}\n" for p, c in edges))
    (breeds / "node_names.txt").write_text("".join(f"{w}\t{n}\n" for w, n in node_names.items()))
    info = [[i, w, ", ".join(n)] for i, (w, n) in enumerate(zip(wnids, names, strict=True))]
    (breeds / "dataset_class_info.json").write_text(json.dumps(info))
    return count


def _cifar(folder: Path, rng: np.random.Generator, hundred: bool) -> int:
    """CIFAR-10 (five training batches and a test batch) or CIFAR-100 (train, test, meta)."""
    base = folder / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    base.mkdir(parents=True, exist_ok=True)
    n_fine = N_CLASSES["cifar100"] if hundred else N_CLASSES["cifar10"]
    n_coarse = n_fine // 5
    coarse_of = np.arange(n_fine) % n_coarse  # as CIFAR-100: five fine classes per superclass
    colours = _colours(rng, n_fine)
    key = "cifar100" if hundred else "cifar10"

    def batch(split: str) -> dict[str, Any]:
        labels = np.repeat(np.arange(n_fine), COUNTS[key][split])
        labels = labels[rng.permutation(len(labels))]
        data = np.stack([_pixels(rng, colours[c]).transpose(2, 0, 1).reshape(-1) for c in labels])
        entry: dict[str, Any] = {"data": data.astype(np.uint8)}
        if hundred:
            entry.update(fine_labels=labels.tolist(), coarse_labels=coarse_of[labels].tolist())
        else:
            entry["labels"] = labels.tolist()
        return entry

    def dump(name: str, value: Any) -> None:
        with open(base / name, "wb") as fh:
            pickle.dump(value, fh)

    train, test = batch("train"), batch("test")
    if hundred:
        dump("train", train)
        dump("test", test)
        dump("meta", {"fine_label_names": [f"fine_{i}" for i in range(n_fine)],
                      "coarse_label_names": [f"coarse_{i}" for i in range(n_coarse)]})  # fmt: skip
        files = ["train", "test", "meta"]
    else:
        parts = np.array_split(np.arange(len(train["labels"])), 5)
        for k, rows in enumerate(parts, 1):
            dump(f"data_batch_{k}", {"data": train["data"][rows],
                                     "labels": [train["labels"][r] for r in rows]})  # fmt: skip
        dump("test_batch", test)
        dump("batches.meta", {"label_names": [f"class_{i}" for i in range(n_fine)]})
        files = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"]
    _write_checksums(folder, {f: _md5(base / f) for f in files})
    return len(train["data"]) + len(test["data"])


def _write_checksums(folder: Path, md5: dict[str, str]) -> None:
    (folder / "checksums.json").write_text(json.dumps(md5, indent=1, sort_keys=True))


def _dtd(folder: Path, rng: np.random.Generator) -> int:
    """DTD: dtd/dtd/images/CLASS/*.jpg and dtd/dtd/labels/{train,val,test}1.txt."""
    data = folder / "dtd" / "dtd"
    classes = [f"texture{i}" for i in range(N_CLASSES["dtd"])]
    colours = _colours(rng, len(classes))
    lines: dict[str, list[str]] = {split: [] for split in COUNTS["dtd"]}
    k = 0
    for c, cls in enumerate(classes):
        for split, n in COUNTS["dtd"].items():
            for _ in range(n):
                name = f"{cls}_{k:04d}.jpg"
                _save(data / "images" / cls / name, _pixels(rng, colours[c]))
                lines[split].append(f"{cls}/{name}")
                k += 1
    (data / "labels").mkdir(parents=True, exist_ok=True)
    for split, entries in lines.items():
        (data / "labels" / f"{split}1.txt").write_text("".join(e + "\n" for e in entries))
    return k


def _flowers(folder: Path, rng: np.random.Generator) -> int:
    """Flowers102: flowers-102/jpg/image_NNNNN.jpg, imagelabels.mat and setid.mat."""
    from scipy.io import savemat

    base = folder / "flowers-102"
    colours = _colours(rng, N_CLASSES["flowers102"])
    labels: list[int] = []
    splits: dict[str, list[int]] = {"trnid": [], "valid": [], "tstid": []}
    key = {"train": "trnid", "val": "valid", "test": "tstid"}
    image_id = 0
    for c in range(N_CLASSES["flowers102"]):
        for split, n in COUNTS["flowers102"].items():
            for _ in range(n):
                image_id += 1
                _save(base / "jpg" / f"image_{image_id:05d}.jpg", _pixels(rng, colours[c]))
                labels.append(c + 1)  # 1-based, as in the release
                splits[key[split]].append(image_id)
    savemat(base / "imagelabels.mat", {"labels": np.array(labels)})
    savemat(base / "setid.mat", {k: np.array(v) for k, v in splits.items()})
    _write_checksums(folder, {f: _md5(base / f) for f in ("imagelabels.mat", "setid.mat")})
    return image_id


def _sun397(folder: Path, rng: np.random.Generator) -> int:
    """SUN397: SUN397/ClassName.txt, SUN397/L/NAME/sun_*.jpg and Partitions.zip."""
    data = folder / "SUN397"
    classes = [f"/{name[0]}/{name}" for name in ("abbey", "bakery", "canyon", "dock", "forest",
                                                  "garage")][: N_CLASSES["sun397"]]  # fmt: skip
    colours = _colours(rng, len(classes))
    data.mkdir(parents=True, exist_ok=True)
    (data / "ClassName.txt").write_text("".join(c + "\n" for c in classes))
    lines: dict[str, list[str]] = {"train": [], "test": []}
    k = 0
    for c, cls in enumerate(classes):
        for split, n in COUNTS["sun397"].items():
            for _ in range(n):
                rel = f"{cls}/sun_{k:06d}.jpg"
                _save(data / rel.lstrip("/"), _pixels(rng, colours[c]))
                lines[split].append(rel)
                k += 1
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("Training_01.txt", "".join(e + "\n" for e in lines["train"]))
        zf.writestr("Testing_01.txt", "".join(e + "\n" for e in lines["test"]))
    (folder / "Partitions.zip").write_bytes(buffer.getvalue())
    return k


# --- the human similarity sets -------------------------------------------------------------------


def _hidden_points(rng: np.random.Generator, n: int) -> np.ndarray:
    """n points whose colours are the images' and whose distances people judge."""
    return rng.uniform(0.1, 0.9, size=(n, 48))


def _judged_distances(rng: np.random.Generator, points: np.ndarray) -> np.ndarray:
    """One noisy distance matrix per participant, (N_PARTICIPANTS, n, n), symmetric, 0 diagonal."""
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    out = []
    for _ in range(N_PARTICIPANTS):
        noise = 0.3 * rng.normal(size=distances.shape)
        judged = np.abs(distances + (noise + noise.T) / 2)
        np.fill_diagonal(judged, 0.0)
        out.append(judged)
    return np.stack(out)


def _multi_arrangement(folder: Path, rng: np.random.Generator) -> int:
    """images/image_NNN.jpg and sim_judgements/judgments_general.mat ('judgments': one RDM per
    participant)."""
    from scipy.io import savemat

    n = SIMILARITY_IMAGES["multi-arrangement"]
    points = _hidden_points(rng, n)
    for i in range(n):
        _save(folder / "images" / f"image_{i + 1:03d}.jpg", _pixels(rng, points[i]))
    (folder / "sim_judgements").mkdir(parents=True)
    savemat(folder / "sim_judgements" / "judgments_general.mat",
            {"judgments": _judged_distances(rng, points)})  # fmt: skip
    return n


def _free_arrangement(folder: Path, rng: np.random.Generator) -> int:
    """images/set1|set2/NNNN.jpg, images/stimulus_category_labels.txt and
    sim_judgements/BEHAVIOR.mat (BEHAVIOR.setN.pairwisedistances: participants x pairs)."""
    from scipy.io import savemat

    n = SIMILARITY_IMAGES["free-arrangement"]
    behaviour, labels, number = {}, ["category,stimulus"], 0
    for stimulus_set in ("set1", "set2"):
        points = _hidden_points(rng, n)
        for i in range(n):
            number += 1
            _save(folder / "images" / stimulus_set / f"{number:04d}.jpg", _pixels(rng, points[i]))
            labels.append(f"{stimulus_set}-category{i % 3},{number}")
        rows, cols = np.triu_indices(n, 1)
        behaviour[stimulus_set] = {
            "pairwisedistances": _judged_distances(rng, points)[:, rows, cols]
        }
    (folder / "images" / "stimulus_category_labels.txt").write_text("\n".join(labels) + "\n")
    (folder / "sim_judgements").mkdir(parents=True)
    savemat(folder / "sim_judgements" / "BEHAVIOR.mat", {"BEHAVIOR": behaviour})
    return number


def _peterson(folder: Path, rng: np.random.Generator) -> int:
    """CATEGORY/images/imNN.(png|jpg) and CATEGORY/sim_judgements/: a mean similarity matrix
    ('*sim*.mat'), or for fruits the pickle of each pair's ratings (0-10)."""
    from scipy.io import savemat

    from glocal.data.human import PETERSON_CATEGORIES

    n = SIMILARITY_IMAGES["peterson"]
    for c, category in enumerate(PETERSON_CATEGORIES):
        points = _hidden_points(rng, n)
        suffix = ".png" if c % 2 == 0 else ".jpg"
        for i in range(n):
            _save(folder / category / "images" / f"im{i + 1:02d}{suffix}", _pixels(rng, points[i]))
        ratings = np.clip(10.0 - 4.0 * _judged_distances(rng, points), 0.0, 10.0)
        judgements = folder / category / "sim_judgements"
        judgements.mkdir(parents=True)
        if category == "fruits":
            pairs = {
                f"im{i + 1:02d}{suffix},im{j + 1:02d}{suffix}": [float(r) for r in ratings[:, i, j]]
                for i, j in zip(*np.triu_indices(n, 1), strict=True)
            }
            with open(judgements / "fruits_mturkRESULTS_all.pickle", "wb") as fh:
                pickle.dump(pairs, fh)
        else:
            savemat(judgements / f"{category}_simMatrix.mat", {"simMatrix": ratings.mean(axis=0)})
    return n * len(PETERSON_CATEGORIES)
