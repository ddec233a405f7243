"""The smoke profile end to end: every paper notebook through the paper's code path, offline.

From an empty cache: the runner plans, generates the smoke world, extracts every feature store
in shards on a Dask LocalCluster, runs notebook 01's searches and fits, runs all notebooks
(two at a time, their searches on the same cluster) and builds the book. The first run is
killed once some stores are finished; the second run must keep those stores and finish the
rest. Budget: under 10 minutes on two cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from _notebooks import REPO, make_site, toc_results

from companion.paper.inputs import SMOKE_NOTES

BUDGET_S = 600


def _finished_stores(cache: Path) -> dict[Path, tuple[int, int]]:
    """Complete feature stores (not shards, not partial files): path -> (inode, mtime)."""
    found = {}
    for path in (cache / "features").rglob("*.h5"):
        if ".shards" in path.parent.name:
            continue
        st = path.stat()
        found[path] = (st.st_ino, st.st_mtime_ns)
    return found


@pytest.mark.slow
def test_smoke_profile_runs_every_notebook_and_resumes_after_a_kill(
    data_dir: Path, tmp_path: Path
) -> None:
    start = time.perf_counter()
    cache = tmp_path / "cache"
    env = {**os.environ, "GLOCAL_CACHE_DIR": str(cache), "GLOCAL_DATA_DIR": str(data_dir),
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    env.pop("GLOCAL_SCHEDULER", None)
    site = make_site(tmp_path / "site")
    executed, build = tmp_path / "executed", tmp_path / "build"
    command = [
        sys.executable, "-m", "companion", "--profile", "smoke", "--jobs", "2",
        "--root", str(site), "--notebooks-dir", str(REPO / "notebooks"),
        "--executed-dir", str(executed), "--results-dir", str(tmp_path / "results"),
        "--build-dir", str(build),
    ]  # fmt: skip

    # 1. killed once a few feature stores are finished (the whole process group: the
    #    runner, its Dask workers, any kernel)
    log = open(tmp_path / "killed.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if cache.exists() and len(_finished_stores(cache)) >= 3:
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    kept = _finished_stores(cache)
    assert len(kept) >= 3, (tmp_path / "killed.log").read_text()[-2000:]

    # 2. the rerun keeps what was finished and does the rest
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=BUDGET_S)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "feature stores present" in rerun.stderr
    for path, stamp in kept.items():
        st = path.stat()
        assert (st.st_ino, st.st_mtime_ns) == stamp, f"{path} was extracted again"
    stores = _finished_stores(cache)
    # 3 models x (THINGS, ImageNet, 2 splits x 9 task datasets) + page 10: 3 human image sets
    # of one model + page 11, for one model: source-val of Entity-13/30, 3 splits of Living-17
    # and Nonliving-26, ImageNet-C clean and 3 corruptions x 3 severities
    assert len(stores) == 63 + 2 + 6 + 1 + 9
    assert not list((cache / "features").rglob("*.shards"))

    # 3. every notebook ran cleanly, says that its numbers mean nothing, and has a page
    pages = toc_results()
    for name in pages:
        nb = nbformat.read(executed / f"{name}.ipynb", as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
        shown = "".join(
            "".join(o.get("data", {}).get("text/markdown", ""))
            for c in nb.cells for o in c.get("outputs", [])
        )  # fmt: skip
        assert any(note[:40] in shown for note in SMOKE_NOTES.values()), f"{name}: no note"
        html = (build / "html" / "book" / "results" / f"{name}.html").read_text()
        assert "Smoke profile" in html, f"{name}: the page does not say it is the smoke profile"
    table = nbformat.read(executed / "01_alignment_table.ipynb", as_version=4)
    assert "official" in str(table.cells)  # the released transforms' reference column

    # 4. a third run finds everything current, and the plan finds every store and fit
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "11 up to date" in again.stderr, again.stderr[-2000:]
    plan = subprocess.run([*command, "--plan"], env=env, capture_output=True, text=True)
    assert "feature stores (model x dataset x split" in plan.stdout
    assert "81 of 81 present" in plan.stdout and "3 of 3 present" in plan.stdout
    assert time.perf_counter() - start < BUDGET_S
