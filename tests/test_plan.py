"""Planning a profile's inputs and sharded extraction on the execution engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _features import TINY_TIMM, make_image_folder, one_torch_thread

from companion.pipeline.plan import Plan, Settings, StoreSpec, load_settings, make_plan, prepare
from glocal.cli import main
from glocal.errors import GlocalError
from glocal.features import (
    FeatureStore,
    ShardSource,
    extract_features,
    extract_sharded,
    image_folder,
)
from glocal.features.shards import shard_path, shard_ranges, shards_dir

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
QUIET = {"verbose": 0, "num_workers": 0}


# --- the plan ------------------------------------------------------------------------------------


def test_paper_plan_on_an_empty_machine_lists_every_input_missing_with_its_command(no_network):
    plan = make_plan("paper", NOTEBOOKS)
    assert plan.settings is not None and plan.settings.world == "real"
    assert plan.needs and not [n for n in plan.needs if n.done]  # nothing is here
    kinds = {n.kind for n in plan.needs}
    assert kinds == {"data", "datasets", "features", "fits"}
    for need in plan.needs:
        assert need.provides, f"{need.name}: no command or manual step"
    by_name = {n.name: n for n in plan.needs}
    assert by_name["things/triplets"].provides == "glocal data fetch things/triplets"
    assert by_name["things/images"].status == "manual" and "osf.io/jum2f" in by_name[
        "things/images"].provides  # fmt: skip
    # pinned by its git blob id: a plain fetch, no --allow-unpinned
    assert by_name["transform/resnet50/avgpool"].provides == (
        "glocal data fetch transform/resnet50/avgpool")  # fmt: skip
    imagenet = next(n for n in plan.needs if n.name.startswith("imagenet"))
    assert imagenet.status == "manual" and "ILSVRC2012_img_train.tar" in imagenet.provides
    for name in ("breeds/class_hierarchy", "sun397/partitions"):
        assert by_name[name].provides == f"glocal data fetch {name}"
    for family in ("multi-arrangement", "free-arrangement", "peterson"):  # page 10's image sets
        need = by_name[f"human/{family}"]
        assert need.status == "manual" and "lay them out as" in need.provides
        assert f"human/{family}/images" in need.provides or family == "peterson"
        store = by_name[f"clip_ViT-L/14 visual · {family}/all"]
        assert f"--source human:{family} --dataset {family} --split all" in store.provides
    stores = [n for n in plan.needs if n.kind == "features"]
    # 4 models x (THINGS, ImageNet contrast set, 2 splits of 9 task datasets, 3 human image sets),
    # and for page 11's model: source-val of Entity-13/30, the 3 splits of Living-17 and
    # Nonliving-26, and ImageNet-C (clean, 15 corruptions x 5 severities)
    assert len(stores) == len(plan.stores) == 4 * (2 + 2 * 9 + 3) + 2 + 2 * 3 + 1 + 15 * 5
    corrupted = [n for n in stores if "· imagenet-c/" in n.name]
    assert len(corrupted) == 76 and all("glocal[shift]" in n.provides for n in corrupted)
    assert all(n.provides.startswith("glocal extract --model ") for n in stores
               if n not in corrupted)  # fmt: skip
    living = by_name["clip_ViT-L/14 visual · breeds-living17/source-val"]
    assert "--source dataset:breeds-living17:source-val" in living.provides
    contrast = by_name["clip_ViT-L/14 visual · imagenet/train-balanced"]
    assert "--source dataset:imagenet:train:64 --dataset imagenet --split train-balanced" in (
        contrast.provides)  # fmt: skip
    text = plan.render()
    assert text.startswith(f"profile paper: {len(plan.needs)} inputs, 0 present")
    assert "glocal search 54 settings x 3 folds = 162 fits" in text


def test_the_plan_command_prints_the_plan_and_runs_nothing(no_network, capsys):
    root = ["--root", str(REPO)]
    assert main(["reproduce", "--profile", "paper", "--plan", *root]) == 0
    out = capsys.readouterr().out
    assert out.startswith("profile paper: ") and "glocal extract --model resnet50" in out
    assert not (no_network / "features").exists()


def test_smoke_plan_needs_the_world_and_random_weight_stores(no_network, monkeypatch):
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(REPO.parent / "shared" / "data"))
    plan = make_plan("smoke", NOTEBOOKS)
    world = next(n for n in plan.needs if n.kind == "datasets")
    assert world.status == "missing" and "smoke world" in world.name
    assert "things/triplets" not in {n.name for n in plan.needs}  # simulated from VICE
    assert {s.pretrained for s in plan.stores} == {False}
    assert {s.model for s in plan.stores} == {
        "tiny-clip_ViT-L-14", "tiny-dino-vit-base-p16", "tiny-resnet18"}  # fmt: skip
    assert plan.stores[0].path.parts[-4].endswith("@random-seed0")
    only = make_plan("smoke", NOTEBOOKS, only=["07"])
    assert not only.stores and {n.kind for n in only.needs} == {"data"}


def test_quick_plan_prepares_notebook_01s_fits_on_one_thread(monkeypatch):
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(REPO.parent / "shared" / "data"))
    plan = make_plan("quick", NOTEBOOKS)
    assert plan.settings is not None and plan.settings.threads == 1
    assert not plan.stores  # text features: computed by the notebooks, no feature stores
    assert plan.fit_sources == ["text:words", "text:definitions"]
    fits = [n for n in plan.needs if n.kind == "fits"]
    assert [n.name.split(":")[0] + ":" + n.name.split(":")[1] for n in fits] == plan.fit_sources
    assert all("glocal reproduce --profile quick" in n.provides for n in fits)
    triplets = next(n for n in plan.needs if n.name == "things/triplets")
    assert triplets.optional  # simulated from VICE when the THINGS-data file is not there
    assert make_plan("tiny", NOTEBOOKS).fit_sources == []  # no entry: nothing prepared


def test_settings_file_is_checked(tmp_path):
    folder = tmp_path / "notebooks"
    (folder / "profiles").mkdir(parents=True)
    assert load_settings(folder, "paper") is None
    (folder / "profiles" / "prepare.json").write_text(json.dumps({"paper": {"shards": 3}}))
    with pytest.raises(GlocalError, match="unknown keys"):
        load_settings(folder, "paper")
    assert load_settings(NOTEBOOKS, "tiny") is None
    assert load_settings(NOTEBOOKS, "smoke") == Settings(**json.loads(
        (NOTEBOOKS / "profiles" / "prepare.json").read_text())["smoke"])  # fmt: skip
    (folder / "profiles" / "prepare.json").write_bytes(
        '{"paper": {"about": "café"}}'.encode("latin-1")
    )
    with pytest.raises(GlocalError) as err:  # not a UnicodeDecodeError, "a bug in glocal"
        load_settings(folder, "paper")
    assert str(err.value) == (
        f"preparation file {folder / 'profiles' / 'prepare.json'}: not UTF-8 text (byte 0xe9 "
        "at offset 24); save it as UTF-8, which JSON files must be"
    )


# --- sharded extraction ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=3, per_class=5, seed=2)


def test_shard_ranges_cover_the_items_once():
    assert shard_ranges(10, 4) == [(0, 3), (3, 7), (7, 10)]
    assert shard_ranges(3, 10) == [(0, 3)]
    with pytest.raises(GlocalError, match="shard_size"):
        shard_ranges(3, 0)


def test_sharded_store_equals_the_plain_one(folder, tmp_path):
    source = image_folder(folder, name="imgs")
    with one_torch_thread():
        plain = extract_features(TINY_TIMM, source, pretrained=False, out=tmp_path / "a.h5",
                                 **QUIET)  # fmt: skip
        sharded = extract_sharded(TINY_TIMM, source, pretrained=False, out=tmp_path / "b.h5",
                                  shard_size=4, scheduler="serial", **QUIET)  # fmt: skip
    np.testing.assert_allclose(sharded.features(), plain.features(), atol=1e-6)
    assert sharded.ids() == plain.ids() and (sharded.labels() == plain.labels()).all()
    assert sharded.metadata["shards"] == 4 and not shards_dir(sharded.path).exists()
    for key in ("model", "source_sha256", "source_digest", "n_items", "preprocessing"):
        assert sharded.metadata[key] == plain.metadata[key]
    # a finished store is what extract_features finds and reuses, untouched
    again = extract_features(TINY_TIMM, source, pretrained=False, out=sharded.path, **QUIET)
    assert again.path == sharded.path
    part = ShardSource(source, 4, 8)
    assert len(part) == 4 and part.ids() == source.ids()[4:8]
    assert part.content_digest() != source.content_digest()


def test_a_killed_sharded_extraction_resumes_with_its_finished_shards(folder, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    import glocal.features.shards as shards

    source = image_folder(folder, name="imgs")
    out = tmp_path / "s.h5"
    real = shards.extract_shard
    calls: list[int] = []

    def dies_on_third(config, src, start, stop, path, options):
        calls.append(start)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed while shard 3 runs
        return real(config, src, start, stop, path, options)

    monkeypatch.setattr(shards, "extract_shard", dies_on_third)
    with one_torch_thread(), pytest.raises(KeyboardInterrupt):
        extract_sharded(TINY_TIMM, source, pretrained=False, out=out, shard_size=4,
                        scheduler="serial", **QUIET)  # fmt: skip
    finished = sorted(p.name for p in shards_dir(out).glob("*.h5"))
    assert finished == ["00000-of-00004.h5", "00001-of-00004.h5"] and not out.exists()
    stamps = {p: p.stat().st_mtime_ns for p in shards_dir(out).glob("*.h5")}
    calls.clear()
    monkeypatch.setattr(shards, "extract_shard", real)
    with one_torch_thread():
        store = extract_sharded(TINY_TIMM, source, pretrained=False, out=out, shard_size=4,
                                scheduler="serial", **QUIET)  # fmt: skip
    assert store.n == 15 and FeatureStore.open(out).metadata["shards"] == 4
    assert all(not p.exists() or p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert shard_path(out, 0, 4).parent == shards_dir(out)


def test_shards_left_by_a_kill_after_the_join_are_removed_by_the_next_run(
    folder, tmp_path, monkeypatch
):
    """Killed between publishing the joined store and removing its shards: the next run finds
    the store finished, leaves it untouched and removes the shards (a full copy of it)."""
    import glocal.features.shards as shards

    source = image_folder(folder, name="imgs")
    out = tmp_path / "s.h5"
    real = shards.drop_leftover_shards

    def killed(final):
        raise KeyboardInterrupt  # the run is killed right after the rename

    monkeypatch.setattr(shards, "drop_leftover_shards", killed)
    with one_torch_thread(), pytest.raises(KeyboardInterrupt):
        extract_sharded(TINY_TIMM, source, pretrained=False, out=out, shard_size=4,
                        scheduler="serial", **QUIET)  # fmt: skip
    assert out.is_file() and len(list(shards_dir(out).glob("*.h5"))) == 4
    stamp = (out.stat().st_ino, out.stat().st_mtime_ns)
    monkeypatch.setattr(shards, "drop_leftover_shards", real)
    with one_torch_thread():
        store = extract_sharded(TINY_TIMM, source, pretrained=False, out=out, shard_size=4,
                                scheduler="serial", **QUIET)  # fmt: skip
    assert store.n == 15 and (out.stat().st_ino, out.stat().st_mtime_ns) == stamp
    assert not shards_dir(out).exists()
    assert not real(out)  # nothing left to remove


def test_prepare_removes_the_shards_of_stores_it_finds_present(tmp_path, monkeypatch):
    """The reproduce run skips present stores without calling the extractor, so it removes
    their leftover shards itself."""
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(tmp_path / "cache"))
    present = StoreSpec("imgs", "tiny-resnet18", "visual", False, "imgs", "train")
    present.path.parent.mkdir(parents=True)
    present.path.write_bytes(b"finished")
    shards_dir(present.path).mkdir()
    (shards_dir(present.path) / "00000-of-00002.h5").write_bytes(b"shard")
    extracted = []
    monkeypatch.setattr("glocal.features.extract_sharded", lambda *a, **k: extracted.append(a))
    prepare(Plan("smoke", Settings(world="real"), stores=[present]), verbose=0)
    assert not shards_dir(present.path).exists() and present.path.read_bytes() == b"finished"
    assert not extracted


def test_a_damaged_shard_is_named_removed_and_extracted_again(folder, tmp_path, monkeypatch):
    import glocal.features.shards as shards
    from glocal.errors import DamagedCacheWarning

    source = image_folder(folder, name="imgs")
    out = tmp_path / "s.h5"
    real = shards.extract_shard

    def dies_on_third(config, src, start, stop, path, options):
        if start == 8:
            raise KeyboardInterrupt
        return real(config, src, start, stop, path, options)

    monkeypatch.setattr(shards, "extract_shard", dies_on_third)
    with one_torch_thread(), pytest.raises(KeyboardInterrupt):
        extract_sharded(TINY_TIMM, source, pretrained=False, out=out, shard_size=4,
                        scheduler="serial", **QUIET)  # fmt: skip
    damaged = shard_path(out, 1, 4)
    damaged.write_bytes(damaged.read_bytes()[:500])
    monkeypatch.setattr(shards, "extract_shard", real)
    with one_torch_thread(), pytest.warns(DamagedCacheWarning, match=str(damaged)) as caught:
        store = extract_sharded(TINY_TIMM, source, pretrained=False, out=out, shard_size=4,
                                scheduler="serial", **QUIET)  # fmt: skip
    assert "--overwrite" not in str(caught[0].message)  # extract_sharded has no such option
    plain = extract_features(TINY_TIMM, source, pretrained=False, out=tmp_path / "p.h5", **QUIET)
    np.testing.assert_allclose(store.features(), plain.features(), atol=1e-6)


def test_a_transform_only_page_7_reads_is_optional_where_no_page_needs_it_as_a_reference(
    no_network,
):
    """Page 7 reports absent transforms; the smoke models' references are other transforms, so
    preparing smoke may go on without resnet50's, while paper's resnet50 column needs it."""
    name = "transform/resnet50/avgpool"
    smoke = {n.name: n for n in make_plan("smoke", NOTEBOOKS).needs}
    paper = {n.name: n for n in make_plan("paper", NOTEBOOKS).needs}
    assert smoke[name].optional and smoke[name].notebooks == ("07",)
    assert not paper[name].optional and "07" in paper[name].notebooks
    assert f"{name} (optional)" in make_plan("smoke", NOTEBOOKS).render()
