"""Cache writers under real concurrency: two processes fetch or unpack the same registry entry
into one cold cache at the same moment; both must get the same complete result, made once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

#: Put at the top of every child script: ``wait_for_go()`` marks the child ready and blocks
#: until the parent releases all children at once (argv[1]: ready file, argv[2]: go file).
PRELUDE = """
import os, sys, time, json
from pathlib import Path

def wait_for_go():
    Path(sys.argv[1]).touch()
    while not Path(sys.argv[2]).exists():
        time.sleep(0.005)

def record(marker):
    with open(marker, "a") as fh:  # one short O_APPEND write per event: safe across processes
        fh.write(f"{os.getpid()}\\n")
"""


def run_together(
    script: str, argv: list[list[str]], env: dict[str, str], timeout: float = 180.0
) -> list[subprocess.CompletedProcess]:
    """Run ``PRELUDE + script`` once per argument list, release all at the same moment, wait."""
    with tempfile.TemporaryDirectory() as sync:
        go = Path(sync) / "go"
        ready = [Path(sync) / f"ready{i}" for i in range(len(argv))]
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", PRELUDE + script, str(flag), str(go), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for flag, args in zip(ready, argv, strict=True)
        ]
        deadline = time.monotonic() + timeout
        try:
            while not all(flag.exists() for flag in ready):
                if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                    break  # a child died while starting: report it below
                time.sleep(0.01)
            go.touch()
            results = []
            for p, args in zip(procs, argv, strict=True):
                out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
                results.append(subprocess.CompletedProcess(args, p.returncode, out, err))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    return results


def child_env(cache: Path) -> dict[str, str]:
    """The environment of a child: this one, with ``cache`` as the only (cold) data location."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLOCAL_")}
    env["GLOCAL_CACHE_DIR"] = str(cache)
    return env


def assert_all_succeeded(results: list[subprocess.CompletedProcess]) -> list[dict]:
    """Every child exited 0; their last stdout lines parsed as JSON."""
    for r in results:
        assert r.returncode == 0, f"child {r.args} failed:\n{r.stderr[-3000:]}"
    return [json.loads(r.stdout.strip().splitlines()[-1]) for r in results]


FETCH_SCRIPT = """
from glocal.data import _fetch

payload, marker = Path(sys.argv[3]).read_bytes(), sys.argv[4]

def slow_download(url, output_file, pooch_instance):
    record(marker)  # one line per download
    with open(output_file, "wb") as fh:
        for start in range(0, len(payload), len(payload) // 8 + 1):
            fh.write(payload[start : start + len(payload) // 8 + 1])
            fh.flush()
            time.sleep(0.1)

_fetch._downloader = lambda: slow_download
wait_for_go()
print(json.dumps({"path": str(_fetch.fetch(sys.argv[5]))}))
"""


def test_two_processes_fetch_the_same_file_once(data_dir: Path, tmp_path: Path) -> None:
    cache, marker = tmp_path / "cache", tmp_path / "downloads.log"
    source = data_dir / "things/item_names.tsv"  # the "server": a local copy, pinned sha256
    args = [str(source), str(marker), "things/item_names"]
    results = assert_all_succeeded(run_together(FETCH_SCRIPT, [args, args], child_env(cache)))
    target = cache / "things/item_names.tsv"
    assert [r["path"] for r in results] == [str(target), str(target)]
    assert target.read_bytes() == source.read_bytes()
    # one process downloaded; the other waited for the lock and then found the verified file
    assert len(marker.read_text().splitlines()) == 1
    leftovers = sorted(p.name for p in target.parent.iterdir())
    assert leftovers == ["item_names.tsv", "item_names.tsv.lock"]  # no staging file left


UNPACK_SCRIPT = """
import zipfile
from glocal.data import _fetch

marker, real_extractall = sys.argv[3], zipfile.ZipFile.extractall

def slow_extractall(self, *args, **kwargs):
    record(marker)  # one line per unpacking
    time.sleep(1.0)  # a real 4.7 GB archive takes minutes: make the window wide
    return real_extractall(self, *args, **kwargs)

zipfile.ZipFile.extractall = slow_extractall
wait_for_go()
print(json.dumps({"path": str(_fetch.fetch("things/images", allow_unpinned=True))}))
"""


def test_two_processes_unpack_the_same_archive_once(tmp_path: Path) -> None:
    cache, marker = tmp_path / "cache", tmp_path / "unpacks.log"
    archive = cache / "things/images_THINGS.zip"  # the hand-downloaded archive
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(1854):
            zf.writestr(f"object_images/c{i:04d}/c{i:04d}_01b.jpg", f"jpg {i}")
    results = run_together(UNPACK_SCRIPT, [[str(marker)], [str(marker)]], child_env(cache))
    paths = [r["path"] for r in assert_all_succeeded(results)]
    target = cache / "things/object_images"
    assert paths == [str(target), str(target)]
    folders = sorted(p.name for p in target.iterdir())
    assert len(folders) == 1854 and folders[0] == "c0000"
    assert (target / "c1853/c1853_01b.jpg").read_text() == "jpg 1853"
    assert len(marker.read_text().splitlines()) == 1  # unpacked once
    hidden = [p.name for p in archive.parent.iterdir() if p.name.startswith(".")]
    assert hidden == []  # no temporary folder left
