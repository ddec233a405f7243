"""The downstream datasets through the real torchvision loaders, on the generated smoke world:
CIFAR-10/100 (and its superclasses), DTD, Flowers102, SUN397's partitions, ImageNet and the
tasks built from it (a class-balanced subset, ImageNet-30, BREEDS), and the BREEDS hierarchy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from companion.pipeline.smoke import COUNTS, LEVEL1, N_CLASSES, SmokeWorld, smoke_world
from glocal.data.datasets import (
    BREEDS_FILES,
    IMAGENET30_CLASSES,
    BreedsHierarchy,
    breeds_task,
    downstream_dataset,
)
from glocal.errors import DataUnavailableError, GlocalError
from glocal.features import DatasetSource, downstream_source


@pytest.fixture(scope="module")
def world(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SmokeWorld:
    return smoke_world(tmp_path_factory.mktemp("world"))


def _load(world: SmokeWorld, name: str, split: str, **options):
    return downstream_dataset(
        name, split, root=world.downstream(name), download=False,
        checksums=world.checksums(name), partitions=world.partitions, **options,
    )  # fmt: skip


def test_the_world_is_generated_once_and_is_deterministic(world: SmokeWorld, tmp_path: Path):
    record = json.loads((world.root / "complete.json").read_text())
    assert record["images"]["things"] == 1854
    again = smoke_world(world.root.parent)
    assert again.root == world.root  # read from disk, not regenerated
    image = next(world.things_images.glob("*/*.jpg"))
    other = smoke_world(tmp_path)  # a fresh generation gives the same bytes
    assert (other.root / image.relative_to(world.root)).read_bytes() == image.read_bytes()
    assert other.checksums("cifar10") == world.checksums("cifar10")


@pytest.mark.parametrize(
    "name,classes",
    [("cifar10", 10), ("cifar100", N_CLASSES["cifar100"]), ("cifar100-coarse", 8), ("dtd", 6),
     ("flowers102", 5), ("sun397", 6)],
)  # fmt: skip
def test_real_loaders_read_the_generated_datasets(world: SmokeWorld, name: str, classes: int):
    for split in ("train", "test"):
        data = _load(world, name, split)
        image, label = data[0]
        assert image.size == (32, 32) and 0 <= label < classes
        targets = getattr(data, "targets", None) or getattr(data, "_labels", None)
        assert len(set(targets)) == classes


def test_torchvision_checks_md5_unless_the_copy_names_its_own(world: SmokeWorld):
    with pytest.raises(DataUnavailableError, match="cifar10"):
        downstream_dataset("cifar10", "train", root=world.downstream("cifar10"), download=False)
    with pytest.raises(DataUnavailableError, match="flowers102"):
        downstream_dataset("flowers102", "test", root=world.downstream("flowers102"),
                           download=False)  # fmt: skip


def test_sun397_reads_the_official_partition_file(world: SmokeWorld):
    train = _load(world, "sun397", "train")
    assert len(train) == N_CLASSES["sun397"] * COUNTS["sun397"]["train"]
    assert train.ids[0].startswith("a/abbey/sun_") and train.classes[0] == "abbey"
    source = DatasetSource(train, name="sun397", split="train")
    assert source.ids() == train.ids and source.fingerprint() == DatasetSource(
        _load(world, "sun397", "train"), name="sun397", split="train").fingerprint()  # fmt: skip


def test_imagenet_subsets_imagenet30_and_breeds(world: SmokeWorld):
    options = {"root": world.imagenet, "hierarchy": world.breeds}
    val = downstream_dataset("imagenet", "val", **options)
    assert len(val) == 48 * COUNTS["imagenet"]["val"] and val.ids[0].startswith("val/n")
    balanced = downstream_dataset("imagenet", "train", per_class=5, seed=0, **options)
    assert np.bincount(balanced.targets).tolist() == [5] * 48
    assert downstream_dataset("imagenet", "train", per_class=5, seed=0, **options).ids == (
        balanced.ids)  # fmt: skip
    i30 = downstream_dataset("imagenet30", "test", **options)
    assert i30.classes == list(IMAGENET30_CLASSES) and sorted(set(i30.targets)) == list(range(30))
    for name, n_super in (("breeds-entity13", 2), ("breeds-entity30", 6),
                          ("breeds-living17", 6), ("breeds-nonliving26", 6)):  # fmt: skip
        train = downstream_dataset(name, "train", **options)
        test = downstream_dataset(name, "test", **options)
        source_val = downstream_dataset(name, "source-val", **options)
        assert sorted(set(train.targets)) == sorted(set(test.targets)) == list(range(n_super))
        # the test images come from other ImageNet classes (subclasses) than the training ones
        assert not {i.split("/")[1] for i in train.ids} & {i.split("/")[1] for i in test.ids}
        # source-val: validation images of the training subclasses (the in-distribution set)
        assert {i.split("/")[1] for i in source_val.ids} == {i.split("/")[1] for i in train.ids}
        assert all(i.startswith("val/") for i in source_val.ids) and source_val.targets
    source = downstream_source("imagenet", "train", store_split="train-balanced", per_class=2,
                               **options)  # fmt: skip
    assert source.split == "train-balanced" and len(source) == 96
    assert "per_class=2" in source.describe()


def test_breeds_tasks_follow_the_hierarchy(world: SmokeWorld, tmp_path: Path):
    task = breeds_task("entity30", world.breeds)
    assert len(task.superclasses) == 6
    assert all(len(s) == 4 for s in task.source) and all(len(t) == 4 for t in task.target)
    labels = {**task.labels("source"), **task.labels("target")}
    assert len(labels) == 48 and sorted(set(labels.values())) == list(range(6))
    # the same hierarchy gives the same split every time (the BREEDS authors' seed)
    assert breeds_task("entity30", world.breeds) == task
    entity13 = BreedsHierarchy(world.breeds).task("entity13", level=3, n_subclasses=20)
    assert [len(s) for s in entity13.source] == [10, 10]
    with pytest.raises(GlocalError, match="no node at level 3"):
        BreedsHierarchy(world.breeds).task("big", level=3, n_subclasses=30)
    with pytest.raises(GlocalError, match="missing"):
        BreedsHierarchy(tmp_path)
    # Living-17 / Nonliving-26: the level-5 superclasses below "living thing" / "artifact"
    living = breeds_task("living17", world.breeds)
    hierarchy = BreedsHierarchy(world.breeds)
    assert len(living.superclasses) == 6 and set(living.superclasses) <= hierarchy.below(LEVEL1[0])
    assert all(len(s) == len(t) == 2 for s, t in zip(living.source, living.target, strict=True))
    nonliving = breeds_task("nonliving26", world.breeds)
    assert set(nonliving.superclasses) <= hierarchy.below(LEVEL1[1])
    assert not set(nonliving.superclasses) & set(living.superclasses)
    with pytest.raises(GlocalError, match="unknown BREEDS task"):
        breeds_task("living99", world.breeds)
    assert set(BREEDS_FILES.values()) == {p.name for p in world.breeds.iterdir()}


def test_breeds_registry_files_are_pinned():
    from glocal import data

    entries = {e.name: e for e in data.registry()}
    for name in BREEDS_FILES:
        assert entries[name].checksum == "pinned" and entries[name].served.url.startswith(
            "https://raw.githubusercontent.com/MadryLab/BREEDS-Benchmarks/")  # fmt: skip


def _write_hierarchy(folder: Path, seed: int) -> dict[str, set[str]]:
    """BREEDS files of a random DAG (nodes with several parents, a branch without ImageNet
    classes, a stray edge); returns its children per node."""
    from glocal.data.datasets import BREEDS_ROOT

    rng = np.random.default_rng(seed)
    inner = [BREEDS_ROOT] + [f"n1{i:07d}" for i in range(30)]
    leaves = [f"n2{i:07d}" for i in range(80)]
    edges = {(inner[p], node) for i, node in enumerate(inner[1:], 1)
             for p in rng.choice(i, size=min(i, 2), replace=False)}  # fmt: skip
    edges |= {(inner[p], leaf) for leaf in leaves for p in rng.choice(31, size=2, replace=False)}
    edges |= {(inner[3], "n9000000"), ("n9000001", "n9000002")}  # lead to no ImageNet class
    folder.mkdir()
    (folder / "class_hierarchy.txt").write_text("".join(f"{p} {c}\n" for p, c in sorted(edges)))
    (folder / "node_names.txt").write_text("".join(f"{w}\tname {w}\n" for w in inner))
    info = [[i, w, f"class {w}"] for i, w in enumerate(leaves)]
    (folder / "dataset_class_info.json").write_text(json.dumps(info))
    children: dict[str, set[str]] = {}
    for p, c in edges:
        children.setdefault(p, set()).add(c)
    return children


def test_breeds_hierarchy_matches_a_recursion_by_hand(tmp_path: Path):
    """Levels (longest distance from the root), leaves and subtrees of a random DAG against
    recursions over its edges written out here."""
    from functools import cache

    from glocal.data.datasets import BREEDS_ROOT

    children = _write_hierarchy(tmp_path / "h", seed=5)
    hierarchy = BreedsHierarchy(tmp_path / "h")
    classes = set(hierarchy.leaf_index)

    @cache
    def leads_to_a_class(node: str) -> bool:
        return node in classes or any(leads_to_a_class(c) for c in children.get(node, ()))

    @cache
    def subtree(node: str) -> frozenset[str]:
        kept = [c for c in children.get(node, ()) if leads_to_a_class(c)]
        return frozenset({node}.union(*(subtree(c) for c in kept)))

    @cache
    def depth(node: str) -> int:  # longest distance from the root, over kept parents only
        if node == BREEDS_ROOT:
            return 0
        parents = [p for p, cs in children.items() if node in cs and p in subtree(BREEDS_ROOT)]
        return max(depth(p) for p in parents) + 1

    assert set(hierarchy.level) == subtree(BREEDS_ROOT)
    assert "n9000000" not in hierarchy.level  # a branch without classes is dropped
    assert hierarchy.level == {n: depth(n) for n in subtree(BREEDS_ROOT)}
    shortest = {BREEDS_ROOT: 0}
    for _ in hierarchy.level:  # Bellman-Ford with unit steps: the shortest distances
        for p in list(shortest):
            for c in subtree(p) & set(children.get(p, ())):
                shortest[c] = min(shortest.get(c, len(children)), shortest[p] + 1)
    assert any(hierarchy.level[n] > shortest[n] for n in hierarchy.level)  # longest != shortest
    for node in hierarchy.level:
        assert hierarchy.below(node) == subtree(node)
        assert hierarchy.leaves(node) == sorted(subtree(node) & classes)
