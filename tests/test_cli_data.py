"""``glocal data list | fetch | verify | path`` through the real command-line entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from glocal import cli, data
from glocal.data import _fetch


@pytest.fixture(autouse=True)
def offline(no_network: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network, a private cache, no mirror; only the data sub-command is registered."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("data",))
    return no_network


def test_data_is_a_registered_sub_command():
    """The real command line (not the one patched above) sends ``data list`` to its module."""
    import importlib

    importlib.reload(cli)  # the module's own tuple, not the one patched above
    args = cli.build_parser().parse_args(["data", "list"])
    assert args.command == "data" and args.func.__module__ == "glocal.commands.data"
    assert args.func.__name__ == "_list"


def _list_rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.splitlines()}


def test_list_shows_every_entry(capsys, monkeypatch):
    monkeypatch.delenv("GLOCAL_ALLOW_UNPINNED", raising=False)
    assert cli.main(["data", "list"]) == 0
    captured = capsys.readouterr()
    rows = _list_rows(captured.out)
    assert rows["NAME"][:3] == ["NAME", "STATUS", "SHA256"]
    for entry in data.registry():
        assert entry.name in rows
    assert rows["things/concepts"][1:3] == ["pinned", "pinned"]
    for name in ("resnet50/avgpool", "vgg16/classifier.3", "alexnet/classifier.4"):
        assert rows[f"transform/{name}"][1:3] == ["pinned", "git-blob"]
    assert rows["things/images"][1:3] == ["manual", "unpinned"]  # its archive has no sha256
    assert rows["transform/dinov2-vit-base-p14/norm"][1:3] == ["override", "flagged"]
    assert "unpinned: no sha256 known, served only with --allow-unpinned" in captured.err
    monkeypatch.setenv("GLOCAL_ALLOW_UNPINNED", "1")
    assert cli.main(["data", "list"]) == 0
    rows = _list_rows(capsys.readouterr().out)
    assert rows["things/images"][2] == "unpinned(allowed)"


def test_verify_on_shared_copies(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(data_dir))
    assert cli.main(["data", "verify"]) == 0
    captured = capsys.readouterr()
    assert "ok        things/concepts" in captured.out
    assert "flagged   transform/dinov2-vit-base-p14/norm" in captured.out
    assert "mismatch" not in captured.out and "1 flagged" in captured.err


def test_verify_reports_a_mismatch_with_exit_1(data_dir, monkeypatch, tmp_path, capsys):
    mirror = tmp_path / "mirror"
    copy = mirror / "transforms/resnet18/avgpool/transform.npz"
    copy.parent.mkdir(parents=True)
    raw = bytearray((data_dir / "transforms/resnet18/avgpool/transform.npz").read_bytes())
    raw[-5] ^= 0xFF
    copy.write_bytes(bytes(raw))
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(mirror))
    assert cli.main(["data", "verify", "transform/resnet18/avgpool"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("mismatch  transform/resnet18/avgpool") and str(copy) in out


def test_path_prints_the_mirror_copy(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(data_dir))
    assert cli.main(["data", "path", "transform/clip_ViT-L/14/visual"]) == 0
    assert capsys.readouterr().out.strip() == str(
        data_dir / "transforms/clip_ViT-L/14/visual/transform.npz"
    )


def test_missing_file_is_one_line_and_exit_2(capsys):
    assert cli.main(["data", "fetch", "things/concepts"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("glocal data: error: cannot get")
    assert "things_concepts.tsv" in err and "raw.githubusercontent.com" in err


def test_bad_names_exit_2(capsys):
    assert cli.main(["data", "path", "vice"]) == 2
    assert "unknown data name 'vice'" in capsys.readouterr().err
    assert cli.main(["data", "fetch"]) == 2
    assert "--all" in capsys.readouterr().err


def test_fetch_checks_the_git_blob_id_and_prints_the_sha256(monkeypatch, offline, capsys):
    import hashlib
    from dataclasses import replace

    monkeypatch.delenv("GLOCAL_ALLOW_UNPINNED", raising=False)
    payload = b"alexnet transform bytes"
    name = "transform/alexnet/classifier.4"

    def download(url, output_file, pooch_instance):
        Path(output_file).write_bytes(payload)

    monkeypatch.setattr(_fetch, "_downloader", lambda: download)
    target = offline / "transforms/alexnet/classifier.4/transform.npz"
    assert cli.main(["data", "fetch", name]) == 2  # not the released bytes
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "git blob id" in err and not target.exists()
    blob = hashlib.sha1(b"blob %d\0" % len(payload) + payload).hexdigest()
    entry = _fetch.get_entry(name)
    pinned = replace(entry, release=replace(entry.release, git_blob=blob))
    real = _fetch.get_entry
    monkeypatch.setattr(_fetch, "get_entry", lambda n: pinned if n == name else real(n))
    import glocal.data._registry as registry

    monkeypatch.setattr(registry, "get_entry", lambda n: pinned if n == name else real(n))
    assert cli.main(["data", "fetch", name]) == 0  # pinned: no --allow-unpinned needed
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{name}\t{target}"
    assert f"its sha256 is {hashlib.sha256(payload).hexdigest()}" in captured.err
    assert cli.main(["data", "path", name]) == 0
    assert capsys.readouterr().out.strip() == str(target)


def test_fetch_all_skips_unpinned_entries_unless_allowed(monkeypatch, capsys):
    from dataclasses import replace

    monkeypatch.delenv("GLOCAL_ALLOW_UNPINNED", raising=False)
    entries = data.registry()
    unpinned = "transform/resnet50/avgpool"
    entries = [replace(e, release=replace(e.release, git_blob=None)) if e.name == unpinned
               else e for e in entries]  # fmt: skip
    monkeypatch.setattr(data, "registry", lambda: entries)
    asked = []

    def fake_fetch(name, download=True, *, allow_unpinned=None):
        asked.append((name, allow_unpinned))
        return Path("/x") / name

    monkeypatch.setattr(data, "fetch", fake_fetch)
    assert cli.main(["data", "fetch", "--all"]) == 0
    err = capsys.readouterr().err
    names = {name for name, _ in asked}
    assert "things/concepts" in names and unpinned not in names
    assert "transform/vgg16/classifier.3" in names  # pinned by its git blob id
    assert "skipped 1 unpinned entries" in err and "--allow-unpinned" in err
    asked.clear()
    assert cli.main(["data", "fetch", "--all", "--allow-unpinned"]) == 0
    assert (unpinned, True) in asked
    assert "skipped" not in capsys.readouterr().err
