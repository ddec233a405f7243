"""Model registry: official transforms covered, feature dims right, random-weight models, errors."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from _features import TINY_TIMM, one_torch_thread, random_image

from glocal.errors import DataUnavailableError, GlocalError
from glocal.features import (
    ModelConfig,
    get_config,
    list_models,
    load_model,
    read_model_configs,
    register_model,
)
from glocal.features.models import find_by_transform_path

IMAGE_AND_CLIP_TEXT = [c for c in list_models() if c.library != "text"]


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def test_every_released_transform_is_registered_with_its_dimension(data_dir: Path) -> None:
    from glocal import data

    released = data.released_transforms()
    assert len(released) == 12
    for model, module in released:
        config = get_config(model, module)
        assert config.official_transform and config.input == "image"
    checked = 0
    for npz in sorted((data_dir / "transforms").rglob("transform.npz")):
        config = find_by_transform_path(npz)
        assert config is not None, npz
        with np.load(npz) as files:
            assert config.dim == files["weights"].shape[0], config.key
        checked += 1
    assert checked == 9  # the three largest (resnet50, vgg16, alexnet) are not copied here


def test_every_release_path_names_a_config_whose_network_gives_its_dim(data_dir: Path) -> None:
    """From the data registry's own paths (not a list restated here) to the network: each
    released transform's path names a registered config, and that network, built on the meta
    device, outputs the config's dim. For the files too large for the mirror (resnet50,
    vgg16, alexnet) this is the only check that the official weights will fit the features."""
    from glocal import data

    entries = [e for e in data.registry() if e.name.startswith("transform/")]
    found = set()
    for entry in entries:
        config = find_by_transform_path(entry.served.path)
        assert config is not None, entry.served.path
        found.add((config.name, config.module))
        model = load_model(config, pretrained=False, device="meta")
        batch = torch.empty(2, 3, 224, 224, device="meta")
        assert tuple(model.encode(batch).shape) == (2, config.dim), config.key
    assert found == set(data.released_transforms())
    absent = {e.served.path for e in entries if not (data_dir / e.served.path).is_file()}
    assert absent  # files of the release that only this test covers


@pytest.mark.parametrize("config", IMAGE_AND_CLIP_TEXT, ids=lambda c: c.key)
def test_registered_dim_matches_the_network(config: ModelConfig) -> None:
    # Every registered network is built for real (random init, no download) on the meta device
    # and run through the same hook/reduction code as extraction: exact shapes, no memory or
    # compute. Instantiating the four ViT-L models with real weights takes ~15 s each on two
    # CPU cores; the representative real forwards are in the next test.
    model = load_model(config, pretrained=False, device="meta")
    batch = torch.empty(2, 3, 224, 224, device="meta") if config.input == "image" else ["a", "b c"]
    assert tuple(model.encode(batch).shape) == (2, config.dim)


@pytest.mark.parametrize("name", ["dino-vit-base-p16", "resnet18"])
def test_random_weight_forward_of_registered_models(name: str) -> None:
    # Real compute for one timm and one torchvision config of the registry (open_clip runs for
    # real on the tiny CLIP of test_extract.py; a registered CLIP takes ~15 s to build here).
    rng = np.random.default_rng(0)
    model = load_model(name, pretrained=False, device="cpu", seed=1)
    batch = model.preprocess(random_image(rng))[None]
    features = model.encode(batch)
    assert features.shape == (1, get_config(name).dim) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and features.abs().sum() > 0
    if name == "resnet18":
        assert torch.equal(
            features, load_model(name, pretrained=False, device="cpu", seed=1).encode(batch)
        )
        assert not torch.allclose(
            features, load_model(name, pretrained=False, device="cpu", seed=2).encode(batch)
        )


def test_default_module_and_lookup_errors() -> None:
    assert get_config("clip_ViT-L/14").module == "visual"
    assert get_config("clip_ViT-L/14", "text").input == "text"
    with pytest.raises(GlocalError, match="unknown model 'resnet1'"):
        get_config("resnet1")
    with pytest.raises(GlocalError, match="no module 'layer4'"):
        get_config("resnet18", "layer4")


def test_transform_paths_map_to_registered_models() -> None:
    official = find_by_transform_path("/x/transforms/clip_ViT-L/14/visual/transform.npz")
    assert official is not None and official.key == "clip_ViT-L/14/visual"
    fixed = find_by_transform_path("/c/transforms-d1860d3/dinov2-vit-base-p14/norm/transform.npz")
    assert fixed is not None and fixed.name == "dinov2-vit-base-p14"
    assert find_by_transform_path("/x/myresnet18/avgpool/transform.npz") is None


def test_user_configs_from_dict_and_file(tmp_path: Path) -> None:
    entry = {**TINY_TIMM.to_dict(), "name": "my-vit"}
    assert register_model(entry).key == "my-vit/norm"
    assert get_config("my-vit") == ModelConfig.from_dict(entry)
    with pytest.raises(GlocalError, match="already registered"):
        register_model({**entry, "dim": 65})
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": [{**entry, "name": "file-vit", "module": "blocks.0"}]}))
    (config,) = read_model_configs(path)
    assert config.module == "blocks.0"
    path.write_text(json.dumps({"models": [{**entry, "layer": "x"}]}))
    with pytest.raises(GlocalError, match=r"unknown key\(s\) \['layer'\]"):
        read_model_configs(path)
    with pytest.raises(GlocalError, match="take 'mean'"):
        ModelConfig.from_dict({**entry, "take": "mean"})


def test_wrong_take_or_dim_is_an_error() -> None:
    rng = np.random.default_rng(0)
    wrong_take = ModelConfig.from_dict({**TINY_TIMM.to_dict(), "take": "embedding"})
    model = load_model(wrong_take, pretrained=False, device="cpu")
    batch = model.preprocess(random_image(rng))[None]
    with pytest.raises(GlocalError, match=r"does not fit the module output of shape \(1, 5, 64\)"):
        model.encode(batch)
    wrong_dim = ModelConfig.from_dict({**TINY_TIMM.to_dict(), "dim": 768})
    with pytest.raises(
        GlocalError, match="gives 64 features per input but its config says dim=768"
    ):
        load_model(wrong_dim, pretrained=False, device="cpu").encode(batch)
    missing = ModelConfig.from_dict({**TINY_TIMM.to_dict(), "module": "blocks.9"})
    with pytest.raises(GlocalError, match="no module 'blocks.9'"):
        load_model(missing, pretrained=False, device="cpu")


def test_no_internet_names_the_timm_weights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # never download, even with internet
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # and an empty cache
    with pytest.raises(DataUnavailableError) as caught:
        load_model("dino-vit-base-p16", device="cpu")
    message = str(caught.value)
    assert "'dino'" in message and "'vit_base_patch16_224.dino'" in message
    assert "dino-vit-base-p16" in message and "pretrained=False" in message


def test_no_internet_names_the_torchvision_weights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(-2, "network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached checkpoint
    with pytest.raises(
        DataUnavailableError, match=r"'IMAGENET1K_V1' of torchvision model 'resnet18'"
    ):
        load_model("resnet18", device="cpu")


def test_threads_that_ask_first_at_once_all_see_the_full_registry(monkeypatch):
    import threading
    import time

    from glocal.features import models

    monkeypatch.setattr(models, "_REGISTRY", {})
    monkeypatch.setattr(models, "_DEFAULT_MODULE", {})
    monkeypatch.setattr(models, "_LOADED", False)
    real = models.read_model_configs

    def slow(path):  # reading the file takes a while: the other threads ask meanwhile
        time.sleep(0.05)
        return real(path)

    monkeypatch.setattr(models, "read_model_configs", slow)
    found, errors = [], []

    def ask():
        try:
            found.append(models.get_config("all-MiniLM-L6-v2").name)
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and found == ["all-MiniLM-L6-v2"] * 4
