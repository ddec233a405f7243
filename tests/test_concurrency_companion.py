"""Caches under concurrency: real processes ask for the same thing at once on a cold cache.

Each test starts its processes together (a file barrier), slows the expensive step down so
that the others arrive while it runs, and logs every time the work is really done. Of N
processes exactly one may do the work; the others wait and reuse its complete result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _notebooks import make_site, placeholder_notebooks

REPO = Path(__file__).resolve().parents[1]

PRELUDE = '''
import json, os, sys, time
from pathlib import Path

SYNC, N, ME = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
WORK = Path(sys.argv[4])
LOG = WORK / "work.log"


def barrier():
    """Wait until all N processes got here (imports done), so that they really race."""
    (SYNC / f"ready-{ME}").touch()
    deadline = time.time() + 120
    while len(list(SYNC.glob("ready-*"))) < N:
        if time.time() > deadline:
            raise SystemExit("barrier timeout")
        time.sleep(0.005)


def did_the_work(what):
    """Log that this process really did the expensive work, then take a while doing it."""
    with open(LOG, "a") as fh:
        fh.write(f"{what} by {ME}\\n")
    time.sleep(0.6)


def report(value):
    print("RESULT " + json.dumps(value))
'''


def race(script: str, work: Path, n: int = 2, env: dict[str, str] | None = None) -> list:
    """Run ``script`` in ``n`` processes started together; return each one's RESULT value."""
    sync = work / "sync"
    sync.mkdir(parents=True)
    code = PRELUDE + textwrap.dedent(script)
    environment = {**os.environ, "PYTHONPATH": f"{REPO / 'tests'}{os.pathsep}{REPO}",
                   "OMP_NUM_THREADS": "1", **(env or {})}  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(sync), str(n), str(i), str(work)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            cwd=work,
        )
        for i in range(n)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
        line = next(line for line in out.splitlines() if line.startswith("RESULT "))
        results.append(json.loads(line.removeprefix("RESULT ")))
    return results


def work_log(work: Path) -> list[str]:
    log = work / "work.log"
    return sorted(log.read_text().splitlines()) if log.is_file() else []


@pytest.mark.slow
def test_two_notebooks_fitting_the_same_transform_fit_it_once(tmp_path: Path) -> None:
    script = """
    import numpy as np
    import companion.paper.fits as cf
    from companion.paper.inputs import Inputs
    from companion.paper.triplets import TripletData
    from glocal.planted import planted_problem
    from glocal.transform import GlocalTransform

    fit = GlocalTransform.fit

    def counted_fit(self, *args, **kwargs):
        did_the_work("fit")
        return fit(self, *args, **kwargs)

    GlocalTransform.fit = counted_fit
    p = planted_problem(n_objects=60, n_features=8, n_dims=3, n_triplets=3000, n_contrast=50)
    split = TripletData(train=p.triplets[:2500], val=p.triplets[2500:], test=p.triplets[:10],
                        train_objects=np.arange(60), heldout=np.arange(0), source="planted",
                        ceiling=1.0, ceiling_label="-")
    inputs = Inputs("planted", "planted", "toy", "fc", p.X, p.contrast, p.contrast, split)
    barrier()
    est = cf.fit_transform(inputs, "global", {"max_steps": 3, "triplet_batch_size": None,
                                              "device": "cpu"})
    report({"weights": est.weights_.round(6).tolist(), "model": est.metadata_.get("model")})
    """
    cache = tmp_path / "cache"
    results = race(script, tmp_path, n=2, env={"GLOCAL_CACHE_DIR": str(cache)})
    assert work_log(tmp_path) == ["fit by 0"] or work_log(tmp_path) == ["fit by 1"]
    assert results[0] == results[1] and results[0]["model"] == "toy"
    files = sorted(p.name for p in (cache / "fits").iterdir())
    assert len(files) == 2 and files[0].endswith(".npz") and files[1] == files[0] + ".lock"


NOTEBOOK_RUN = """
import nbformat
import papermill
import companion.pipeline.kernel
from companion.pipeline.runner import Layout, run_notebooks

def fake_execute(input_path, output_path, parameters=None, **kwargs):
    did_the_work(Path(input_path).stem)
    nb = nbformat.read(input_path, as_version=4)
    nb.metadata["papermill"] = {"parameters": parameters, "by": ME}
    nbformat.write(nb, output_path)

papermill.execute_notebook = fake_execute
companion.pipeline.kernel.kernel_name = lambda: "fake-kernel"
root = Path(os.environ["NOTEBOOK_ROOT"])
layout = Layout.create("tiny", root=root, executed_dir=root / "executed")
barrier()
report(vars(run_notebooks("tiny", layout, force=FORCE)))
"""


@pytest.mark.parametrize("force", [False, True])
def test_two_reproduce_runs_execute_each_notebook_once(tmp_path: Path, force: bool) -> None:
    names = ["01_first", "02_second"]
    placeholder_notebooks(tmp_path / "repo" / "notebooks", names)
    executed = tmp_path / "repo" / "executed"
    env = {"NOTEBOOK_ROOT": str(tmp_path / "repo")}
    if force:  # a previous run left current copies: --force runs them once more, not twice
        race(NOTEBOOK_RUN.replace("FORCE", "False"), tmp_path / "before", n=1, env=env)
        before = {name: (executed / f"{name}.key.json").read_text() for name in names}
    results = race(NOTEBOOK_RUN.replace("FORCE", str(force)), tmp_path, n=2, env=env)
    assert [line.split(" by ")[0] for line in work_log(tmp_path)] == names  # once each in all
    for report in results:  # both runs end with every notebook current: ran here or waited
        assert sorted(report["ran"] + report["skipped"]) == names
    assert sorted(results[0]["ran"] + results[1]["ran"]) == names
    for name in names:
        output, key = executed / f"{name}.ipynb", executed / f"{name}.key.json"
        assert output.is_file() and json.loads(key.read_text())["key"]
        if force:
            assert key.read_text() != before[name]
    assert not [p.name for p in executed.iterdir() if p.name.startswith(".")]  # no temp files


def test_two_book_builds_build_once_and_share_the_site(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", ["01_first"])
    placeholder_notebooks(tmp_path / "executed", ["01_first"])
    script = """
    import companion.pipeline.book_build as bb

    def fake_jupyter_book(root, stage, log_file):
        did_the_work("build")
        html = stage / "_build" / "html"
        html.mkdir(parents=True)
        (html / "index.html").write_text(f"<html>built by {ME}</html>")
        log_file.write_text("ok")
        return html

    bb._run_jupyter_book = fake_jupyter_book
    barrier()
    index = bb.build_book(WORK / "site", WORK / "executed", WORK / "build", profile="tiny")
    report({"index": str(index), "html": index.read_text()})
    """
    results = race(script, tmp_path, n=2)
    assert len(work_log(tmp_path)) == 1
    assert results[0] == results[1]  # the second build returned the first one's site
    build = tmp_path / "build"
    assert Path(results[0]["index"]) == build / "html" / "index.html"
    assert json.loads((build / "book.key.json").read_text())["profile"] == "tiny"
    assert not (build / ".jupyter-book").exists() and not (build / ".html.old").exists()
    assert (site / "book" / "results" / "01_first.ipynb").is_file()


def test_two_processes_install_the_kernelspec_once(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    script = f"""
    sys.prefix = {str(prefix)!r}  # a fresh environment: no kernelspec installed yet
    import companion.pipeline.kernel as ck

    write_spec = ck._write_spec

    def counted_write(kernels_dir):
        did_the_work("write")
        write_spec(kernels_dir)

    ck._write_spec = counted_write
    barrier()
    report(ck.kernel_name())
    """
    env = {"JUPYTER_DATA_DIR": str(tmp_path / "user"), "JUPYTER_PATH": "",
           "JUPYTER_PREFER_ENV_PATH": "1"}  # fmt: skip
    assert race(script, tmp_path, n=3, env=env) == ["glocal"] * 3
    assert len(work_log(tmp_path)) == 1
    spec = json.loads((prefix / "share/jupyter/kernels/glocal/kernel.json").read_text())
    assert os.path.samefile(spec["argv"][0], sys.executable)


BUSY_CELLS = [
    "import os, pathlib",
    # A large output makes each of papermill's saves (at every cell's start and end) slow.
    "print('x' * 500_000)",
    *["pass"] * 20,
    "folder = pathlib.Path(results_dir)\nfolder.mkdir(parents=True, exist_ok=True)\n"
    "(folder / 'cwd.txt').write_text(os.getcwd())",
]


def _busy_notebook(path: Path) -> None:
    """A real notebook that saves often, then records its kernel's folder in its results."""
    import nbformat

    params = nbformat.v4.new_code_cell(
        'profile = "quick"\nresults_dir = "results/placeholder"\nseed = 0\noverrides = {}'
    )
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(
        cells=[params, *(nbformat.v4.new_code_cell(source) for source in BUSY_CELLS)]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.mark.slow
def test_notebooks_run_at_once_start_in_notebooks_and_write_nowhere_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real kernels, three at a time, run from another folder: every kernel starts in
    notebooks/, nothing appears outside results/ and notebooks/executed/, and the process's
    working folder never moves (papermill's cwd= was an os.chdir that threads undid for each
    other: a kernel started in the checkout wrote to ../results)."""
    import threading

    from _notebooks import write_profile

    from companion.pipeline.runner import Layout, run_notebooks

    top = tmp_path.resolve()
    checkout, elsewhere = top / "checkout", top / "elsewhere"
    names = [f"{i:02d}_busy" for i in range(1, 6)]
    for name in names:
        _busy_notebook(checkout / "notebooks" / f"{name}.ipynb")
        write_profile(checkout / "notebooks", name, {"tiny": {}})
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    layout = Layout.create("tiny", root=checkout)
    allowed = (layout.results_dir, layout.executed_dir)

    def listing() -> list[Path]:  # all but the allowed folders, their contents and parents
        def mine(p: Path) -> bool:
            return any(p.is_relative_to(a) or a.is_relative_to(p) for a in allowed)

        return sorted(p for p in top.rglob("*") if not mine(p))

    before = listing()
    # papermill's local file handler changes to the folder an earlier run in this process told
    # it, around every read and write, unless the runner stops it (in CI: the repository root)
    from papermill.iorw import papermill_io

    papermill_io.get_handler("local")._cwd = str(checkout)
    # every change of the process's folder, however short (the watcher below samples)
    chdirs: list[str] = []
    real_chdir = os.chdir

    def recording_chdir(path: str | os.PathLike[str]) -> None:
        chdirs.append(str(path))
        real_chdir(path)

    monkeypatch.setattr(os, "chdir", recording_chdir)
    folders: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            folders.add(os.getcwd())
            stop.wait(0.0005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        for _ in range(2):
            report = run_notebooks("tiny", layout, jobs=3, force=True)
            assert report.ran == names
            assert os.getcwd() == str(elsewhere)
            for name in names:
                record = layout.results_dir / name / "cwd.txt"
                assert record.read_text() == str(layout.notebooks_dir), name
                record.unlink()
            assert listing() == before
    finally:
        stop.set()
        watcher.join()
    assert folders == {str(elsewhere)}
    assert chdirs == []  # (the plan's papermill.inspect_notebook went to the checkout and back)
