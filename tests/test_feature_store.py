"""Feature store: layout, provenance, reuse, resume after an interruption, compatibility checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from _features import TINY_TIMM, make_image_folder, one_torch_thread

from glocal.errors import GlocalError
from glocal.features import (
    FeatureStore,
    cache_root,
    check_compatible,
    extract_features,
    image_folder,
    load_features,
    load_model,
    store_path,
)
from glocal.features import extract as extract_module
from glocal.features.store import partial_path
from glocal.transform import GlocalTransform


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=3, per_class=4)


@pytest.fixture(scope="module")
def tiny():
    return load_model(TINY_TIMM, pretrained=False, device="cpu", seed=0)


def _extract(tiny, folder: Path, root: Path, **kwargs):
    options = {"batch_size": 2, "chunk_size": 2, "num_workers": 0, "progress": False}
    return extract_features(
        tiny, image_folder(folder, name="toy"), cache_dir=root, **{**options, **kwargs}
    )


def test_cache_location_and_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path / "features"
    path = store_path("clip_ViT-L/14", "visual", "things", "reference")
    assert (
        path == tmp_path / "features" / "clip_ViT-L" / "14" / "visual" / "things" / "reference.h5"
    )
    with pytest.raises(GlocalError, match="split '../x'"):
        store_path("resnet18", "avgpool", "things", "../x")


def test_store_contents_and_provenance(tiny, folder: Path, tmp_path: Path) -> None:
    store = _extract(tiny, folder, tmp_path)
    assert store.path == tmp_path / "tiny-timm@random-seed0" / "norm" / "toy" / "all.h5"
    features = store.features()
    assert features.shape == (12, 64) and features.dtype == np.float32
    assert np.isfinite(features).all()
    np.testing.assert_array_equal(store.labels(), np.repeat([0, 1, 2], 4))
    assert store.ids()[:2] == ["class_0/img_0.png", "class_0/img_1.png"]
    assert store.classes() == ["class_0", "class_1", "class_2"]
    meta = store.metadata
    assert (meta["model"], meta["module"], meta["weights"], meta["seed"]) == (
        "tiny-timm",
        "norm",
        "random",
        0,
    )
    assert meta["n_items"] == 12 and meta["dim"] == 64 and meta["complete"]
    assert "Resize" in meta["preprocessing"] and "CenterCrop" in meta["preprocessing"]
    assert {"torch", "timm", "h5py", "numpy"} <= set(meta["versions"])
    assert meta["created"].endswith("+00:00") and meta["items_per_second"] > 0
    assert json.loads(meta["config"])["architecture"] == "test_vit"
    assert not partial_path(store.path).exists()


def test_float16_on_request(tiny, folder: Path, tmp_path: Path) -> None:
    half = _extract(tiny, folder, tmp_path / "half", dtype="float16")
    full = _extract(tiny, folder, tmp_path / "full")
    assert half.features().dtype == np.float16
    np.testing.assert_allclose(half.features(np.float32), full.features(), rtol=2e-3, atol=2e-3)


def test_finished_store_is_reused_not_rewritten(
    tiny, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _extract(tiny, folder, tmp_path)
    stamp = store.path.stat().st_mtime_ns

    def no_model(*args, **kwargs):
        raise AssertionError("a finished store must be reused without loading the model")

    monkeypatch.setattr(extract_module, "load_model", no_model)
    config = tiny.config
    again = extract_features(
        config,
        image_folder(folder, name="toy"),
        cache_dir=tmp_path,
        pretrained=False,
        progress=False,
    )
    assert again.path == store.path and store.path.stat().st_mtime_ns == stamp
    with pytest.raises(GlocalError, match="already exists for different settings.*dtype"):
        _extract(tiny, folder, tmp_path, dtype="float16")
    rewritten = _extract(tiny, folder, tmp_path, dtype="float16", overwrite=True)
    assert rewritten.features().dtype == np.float16


def test_resume_after_an_interrupted_run(tiny, folder: Path, tmp_path: Path) -> None:
    reference = _extract(tiny, folder, tmp_path / "reference").features()
    calls = {"n": 0}
    encode = tiny.encode

    def crash_on_fourth_batch(batch, amp=False):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("simulated crash")
        return encode(batch, amp=amp)

    tiny.encode = crash_on_fourth_batch
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            _extract(tiny, folder, tmp_path)
        final = tmp_path / "tiny-timm@random-seed0" / "norm" / "toy" / "all.h5"
        assert not final.exists()
        with h5py.File(partial_path(final), "r") as fh:
            assert fh.attrs["n_done"] == 6 and not fh.attrs["complete"]  # 3 chunks of 2 kept
        with pytest.raises(GlocalError, match="unfinished extraction exists"):
            FeatureStore.open(final)
        calls["n"] = 0
        store = _extract(tiny, folder, tmp_path)
        assert calls["n"] == 3  # only the 6 missing images, in 3 batches
    finally:
        del tiny.encode
    assert store.metadata["resumed_from"] == 6
    np.testing.assert_array_equal(store.features(), reference)
    np.testing.assert_array_equal(store.labels(), np.repeat([0, 1, 2], 4))


def test_partial_store_of_other_settings_starts_over(tiny, folder: Path, tmp_path: Path) -> None:
    final = tmp_path / "tiny-timm@random-seed0" / "norm" / "toy" / "all.h5"
    final.parent.mkdir(parents=True)
    partial_path(final).write_bytes(b"not hdf5")
    with pytest.warns(UserWarning, match="unreadable"):
        store = _extract(tiny, folder, tmp_path)
    assert store.metadata["resumed_from"] == 0 and store.n == 12


def test_foreign_or_missing_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(GlocalError, match="does not exist"):
        FeatureStore.open(tmp_path / "nope.h5")
    with h5py.File(tmp_path / "other.h5", "w") as fh:
        fh.attrs["format"] = "something else"
    with pytest.raises(GlocalError, match="not a glocal feature store"):
        FeatureStore.open(tmp_path / "other.h5")


def _fake_transform(dim: int, **metadata: str) -> SimpleNamespace:
    return SimpleNamespace(weights_=np.eye(dim, dtype=np.float32), metadata_=metadata)


def test_official_transform_compatibility(data_dir: Path) -> None:
    official = GlocalTransform.load(
        data_dir / "transforms" / "resnet18" / "avgpool" / "transform.npz"
    )
    good = {"model": "resnet18", "module": "avgpool", "dim": 512, "weights": "pretrained"}
    check_compatible(good, official)
    with pytest.raises(
        GlocalError, match="fit on resnet18/avgpool features but .* clip_RN50/visual"
    ):
        check_compatible({**good, "model": "clip_RN50", "module": "visual", "dim": 1024}, official)
    with pytest.raises(GlocalError, match="module 'avgpool' of resnet18 .* module 'layer4'"):
        check_compatible({**good, "module": "layer4"}, official)
    with pytest.raises(GlocalError, match="expects 512 features but .* have 256"):
        check_compatible({**good, "dim": 256}, official)
    vit = GlocalTransform.load(
        data_dir / "transforms" / "clip_ViT-L" / "14" / "visual" / "transform.npz"
    )
    with pytest.raises(GlocalError, match="fit on clip_ViT-L/14/visual features"):
        check_compatible(
            {
                **good,
                "model": "OpenCLIP_ViT-L-14_laion2b_s32b_b82k",
                "dim": 768,
                "module": "visual",
            },
            vit,
        )


def test_store_checks_transforms_on_load(tiny, folder: Path, tmp_path: Path) -> None:
    store = _extract(tiny, folder, tmp_path)
    matching = _fake_transform(64, model="tiny-timm", module="norm")
    with pytest.warns(UserWarning, match="randomly initialised"):
        assert load_features(store.path, transform=matching).shape == (12, 64)
    with pytest.raises(GlocalError, match="fit on dino-vit-base-p16/norm features"):
        load_features(
            store.path, transform=_fake_transform(768, model="dino-vit-base-p16", module="norm")
        )
    with pytest.raises(GlocalError, match="expects 32 features"):
        store.apply(_fake_transform(32))
    real = GlocalTransform(max_epochs=1, progress=False)
    real.weights_, real.bias_, real.mean_, real.std_ = np.eye(64, dtype=np.float32), None, 0.0, 1.0
    real.metadata_ = {}
    np.testing.assert_allclose(store.apply(real), store.features(), rtol=1e-6)
