"""Extraction end to end: sources (THINGS folder, folders, lists, torchvision), determinism, CLI."""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _features import TINY_CLIP, TINY_TIMM, make_image_folder, one_torch_thread, random_image

from glocal.errors import DataUnavailableError, GlocalError
from glocal.features import (
    extract_features,
    image_folder,
    image_list,
    load_model,
    resolve_source,
    things_images,
    torchvision_dataset,
)

QUIET = {"verbose": 0, "num_workers": 0}


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=2, per_class=5, seed=1)


@pytest.fixture(scope="module")
def tiny_clip():
    return load_model(TINY_CLIP, pretrained=False, device="cpu", seed=0)


def test_image_sources(folder: Path, tmp_path: Path) -> None:
    source = image_folder(folder)
    assert len(source) == 10 and source.classes == ["class_0", "class_1"]
    image, label = source.get(7)
    assert image.mode == "RGB" and label == 1
    assert source.name.startswith(folder.name + "-")
    flat = image_folder(folder / "class_1")
    assert len(flat) == 5 and flat.get(0)[1] == -1
    listing = tmp_path / "list.txt"
    listing.write_text(
        "# two images\n"
        + "\n".join(str(p) for p in sorted((folder / "class_0").glob("*.png"))[:2])
        + "\n"
    )
    assert len(image_list(listing)) == 2
    assert len(resolve_source(listing)) == 2 and len(resolve_source(str(folder))) == 10
    with pytest.raises(GlocalError, match="not understood"):
        resolve_source(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GlocalError, match="no images"):
        image_folder(tmp_path / "empty")
    (folder / "class_1" / "broken.png").write_bytes(b"not an image")
    try:
        with pytest.raises(GlocalError, match="broken.png could not be read"):
            image_folder(folder).get(5)
    finally:
        (folder / "class_1" / "broken.png").unlink()


def test_things_style_folder(data_dir: Path, tmp_path: Path) -> None:
    from glocal import things

    unique_ids = things.concepts()["uniqueID"].tolist()
    rng = np.random.default_rng(0)
    pixels = random_image(rng, (8, 8))
    for uid in unique_ids:
        (tmp_path / "object_images" / uid).mkdir(parents=True)
        pixels.save(tmp_path / "object_images" / uid / f"{uid}_01b.png")
    (tmp_path / "object_images" / "bow1" / "bow1_02s.png").write_bytes(b"ignored: not first")
    source = things_images(tmp_path)
    assert len(source) == 1854 and source.ids()[:2] == ["aardvark", "abacus"]
    store = extract_features(
        TINY_TIMM,
        f"things:{tmp_path}",
        pretrained=False,
        cache_dir=tmp_path / "cache",
        batch_size=256,
        **QUIET,
    )
    assert store.path.parts[-3:] == ("norm", "things", "reference.h5")
    assert store.features().shape == (1854, 64)
    np.testing.assert_array_equal(store.labels(), np.arange(1854))
    assert store.ids() == unique_ids


def test_extraction_is_deterministic(tiny_clip, folder: Path, tmp_path: Path) -> None:
    first = extract_features(tiny_clip, image_folder(folder), cache_dir=tmp_path / "a", **QUIET)
    assert first.features().shape == (10, 32)
    # same batches: bitwise equal, whether images are loaded in worker processes or not
    workers = extract_features(
        tiny_clip, image_folder(folder), cache_dir=tmp_path / "b", num_workers=2, verbose=0
    )
    np.testing.assert_array_equal(first.features(), workers.features())
    fresh = load_model(TINY_CLIP, pretrained=False, device="cpu", seed=0)
    again = extract_features(fresh, image_folder(folder), cache_dir=tmp_path / "c", **QUIET)
    np.testing.assert_array_equal(first.features(), again.features())
    assert first.metadata["preprocessing"] == again.metadata["preprocessing"]
    # other batch sizes change the summation order of the CPU kernels, not the features
    small = extract_features(
        tiny_clip, image_folder(folder), cache_dir=tmp_path / "d", batch_size=3, **QUIET
    )
    np.testing.assert_allclose(first.features(), small.features(), rtol=1e-5, atol=1e-5)


def test_torchvision_dataset_source(tiny_clip, tmp_path: Path) -> None:
    source = torchvision_dataset("FakeData", size=6, image_size=(3, 20, 20), num_classes=3)
    store = extract_features(tiny_clip, source, cache_dir=tmp_path, batch_size=4, **QUIET)
    assert store.path.parts[-2:] == ("torchvision-FakeData", "all.h5")
    assert store.features().shape == (6, 32)
    assert set(store.labels().tolist()) <= {0, 1, 2}
    assert "FakeData" in store.metadata["source"]
    assert len(resolve_source("torchvision:FakeData")) == 1000
    with pytest.raises(GlocalError, match="no dataset 'Nope'"):
        resolve_source("torchvision:Nope")
    with pytest.raises(GlocalError, match="split must be 'train' or 'test'"):
        torchvision_dataset("MNIST", split="val", root=tmp_path)
    with pytest.raises(GlocalError, match="download=True"):
        torchvision_dataset("MNIST", split="test", root=tmp_path)


def test_image_model_on_text_is_an_error(tiny_clip) -> None:
    from glocal.features import TextSource

    with pytest.raises(GlocalError, match="takes image input but source 'texts' holds texts"):
        extract_features(tiny_clip, TextSource(["cat", "dog"]), **QUIET)


def _cli(argv: list[str]) -> int:
    """``glocal.cli.main`` when every sub-command module exists, else the same handling locally."""
    from glocal import cli

    try:
        return cli.main(argv)
    except ModuleNotFoundError as err:  # another developer's sub-command has not landed yet
        if "glocal.commands" not in str(err):
            raise
    parser = argparse.ArgumentParser(prog="glocal")
    importlib.import_module("glocal.commands.extract").register(
        parser.add_subparsers(dest="command")
    )
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GlocalError as err:
        print(f"glocal {args.command}: error: {err}", file=sys.stderr)
        return 2


def test_cli_extract(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configs = tmp_path / "models.json"
    configs.write_text(json.dumps({"models": [TINY_TIMM.to_dict()]}))
    argv = [
        "extract",
        "--model",
        "tiny-timm",
        "--source",
        str(folder),
        "--random-weights",
        "--model-config",
        str(configs),
        "--out",
        str(tmp_path / "feats.h5"),
        "--npy",
        str(tmp_path / "feats.npy"),
        "--workers",
        "0",
        "--quiet",
    ]
    assert _cli(argv) == 0
    assert str(tmp_path / "feats.h5") in capsys.readouterr().out
    assert np.load(tmp_path / "feats.npy").shape == (10, 64)
    assert _cli(["extract", "--list-models"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[:2] == ["--model", "--module"]
    from glocal.features import get_config, list_models

    pairs = [tuple(line.split()[:2]) for line in listed[1:]]
    assert len(pairs) == len(list_models()) and ("clip_ViT-L/14", "visual") in pairs
    for name, module in pairs:  # every listed name is one --model accepts, with its module
        assert get_config(name, module).name == name
    assert ("all-MiniLM-L6-v2", "sentence_embedding") in pairs
    assert _cli(["extract", "--model", "resnet1", "--source", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("glocal extract: error: unknown model 'resnet1'") and "\n" not in err


def test_cli_without_internet_names_the_weights(
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(-2, "network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    argv = [
        "extract",
        "--model",
        "alexnet",
        "--source",
        str(folder),
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    assert _cli(argv) == 2
    err = capsys.readouterr().err
    assert "'IMAGENET1K_V1' of torchvision model 'alexnet'" in err and "--random-weights" in err
    with pytest.raises(DataUnavailableError):
        load_model("alexnet", device="cpu")


def _no_model(*args: object, **kwargs: object) -> None:
    raise AssertionError("the model must not load when the output cannot be written")


def test_cli_refuses_output_names_of_the_wrong_format(
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from glocal.features import extract as extract_module

    monkeypatch.setattr(extract_module, "load_model", _no_model)
    base = ["extract", "--model", "tiny-timm", "--source", str(folder), "--quiet"]
    for flag, name, expected in (
        ("--npy", "x.txt", "must end in .npy"),
        ("--npy", "x.h5", "must end in .npy"),
        ("--out", "out.npy", "ending in .h5 (or .hdf5) or a folder"),
        ("--out", "out.csv", "ending in .h5 (or .hdf5) or a folder"),
    ):
        assert _cli([*base, flag, str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"glocal extract: error: {flag} {tmp_path / name}"), err
        assert expected in err and "\n" not in err
    assert _cli([*base, "--out", str(tmp_path / "out.npy")]) == 2
    assert "use --npy " in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_cli_unwritable_outputs_fail_before_the_work(
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from glocal.features import extract as extract_module

    configs = tmp_path / "models.json"
    configs.write_text(json.dumps({"models": [TINY_TIMM.to_dict()]}))
    blocker = tmp_path / "blocker"  # a file where a folder would have to be (fails even as root)
    blocker.write_text("in the way")
    monkeypatch.setattr(extract_module, "load_model", _no_model)
    base = ["extract", "--model", "tiny-timm", "--model-config", str(configs), "--source",
            str(folder), "--random-weights", "--workers", "0", "--quiet"]  # fmt: skip
    cases = (
        (["--out", str(blocker / "feats.h5")], "--out"),
        (["--out", str(blocker / "stores")], "--out folder"),
        (["--out", str(tmp_path / "f.h5"), "--npy", str(blocker / "f.npy")], "--npy"),
    )
    for extra, flag in cases:
        assert _cli([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert f"error: {flag} " in err and "blocker is a file, not a folder" in err, err
        assert "\n" not in err
    # the default store location: a cache that cannot be written
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(blocker / "cache"))
    assert _cli(base) == 2
    err = capsys.readouterr().err.strip()
    assert "feature store (in the cache; set GLOCAL_CACHE_DIR" in err and "\n" not in err
    assert not (tmp_path / "f.h5").exists()


def test_downstream_dataset_source_keeps_the_dataset_ids(tmp_path: Path) -> None:
    from glocal.data.datasets import FileListDataset
    from glocal.features import DatasetSource, resolve_source

    folder = make_image_folder(tmp_path / "imgs", classes=2, per_class=2, seed=4)
    files = sorted(folder.rglob("*.png"))
    ids = [f.relative_to(folder).as_posix() for f in files]
    data = FileListDataset(files, [0, 0, 1, 1], ["a", "b"], ids=ids, description="four images")
    source = DatasetSource(data, name="four", split="train")
    assert source.ids() == ids and source.describe().startswith("four images")
    # the same files elsewhere give the same item ids, so a store of them still matches
    moved = FileListDataset([tmp_path / "x" / i for i in ids], [0, 0, 1, 1], ["a", "b"], ids=ids,
                            description="four images")  # fmt: skip
    assert DatasetSource(moved, name="four", split="train").fingerprint() == source.fingerprint()
    with pytest.raises(GlocalError, match="dataset:NAME:SPLIT"):
        resolve_source("dataset:cifar10")
    with pytest.raises(DataUnavailableError, match="ImageNet"):
        resolve_source("dataset:imagenet:val", root=tmp_path / "no-imagenet")
