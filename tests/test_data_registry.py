"""The data registry: checksums, mirror and cache, atomic downloads, offline errors, dinov2 copy."""

from __future__ import annotations

import re
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from glocal import data
from glocal.data import _fetch, datasets
from glocal.data._registry import parse_registry
from glocal.errors import DamagedCacheWarning, DataUnavailableError, GlocalError

DINO_P16 = "transform/dino-vit-base-p16/norm"
DINOV2_B = "transform/dinov2-vit-base-p14/norm"
#: Released transforms pinned by their git blob id (too large to copy here, so no sha256).
GIT_PINNED = {
    "transform/resnet50/avgpool": "44b7deffc1c4c36abe904af8251f6976cb44aff0",
    "transform/vgg16/classifier.3": "07ed28a0996b1bde01852bb4599b0f4567ec64ba",
    "transform/alexnet/classifier.4": "b7e20ab6dab94923e422be6cbc950ff7063dd88d",
}


@pytest.fixture(autouse=True)
def offline(no_network: Path) -> Path:
    """No network, an empty private cache, and no mirror unless a test sets one."""
    return no_network


def fake_downloader(monkeypatch: pytest.MonkeyPatch, payload: bytes, fail_after: int | None = None):
    """Replace the network by a downloader that writes ``payload`` (optionally failing midway)."""
    calls = []

    def download(url, output_file, pooch_instance):
        calls.append(url)
        with open(output_file, "wb") as fh:
            if fail_after is None:
                fh.write(payload)
                return
            fh.write(payload[:fail_after])
        raise OSError("connection reset in the middle of the download")

    monkeypatch.setattr(_fetch, "_downloader", lambda: download)
    return calls


def files_under(root: Path) -> list[Path]:
    """Files under ``root`` except the lock files that cache writers leave (by design)."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".lock")


# --- the registry itself ----------------------------------------------------------------------


def test_registry_entries_are_pinned_and_documented():
    entries = data.registry()
    assert len({e.name for e in entries}) == len(entries)
    for e in entries:
        assert e.license and e.citation and e.description
        if e.kind == "file":
            assert e.served.url.startswith("https://")
            pinned_commit = re.search(r"/[0-9a-f]{40}/", e.served.url)
            assert pinned_commit or "osf.io/" in e.served.url or "princeton.edu" in e.served.url
        if e.name in GIT_PINNED:
            assert e.status == "pinned" and e.served.sha256 is None
            assert e.checksum == "pinned" and e.served.git_blob == GIT_PINNED[e.name]
        elif e.kind == "file":
            assert re.fullmatch(r"[0-9a-f]{64}", e.served.sha256), e.name
            assert e.checksum == ("flagged" if e.name == DINOV2_B else "pinned"), e.name
    images = next(e for e in entries if e.name == "things/images")
    assert images.checksum == "unpinned" and images.unzip["sha256"] is None
    assert len(data.released_transforms()) == 12
    assert ("clip_ViT-L/14", "visual") in data.released_transforms()
    gl = [e for e in entries if e.name.startswith("transform/") and e.name != DINOV2_B]
    assert all("635fdaa5b36e810f626125104fb9eb11ea89a75d" in e.served.url for e in gl)


def test_registry_rejects_bad_documents():
    with pytest.raises(GlocalError, match="entries"):
        parse_registry({"entries": {}})
    bad_sha = {
        "name": "a",
        "path": "a.bin",
        "url": "https://x",
        "sha256": "XYZ",
        "license": "l",
        "citation": "c",
        "description": "d",
    }
    with pytest.raises(GlocalError, match="sha256"):
        parse_registry({"entries": [bad_sha]})
    escape = dict(bad_sha, sha256=None, path="../etc/passwd")
    with pytest.raises(GlocalError, match="path"):
        parse_registry({"entries": [escape]})
    bad_archive = dict(bad_sha, sha256=None, kind="folder", unzip={"archive": "a.zip", "sha256": 1})
    with pytest.raises(GlocalError, match=r"\(a\): field 'unzip.sha256' must be 64"):
        parse_registry({"entries": [bad_archive]})


def test_byte_copies_are_detected_by_sha256():
    base = {"url": "https://x", "license": "l", "citation": "c", "description": "d"}
    sha = "a" * 64
    twins = [
        dict(base, name="m1", path="m1.npz", sha256=sha),
        dict(base, name="m2", path="m2.npz", sha256=sha),
    ]
    refused = parse_registry({"entries": twins})
    assert all(e.refused and e.status == "refused" for e in refused)
    fixed = [
        twins[0],
        dict(twins[1], override={"path": "fix/m2.npz", "url": "https://y", "sha256": "b" * 64}),
    ]
    m1, m2 = parse_registry({"entries": fixed})
    assert not m1.refused and not m2.refused
    assert m2.duplicate_of == "m1" and m2.served.path == "fix/m2.npz"


def test_dinov2_base_release_file_is_flagged_and_replaced(data_dir, monkeypatch):
    entry = next(e for e in data.registry() if e.name == DINOV2_B)
    p16 = next(e for e in data.registry() if e.name == DINO_P16)
    assert entry.release.sha256 == p16.served.sha256  # the release's byte copy
    assert entry.duplicate_of == DINO_P16 and entry.status == "override"
    assert "d1860d3e71c2e42cd345438c861f19478d15a95d" in entry.served.url
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(data_dir))
    served = data.transform_path("dinov2-vit-base-p14", "norm")
    assert served == data_dir / "transforms-d1860d3/dinov2-vit-base-p14/norm/transform.npz"
    assert data.sha256sum(served) != p16.served.sha256
    genuine, dino = np.load(served), np.load(data.transform_path("dino-vit-base-p16", "norm"))
    assert genuine["weights"].shape != dino["weights"].shape or not np.array_equal(
        genuine["weights"], dino["weights"]
    )
    flagged = [r for r in data.verify([DINOV2_B]) if r.status == "flagged"]
    assert len(flagged) == 1 and "byte copy of " + DINO_P16 in flagged[0].message
    assert flagged[0].path == data_dir / "transforms/dinov2-vit-base-p14/norm/transform.npz"


# --- mirror, cache, verify ---------------------------------------------------------------------


def test_verify_passes_on_the_shared_copies(data_dir, monkeypatch):
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(data_dir))
    results = data.verify()
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    ok = {r.name for r in results if r.status == "ok"}
    expected = {
        "things/concepts",
        "things/item_names",
        "things/categories",
        "human/vice_embedding",
        DINOV2_B,
        DINO_P16,
        "transform/clip_ViT-L/14/visual",
        "transform/resnet18/avgpool",
        "transform/dinov2-vit-large-p14/norm",
    }
    assert expected <= ok
    assert {r.name for r in results if r.status == "absent"} >= {"things/triplets"}


def test_corrupted_mirror_copy_is_detected_and_not_used(data_dir, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    target = mirror / "things/things_concepts.tsv"
    target.parent.mkdir(parents=True)
    raw = bytearray((data_dir / "things/things_concepts.tsv").read_bytes())
    raw[1000] ^= 0x01
    target.write_bytes(bytes(raw))
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(mirror))
    [result] = data.verify(["things/concepts"])
    assert result.status == "mismatch" and not result.ok
    assert result.actual != result.expected and result.path == target
    with pytest.raises(data.ChecksumError, match="things_concepts.tsv.*sha256"):
        data.fetch("things/concepts")


def test_corrupted_cache_file_is_removed(data_dir, offline):
    cached = offline / "human/vice_things_embedding.npy"
    cached.parent.mkdir(parents=True)
    cached.write_bytes((data_dir / "human/vice_things_embedding.npy").read_bytes()[:-1] + b"x")
    with pytest.warns(DamagedCacheWarning, match="removed from the cache"):
        with pytest.raises(DataUnavailableError):  # the bad copy is dropped, says so, and the
            data.fetch("human/vice_embedding")  # re-download fails offline
    assert not cached.exists()


def test_mirror_file_is_preferred_to_cache(data_dir, monkeypatch, offline):
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(data_dir))
    assert data.fetch("things/item_names") == data_dir / "things/item_names.tsv"
    assert data.path("things/item_names") == data_dir / "things/item_names.tsv"
    assert not offline.exists()


# --- downloads ---------------------------------------------------------------------------------


def test_offline_missing_file_error_names_file_url_place_and_env(offline):
    entry = next(e for e in data.registry() if e.name == "human/vice_embedding")
    with pytest.raises(DataUnavailableError) as info:
        data.fetch("human/vice_embedding")
    message = str(info.value)
    assert "vice_things_embedding.npy" in message
    assert entry.served.url in message
    assert str(offline / "human/vice_things_embedding.npy") in message
    assert "GLOCAL_DATA_DIR" in message and "GLOCAL_CACHE_DIR" in message
    assert "\n" not in message
    assert files_under(offline) == []


def test_path_never_downloads(offline, monkeypatch):
    calls = fake_downloader(monkeypatch, b"x")
    with pytest.raises(DataUnavailableError, match="download=False"):
        data.path("transform/clip_RN50/visual")
    assert calls == []


def test_offline_switch_skips_the_network(offline, monkeypatch):
    calls = fake_downloader(monkeypatch, b"x")
    monkeypatch.setenv("GLOCAL_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match="GLOCAL_OFFLINE"):
        data.fetch("things/item_names")
    assert calls == []


def test_download_is_verified_then_renamed(data_dir, offline, monkeypatch):
    payload = (data_dir / "things/item_names.tsv").read_bytes()
    calls = fake_downloader(monkeypatch, payload)
    got = data.fetch("things/item_names")
    assert got == offline / "things/item_names.tsv" and got.read_bytes() == payload
    assert files_under(offline) == [got]  # no staging or temporary file left
    # only the (empty, reusable) lock file of the writer stays beside it
    assert sorted(got.parent.iterdir()) == [got, got.with_name("item_names.tsv.lock")]
    assert len(calls) == 1
    assert data.fetch("things/item_names") == got and len(calls) == 1  # served from the cache


def test_downloads_stage_to_unique_names_beside_the_target(data_dir, offline, monkeypatch):
    payload = (data_dir / "things/item_names.tsv").read_bytes()
    staged = []

    def download(url, output_file, pooch_instance):
        staged.append(Path(output_file))
        Path(output_file).write_bytes(payload)

    monkeypatch.setattr(_fetch, "_downloader", lambda: download)
    target = data.fetch("things/item_names")
    target.unlink()
    assert data.fetch("things/item_names") == target
    assert len(staged) == 2 and staged[0] != staged[1]
    for name in staged:
        assert name.parent == target.parent and not name.exists()
        assert re.fullmatch(r"\.item_names\.tsv\..+\.download", name.name), name.name


def test_download_with_wrong_checksum_leaves_nothing(data_dir, offline, monkeypatch):
    payload = (data_dir / "things/item_names.tsv").read_bytes().replace(b"aardvark", b"aardwolf")
    fake_downloader(monkeypatch, payload)
    with pytest.raises(data.ChecksumError, match="things/item_names"):
        data.fetch("things/item_names")
    assert files_under(offline) == []


def test_interrupted_download_leaves_no_complete_looking_file(data_dir, offline, monkeypatch):
    payload = (data_dir / "things/item_names.tsv").read_bytes()
    fake_downloader(monkeypatch, payload, fail_after=1000)
    with pytest.raises(DataUnavailableError, match="connection reset"):
        data.fetch("things/item_names")
    assert files_under(offline) == []


def _unpinned(monkeypatch, name):
    """Make registry entry ``name`` unpinned (no sha256, no git blob id) for this test."""
    from dataclasses import replace

    entry = _fetch.get_entry(name)
    bare = replace(entry, release=replace(entry.release, git_blob=None, sha256=None))
    real = _fetch.get_entry
    monkeypatch.setattr(_fetch, "get_entry", lambda n: bare if n == name else real(n))
    return bare


def _with_blob(monkeypatch, name, payload):
    """Pin registry entry ``name`` to the git blob id of ``payload``, computed here by hand."""
    import hashlib
    from dataclasses import replace

    blob = hashlib.sha1(b"blob %d\0" % len(payload) + payload).hexdigest()
    entry = _fetch.get_entry(name)
    pinned = replace(entry, release=replace(entry.release, git_blob=blob, sha256=None))
    real = _fetch.get_entry
    monkeypatch.setattr(_fetch, "get_entry", lambda n: pinned if n == name else real(n))
    return blob


def test_git_blob_ids_match_git(tmp_path):
    """Known values: ``git hash-object`` of an empty file and of 'hello world\\n'."""
    empty, hello = tmp_path / "empty", tmp_path / "hello"
    empty.write_bytes(b"")
    hello.write_bytes(b"hello world\n")
    assert data.git_blob_id(empty) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert data.git_blob_id(hello) == "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"


def test_sha256_is_pooch_and_agrees_with_sha256sum_the_tool(tmp_path):
    """pooch.file_hash replaced a hand-written chunked hashlib loop: known values of
    ``sha256sum`` (coreutils) for an empty file and 'hello world\\n', and a file of several
    read chunks against hashlib in one piece."""
    import hashlib

    empty, hello, big = tmp_path / "empty", tmp_path / "hello", tmp_path / "big"
    empty.write_bytes(b"")
    hello.write_bytes(b"hello world\n")
    payload = np.random.default_rng(0).bytes(3 * 65536 + 17)  # spans pooch's read chunks
    big.write_bytes(payload)
    assert data.sha256sum(empty) == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert data.sha256sum(hello) == (
        "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
    )
    assert data.sha256sum(big) == hashlib.sha256(payload).hexdigest()


def test_a_git_blob_pinned_download_is_checked_and_its_sha256_recorded(offline, monkeypatch):
    import hashlib

    name = "transform/resnet50/avgpool"
    calls = fake_downloader(monkeypatch, b"not the released bytes")
    with pytest.raises(data.ChecksumError, match="git blob id .* registry pins 44b7deff"):
        data.fetch(name)  # served without --allow-unpinned: the blob id pins it
    assert len(calls) == 1 and files_under(offline) == []
    payload = b"the released transform bytes"
    _with_blob(monkeypatch, name, payload)
    fake_downloader(monkeypatch, payload)
    got = data.fetch(name)
    assert got.read_bytes() == payload
    recorded = got.with_name(got.name + ".sha256").read_text().strip()
    assert recorded == hashlib.sha256(payload).hexdigest()
    [result] = data.verify([name])
    assert result.status == "ok" and "git blob id" in result.message
    got.write_bytes(b"changed later")
    assert data.verify([name])[0].status == "mismatch"
    with pytest.raises(data.ChecksumError, match="git blob id"):
        data.path(name)


def test_unpinned_file_is_refused_without_the_explicit_flag(offline, monkeypatch):
    calls = fake_downloader(monkeypatch, b"pretend transform bytes")
    name = "transform/resnet50/avgpool"
    _unpinned(monkeypatch, name)
    with pytest.raises(data.UnpinnedDataError) as info:
        data.fetch(name)
    message = str(info.value)
    assert message.startswith(f"cannot get {name!r} verified: its sha256 is not pinned")
    assert "refuses to serve its bytes unchecked" in message and "\n" not in message
    assert "--allow-unpinned" in message and "GLOCAL_ALLOW_UNPINNED=1" in message
    assert isinstance(info.value, DataUnavailableError)  # callers listing availability go on
    assert calls == [] and files_under(offline) == []
    # a copy someone put in the cache by hand is not served either
    cached = offline / "transforms/resnet50/avgpool/transform.npz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"hand-placed bytes")
    with pytest.raises(data.UnpinnedDataError):
        data.path(name)
    monkeypatch.setenv("GLOCAL_ALLOW_UNPINNED", "1")
    with pytest.warns(data.UnpinnedDataWarning):
        assert data.path(name) == cached
    with pytest.raises(data.UnpinnedDataError):
        data.path(name, allow_unpinned=False)  # the argument beats the environment


def test_unpinned_file_warns_with_its_sha256_and_is_held_to_it(offline, monkeypatch):
    payload = b"pretend transform bytes"
    fake_downloader(monkeypatch, payload)
    name = "transform/vgg16/classifier.3"
    _unpinned(monkeypatch, name)
    with pytest.warns(data.UnpinnedDataWarning, match="unpinned.*sha256 [0-9a-f]{64}"):
        got = data.fetch(name, allow_unpinned=True)
    assert got.read_bytes() == payload
    [result] = data.verify([name])
    assert result.status == "unpinned" and result.actual == data.sha256sum(got)
    got.write_bytes(b"changed later")
    assert data.verify([name])[0].status == "mismatch"
    with pytest.raises(data.ChecksumError, match="vgg16"):
        data.path(name, allow_unpinned=True)
    with pytest.raises(data.ChecksumError, match="vgg16"):  # not silently downloaded again
        data.fetch(name, allow_unpinned=True)
    assert got.read_bytes() == b"changed later"


def test_table_columns_are_checked(tmp_path):
    [entry] = parse_registry(
        {
            "entries": [
                {
                    "name": "t",
                    "path": "t.csv",
                    "url": "https://x",
                    "sha256": None,
                    "license": "l",
                    "citation": "c",
                    "description": "d",
                    "columns": ["image1", "image2", "image3", "choice"],
                }
            ]
        }
    )
    good = tmp_path / "good.csv"
    good.write_text("image1,image2,image3,choice,subject_id\n1,2,3,1,7\n")
    _fetch._check_columns(entry, good)
    bad = tmp_path / "bad.csv"
    bad.write_text("img1\timg2\timg3\tchoice\n1\t2\t3\t1\n")
    with pytest.raises(GlocalError, match=r"bad.csv.*missing column.*image1"):
        _fetch._check_columns(entry, bad)


def test_unknown_names_get_suggestions():
    with pytest.raises(GlocalError, match="did you mean things/concepts"):
        data.fetch("things/concept")
    with pytest.raises(GlocalError, match="released model/module pairs.*clip_RN50/visual"):
        data.transform_path("clip_RN50", "logits")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert data.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("GLOCAL_CACHE_DIR")
    assert "glocal" in str(data.cache_dir())


# --- THINGS image folder -------------------------------------------------------------------------


def test_things_images_need_a_manual_download(offline):
    with pytest.raises(DataUnavailableError, match=r"osf\.io/jum2f.*password"):
        data.fetch("things/images")


def _image_archive(archive: Path, n: int = 1854) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(n):
            zf.writestr(f"object_images/c{i}/c{i}_01b.jpg", b"jpg")
    return archive


def test_hand_downloaded_image_archive_is_unpacked(offline):
    archive = _image_archive(offline / "things/images_THINGS.zip")
    with pytest.raises(data.UnpinnedDataError, match=r"refusing to unpack .*--allow-unpinned"):
        data.fetch("things/images")  # the archive's sha256 is not pinned
    assert not (offline / "things/object_images").exists()
    with pytest.warns(data.UnpinnedDataWarning, match=data.sha256sum(archive)):
        got = data.fetch("things/images", allow_unpinned=True)
    assert got == offline / "things/object_images"
    assert len(list(got.iterdir())) == 1854
    assert not [p for p in got.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    assert data.verify(["things/images"])[0].status == "ok"
    assert data.fetch("things/images") == got  # an unpacked folder needs no flag


def test_pinned_image_archive_is_checked_before_unpacking(offline, monkeypatch):
    archive = _image_archive(offline / "things/images_THINGS.zip")
    entry = data._fetch.get_entry("things/images")
    wrong = replace(entry, unzip={**entry.unzip, "sha256": "0" * 64})
    monkeypatch.setattr(_fetch, "get_entry", lambda name: wrong)
    assert wrong.checksum == "pinned"
    with pytest.raises(data.ChecksumError, match=r"images_THINGS.zip has sha256"):
        data.fetch("things/images")
    assert not (offline / "things/object_images").exists()
    right = replace(entry, unzip={**entry.unzip, "sha256": data.sha256sum(archive)})
    monkeypatch.setattr(_fetch, "get_entry", lambda name: right)
    assert len(list(data.fetch("things/images").iterdir())) == 1854  # no flag needed


def test_incomplete_image_folder_is_not_overwritten(offline):
    _image_archive(offline / "things/images_THINGS.zip")
    partial = offline / "things/object_images/c0"
    partial.mkdir(parents=True)
    with pytest.raises(GlocalError, match=r"object_images exists but is incomplete.*remove it"):
        data.fetch("things/images", allow_unpinned=True)
    assert partial.is_dir()


# --- downstream datasets -----------------------------------------------------------------------


def test_downstream_arguments_are_validated(tmp_path):
    with pytest.raises(GlocalError, match="unknown downstream dataset"):
        data.downstream_dataset("mnist", "train")
    with pytest.raises(GlocalError, match="unknown split 'val'"):
        data.downstream_dataset("cifar10", "val")
    with pytest.raises(GlocalError, match="partition"):
        data.downstream_dataset("dtd", "train", partition=11)


def test_imagenet_comes_only_from_a_user_path(monkeypatch, tmp_path):
    monkeypatch.delenv("GLOCAL_IMAGENET_DIR", raising=False)
    with pytest.raises(GlocalError, match="cannot be downloaded automatically"):
        data.downstream_dataset("imagenet", "val")
    with pytest.raises(DataUnavailableError, match="not a folder"):
        data.downstream_dataset("imagenet", "val", root=tmp_path / "nope")


def test_downstream_offline_errors(tmp_path, offline):
    with pytest.raises(DataUnavailableError, match=r"download=False.*cifar-10-python"):
        data.downstream_dataset("cifar10", "test", root=tmp_path / "c10", download=False)
    with pytest.raises(DataUnavailableError, match=r"'cifar100-coarse'.*GLOCAL_CACHE_DIR"):
        data.downstream_dataset("cifar100-coarse", "train")
    assert (offline / "downstream/cifar100").is_dir()


def test_cifar100_coarse_labels_replace_fine_ones(tmp_path):
    import pickle

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "test").write_bytes(pickle.dumps({"coarse_labels": [3, 0, 19]}))
    names = [f"s{i}" for i in range(20)]
    (folder / "meta").write_bytes(pickle.dumps({"coarse_label_names": names}))

    class Fake:
        targets = [50, 7, 99]

    got = datasets._cifar100_coarse(Fake(), tmp_path, "test")
    assert got.targets == [3, 0, 19] and len(got.classes) == 20


def test_sun397_uses_the_official_partition(tmp_path, monkeypatch):
    sun = tmp_path / "SUN397"
    (sun / "a/abbey").mkdir(parents=True)
    (sun / "b/bakery/shop").mkdir(parents=True)
    (sun / "ClassName.txt").write_text("/a/abbey\n/b/bakery/shop\n")
    for rel in ("a/abbey/sun_1.jpg", "a/abbey/sun_2.jpg", "b/bakery/shop/sun_3.jpg"):
        (sun / rel).write_bytes(b"jpg")
    partitions = tmp_path / "Partitions.zip"
    with zipfile.ZipFile(partitions, "w") as zf:
        zf.writestr("Training_01.txt", "/a/abbey/sun_1.jpg\n/b/bakery/shop/sun_3.jpg\n")
        zf.writestr("Testing_01.txt", "/a/abbey/sun_2.jpg\n")
    monkeypatch.setattr(datasets, "fetch", lambda name: partitions)
    train = data.downstream_dataset("sun397", "train", root=tmp_path, download=False)
    assert [p.name for p in train.files] == ["sun_1.jpg", "sun_3.jpg"]
    assert train.targets == [0, 1] and train.classes == ["abbey", "bakery/shop"]
    test = data.downstream_dataset("sun397", "test", root=tmp_path, download=False)
    assert len(test) == 1 and test.targets == [0]


def test_unpinned_byte_copy_of_another_entry_is_refused(data_dir, offline, monkeypatch):
    payload = (data_dir / "transforms/resnet18/avgpool/transform.npz").read_bytes()
    fake_downloader(monkeypatch, payload)
    _unpinned(monkeypatch, "transform/resnet50/avgpool")
    with pytest.raises(data.ChecksumError, match="byte copy of 'transform/resnet18/avgpool'"):
        data.fetch("transform/resnet50/avgpool", allow_unpinned=True)
    assert files_under(offline) == []


def test_a_mistyped_mirror_is_an_error_not_a_silent_download(monkeypatch, tmp_path):
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(tmp_path / "no-such-folder"))
    with pytest.raises(GlocalError, match="GLOCAL_DATA_DIR=.*no-such-folder is not a folder"):
        data.fetch("things/concepts")
