"""Feature store: layout, provenance, reuse, resume after an interruption, compatibility checks,
integrity (stale inputs, checksums, damaged files) and two processes extracting at once."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from _features import TINY_CLIP, TINY_TIMM, make_image_folder, one_torch_thread, random_image
from test_concurrency_data import PRELUDE, assert_all_succeeded, child_env, run_together

from glocal.errors import DamagedCacheWarning, GlocalError
from glocal.features import (
    FeatureStore,
    TextSource,
    cache_root,
    check_compatible,
    extract_features,
    image_folder,
    load_features,
    load_model,
    store_path,
)
from glocal.features import extract as extract_module
from glocal.features import sources as sources_module
from glocal.features.store import (
    FORMAT,
    create_partial,
    finish_partial,
    partial_path,
    write_chunk,
)
from glocal.io import file_lock
from glocal.transform import GlocalTransform

TESTS = Path(__file__).parent
#: A two-layer open_clip text tower with random weights: a text model that loads in a second.
TINY_TEXT = replace(TINY_CLIP, name="tiny-clip-text", module="text", input="text")
WORDS = [f"concept {i}" for i in range(40)]


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
    options = {"batch_size": 2, "chunk_size": 2, "num_workers": 0, "verbose": 0}
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
        verbose=0,
    )
    assert again.path == store.path and store.path.stat().st_mtime_ns == stamp
    with pytest.raises(
        GlocalError, match="stale or was made with other settings: dtype.*overwrite"
    ):
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


def _interrupted_after_six_rows(tiny, folder: Path, root: Path) -> Path:
    """The partial store of a run that crashed after 3 chunks of 2 images; its path."""
    encode, calls = tiny.encode, {"n": 0}

    def crash_on_fourth_batch(batch, amp=False):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("simulated crash")
        return encode(batch, amp=amp)

    tiny.encode = crash_on_fourth_batch
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            _extract(tiny, folder, root)
    finally:
        del tiny.encode
    partial = partial_path(root / "tiny-timm@random-seed0" / "norm" / "toy" / "all.h5")
    with h5py.File(partial, "r") as fh:
        assert fh.attrs["n_done"] == 6
    return partial


def _counter_says_ten(fh: h5py.File) -> None:
    fh.attrs["n_done"] = 10  # the case: rows 6..9 were never written


def _a_written_row_changed(fh: h5py.File) -> None:
    fh["features"][3] = fh["features"][3] + 1.0


def _written_by_an_older_glocal(fh: h5py.File) -> None:
    del fh["written"]


@pytest.mark.parametrize(
    ("damage", "said"),
    [(_counter_says_ten, "its counter says 10 of 12 rows are written but its chunks cover rows "
                         "0..6"),
     (_a_written_row_changed, "rows 2..3 do not match their recorded sha256"),
     (_written_by_an_older_glocal, "it has no record of its written rows")],
)  # fmt: skip
def test_a_resume_checks_the_rows_it_resumes_from(tiny, folder, tmp_path, damage, said):
    # before: the rerun trusted n_done and published rows that were never written (zeros)
    # under a valid checksum
    reference = _extract(tiny, folder, tmp_path / "reference").features()
    partial = _interrupted_after_six_rows(tiny, folder, tmp_path)
    with h5py.File(partial, "r+") as fh:
        damage(fh)
    with pytest.warns(DamagedCacheWarning, match=f"cannot be resumed: {re.escape(said)}"):
        store = _extract(tiny, folder, tmp_path)
    assert store.metadata["resumed_from"] == 0  # started over
    np.testing.assert_array_equal(store.features(), reference)


def test_a_partial_store_missing_rows_is_never_published(tmp_path: Path) -> None:
    partial, final = tmp_path / "s.h5.partial", tmp_path / "s.h5"
    create_partial(partial, {"n_items": 4}, ["a", "b", "c", "d"], None)
    write_chunk(partial, 0, np.ones((2, 3), np.float32), np.zeros(2), "float32", 2)
    with h5py.File(partial, "r+") as fh:
        fh.attrs["n_done"] = 4
    with pytest.raises(GlocalError, match="s.h5.partial cannot be finished: its counter says 4"):
        finish_partial(partial, final, {})
    with pytest.raises(GlocalError, match="a chunk starting at row 3 follows 4 written rows"):
        write_chunk(partial, 3, np.ones((1, 3), np.float32), np.zeros(1), "float32", 2)
    assert not final.exists()


def _store_with_classes(path: Path) -> Path:
    partial = partial_path(path)
    create_partial(partial, {"model": "m", "module": "x", "n_items": 3}, ["a", "b", "c"],
                   ["cat", "dog"])  # fmt: skip
    write_chunk(partial, 0, np.eye(3, dtype=np.float32), np.array([0, 1, 1]), "float32", 8)
    finish_partial(partial, path, {})
    return path


def _new_provenance(fh: h5py.File) -> None:
    record = json.loads(fh.attrs["provenance"])
    fh.attrs["provenance"] = json.dumps({**record, "model": "another-model"}, sort_keys=True)


def _renamed_class(fh: h5py.File) -> None:
    fh["classes"][1] = "wolf"


def _classes_removed(fh: h5py.File) -> None:
    del fh["classes"]


def _dataset_added(fh: h5py.File) -> None:
    fh["extra"] = np.zeros(3)


@pytest.mark.parametrize(
    ("change", "named"),
    [(_new_provenance, "provenance"), (_renamed_class, "classes"), (_classes_removed, "classes"),
     (_dataset_added, "extra")],
)  # fmt: skip
def test_the_checksum_covers_every_dataset_and_the_provenance(tmp_path, change, named):
    # before: the sha256 covered features, labels and ids only: another model's name in the
    # provenance or a renamed class passed FeatureStore.open
    path = _store_with_classes(tmp_path / "s.h5")
    assert FeatureStore.open(path).classes() == ["cat", "dog"]
    with h5py.File(path, "r+") as fh:
        change(fh)
    with pytest.raises(GlocalError, match=f"the bytes of {named} do not match the sha256"):
        FeatureStore.open(path)


def test_a_store_of_the_previous_format_is_still_read_and_verified(tmp_path: Path) -> None:
    path = _store_with_classes(tmp_path / "s.h5")
    with h5py.File(path, "r+") as fh:  # what glocal-features/2 recorded: three datasets
        sums = json.loads(fh.attrs["sha256"])
        fh.attrs["sha256"] = json.dumps({k: sums[k] for k in ("features", "labels", "ids")})
        fh.attrs["format"] = "glocal-features/2"
    np.testing.assert_array_equal(FeatureStore.open(path).features(), np.eye(3))
    with h5py.File(path, "r+") as fh:
        fh["labels"][0] = 5
    with pytest.raises(GlocalError, match="the bytes of labels do not match"):
        FeatureStore.open(path)


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
    real = GlocalTransform(max_steps=1)
    real.weights_, real.bias_, real.mean_, real.std_ = np.eye(64, dtype=np.float32), None, 0.0, 1.0
    real.metadata_ = {}
    np.testing.assert_allclose(store.apply(real), store.features(), rtol=1e-6)


# --- integrity: stale inputs, checksums, damaged files ----------------------------------------


def _copy_folder(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "images"))


def test_changed_images_make_the_store_stale(tiny, folder: Path, tmp_path: Path) -> None:
    images = _copy_folder(folder, tmp_path)
    first = _extract(tiny, images, tmp_path / "cache")
    before = first.features()
    assert first.metadata["source_digest"].startswith("content:")  # a small source: by content
    random_image(np.random.default_rng(99)).save(images / "class_1" / "img_2.png")
    with pytest.raises(GlocalError) as info:
        _extract(tiny, images, tmp_path / "cache")
    message = str(info.value)
    assert str(first.path) in message and "source changed" in message
    assert "contents differ" in message and "--overwrite" in message and "\n" not in message
    again = _extract(tiny, images, tmp_path / "cache", overwrite=True)
    changed = again.ids().index("class_1/img_2.png")
    assert not np.allclose(again.features()[changed], before[changed])
    np.testing.assert_array_equal(np.delete(again.features(), changed, 0),
                                  np.delete(before, changed, 0))  # fmt: skip


def test_large_sources_are_digested_by_size_and_mtime(
    tiny, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources_module, "SMALL_SOURCE_BYTES", 0)
    images = _copy_folder(folder, tmp_path)
    first = _extract(tiny, images, tmp_path / "cache")
    assert first.metadata["source_digest"].startswith("stat:")
    assert _extract(tiny, images, tmp_path / "cache").path == first.path  # unchanged: reused
    target = images / "class_0" / "img_1.png"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    with pytest.raises(GlocalError, match="sizes or modification times differ.*--overwrite"):
        _extract(tiny, images, tmp_path / "cache")


def test_changed_model_config_makes_the_store_stale(tiny, folder: Path, tmp_path: Path) -> None:
    store = _extract(tiny, folder, tmp_path)
    edited = replace(TINY_TIMM, preprocess={"input_size": [3, 48, 48]})
    with pytest.raises(GlocalError, match=r"all.h5 is stale.*model config changed.*--overwrite"):
        extract_features(
            edited, image_folder(folder, name="toy"), cache_dir=tmp_path, pretrained=False,
            verbose=0,
        )  # fmt: skip
    assert (
        store.metadata["config_sha256"]
        != extract_module.hashlib.sha256(extract_module._config_json(edited).encode()).hexdigest()
    )


def test_descriptive_config_fields_keep_the_store(tiny, folder: Path, tmp_path: Path) -> None:
    store = _extract(tiny, folder, tmp_path)
    described = replace(TINY_TIMM, notes="a note", variant_of="vgg16")
    again = extract_features(
        described, image_folder(folder, name="toy"), cache_dir=tmp_path, pretrained=False,
        verbose=0,
    )  # fmt: skip
    assert again.path == store.path
    assert again.metadata == store.metadata  # reused, not re-extracted
    assert os.stat(again.path).st_mtime_ns == os.stat(store.path).st_mtime_ns


def _write_store(path: Path, features: np.ndarray, fmt: str = FORMAT) -> Path:
    """A finished store written by the store's own writer functions (no model)."""
    n = len(features)
    partial = partial_path(path)
    create_partial(partial, {"model": "m", "module": "x", "n_items": n}, [str(i) for i in range(n)],
                   None)  # fmt: skip
    write_chunk(partial, 0, features, np.arange(n), str(features.dtype), 1024)
    finish_partial(partial, path, {})
    if fmt != FORMAT:
        with h5py.File(path, "r+") as fh:
            fh.attrs["format"] = fmt
            del fh.attrs["sha256"]
    return path


def test_flipped_bytes_are_detected_not_served(tmp_path: Path, rng: np.random.Generator) -> None:
    features = rng.standard_normal((64, 16)).astype(np.float32)
    path = _write_store(tmp_path / "s.h5", features)
    np.testing.assert_array_equal(FeatureStore.open(path).features(), features)
    with h5py.File(path, "r") as fh:
        offset = fh["features"].id.get_chunk_info(0).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset + 4 * 37 + 3] = 0x70  # the sign and exponent byte of one little-endian float32
    path.write_bytes(bytes(raw))
    unchecked = FeatureStore.open(path, verify=False).features()
    assert np.abs(unchecked).max() > 1e28  # what a reader without the checksum would get
    with pytest.raises(GlocalError) as info:
        FeatureStore.open(path)
    message = str(info.value)
    assert str(path) in message and "features do not match the sha256" in message
    assert "--overwrite" in message


def test_damaged_or_incomplete_stores_are_clear_errors(tmp_path: Path) -> None:
    features = np.ones((5, 3), np.float32)
    missing = _write_store(tmp_path / "missing.h5", features)
    with h5py.File(missing, "r+") as fh:
        del fh["features"]
    with pytest.raises(GlocalError, match=r"missing.h5 lacks the dataset\(s\) \['features'\]"):
        FeatureStore.open(missing)
    damaged = _write_store(tmp_path / "damaged.h5", features)
    with h5py.File(damaged, "r+") as fh:
        fh.attrs["provenance"] = "{not json"
    with pytest.raises(GlocalError, match=r"damaged.h5: its attributes are damaged.*--overwrite"):
        FeatureStore.open(damaged)
    with h5py.File(damaged, "r+") as fh:
        fh.attrs["provenance"] = "{}"
        del fh.attrs["n_done"]
    with pytest.raises(GlocalError, match=r"damaged.h5: its attributes are damaged \(KeyError"):
        FeatureStore.open(damaged)
    old = _write_store(tmp_path / "old.h5", features, fmt="glocal-features/1")
    with pytest.raises(GlocalError, match=r"old.h5 has no checksum.*older glocal.*--overwrite"):
        FeatureStore.open(old)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(GlocalError, match=r"text.h5 is not a readable HDF5 file.*--overwrite"):
        FeatureStore.open(tmp_path / "text.h5")


def test_verifying_a_10k_by_768_store_is_fast(tmp_path: Path, rng: np.random.Generator) -> None:
    features = rng.standard_normal((10_000, 768), dtype=np.float32)
    path = _write_store(tmp_path / "big.h5", features)
    FeatureStore.open(path)  # warm the page cache, as a store just written or read is
    began = time.perf_counter()
    store = FeatureStore.open(path)
    seconds = time.perf_counter() - began
    assert store.n == 10_000 and store.dim == 768
    assert seconds < 0.5, f"opening (with checksum verification) took {seconds:.2f} s"


# --- two processes, one cold cache ----------------------------------------------------------

EXTRACT_SCRIPT = """
sys.path.insert(0, sys.argv[3])
import torch
torch.set_num_threads(1)
from dataclasses import replace
from _features import TINY_CLIP
from glocal.features import TextSource
from glocal.features import extract as ex

loads, batches = sys.argv[4], sys.argv[5]
real_load = ex.load_model

def counting_load(*args, **kwargs):
    record(loads)  # one line per model load: per process that does the extraction
    model = real_load(*args, **kwargs)
    encode = model.encode

    def slow_encode(batch, amp=False):
        record(batches)
        time.sleep(0.05)  # 10 batches: a window of half a second for the other process
        if sys.argv[6] == "park" and len(Path(batches).read_text().splitlines()) == 6:
            time.sleep(600)  # 5 chunks are committed: wait here to be killed
        return encode(batch, amp=amp)

    model.encode = slow_encode
    return model

ex.load_model = counting_load
config = replace(TINY_CLIP, name="tiny-clip-text", module="text", input="text")
source = TextSource([f"concept {i}" for i in range(40)], name="words")
if sys.argv[6] == "wait":
    wait_for_go()
store = ex.extract_features(
    config, source, pretrained=False, batch_size=4, chunk_size=4, verbose=0
)
print(json.dumps({"path": str(store.path), "sha256": store.metadata["sha256"],
                  "created": store.metadata["created"]}))
"""


@pytest.mark.slow
def test_two_processes_extract_the_same_store_once(tmp_path: Path) -> None:
    cache, loads, batches = tmp_path / "cache", tmp_path / "loads.log", tmp_path / "batches.log"
    args = [str(TESTS), str(loads), str(batches), "wait"]
    results = assert_all_succeeded(run_together(EXTRACT_SCRIPT, [args, args], child_env(cache)))
    final = cache / "features/tiny-clip-text@random-seed0/text/words/all.h5"
    assert [r["path"] for r in results] == [str(final), str(final)]
    assert results[0]["sha256"] == results[1]["sha256"]
    assert results[0]["created"] == results[1]["created"]  # the very same file
    assert len(loads.read_text().splitlines()) == 1  # extracted once; the other process waited
    assert len(batches.read_text().splitlines()) == 10
    store = FeatureStore.open(final)
    assert store.n == 40 and store.metadata["resumed_from"] == 0
    assert sorted(p.name for p in final.parent.iterdir()) == ["all.h5", "all.h5.lock"]


@pytest.mark.slow
def test_a_killed_extraction_resumes_in_the_next_process(tmp_path: Path) -> None:
    cache, loads, batches = tmp_path / "cache", tmp_path / "loads.log", tmp_path / "batches.log"
    argv = [sys.executable, "-c", PRELUDE + EXTRACT_SCRIPT, "-", "-", str(TESTS), str(loads),
            str(batches), "park"]  # fmt: skip
    child = subprocess.Popen(argv, env=child_env(cache), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not batches.exists() or len(batches.read_text().splitlines()) < 6:
        assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)  # the lock holder dies without any clean-up
    child.wait()
    child.stderr.close()
    final = cache / "features/tiny-clip-text@random-seed0/text/words/all.h5"
    assert not final.exists()
    with h5py.File(partial_path(final), "r") as fh:
        done = int(fh.attrs["n_done"])
    assert done == 20  # 5 chunks of 4 texts
    with file_lock(final, timeout=10):  # the kernel released the dead process's lock
        pass
    model = load_model(TINY_TEXT, pretrained=False, device="cpu", seed=0)
    source = TextSource(WORDS, name="words")
    options = {"batch_size": 4, "chunk_size": 4, "verbose": 0}
    store = extract_features(model, source, cache_dir=cache / "features", **options)
    assert store.path == final and store.metadata["resumed_from"] == done
    fresh = extract_features(model, source, cache_dir=tmp_path / "fresh", **options)
    np.testing.assert_array_equal(store.features(), fresh.features())
