"""The notebook runner: profiles, cache keys, skips without a kernel, failures, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import papermill
import pytest
from _notebooks import make_site, placeholder_notebooks, write_notebook, write_profile
from papermill.exceptions import PapermillExecutionError

import companion.pipeline.book_build
import companion.pipeline.kernel
import companion.pipeline.notebooks
import glocal
from companion.pipeline.runner import (
    THREAD_VARIABLES,
    Layout,
    kernel_threads,
    key_path,
    reproduce,
    run_notebooks,
)
from glocal import data
from glocal.cli import main
from glocal.errors import GlocalError
from glocal.io import current_umask, file_lock

NAMES = ["01_first", "02_second"]


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """Two placeholder notebooks and a temporary layout (nothing under the repository)."""
    placeholder_notebooks(tmp_path / "notebooks", NAMES)
    return Layout.create(
        "tiny",
        root=tmp_path,
        notebooks_dir=tmp_path / "notebooks",
        executed_dir=tmp_path / "executed",
        results_dir=tmp_path / "results" / "tiny",
        build_dir=tmp_path / "build",
    )


class FakePapermill:
    """Stands in for papermill.execute_notebook: copies the notebook and records each call."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, input_path, output_path, parameters=None, **kwargs):
        self.calls.append(
            {"input": input_path, "output": output_path, "parameters": parameters, **kwargs}
        )
        nb = nbformat.read(input_path, as_version=4)
        nb.metadata["papermill"] = {"parameters": parameters}
        nbformat.write(nb, output_path)
        return nb

    @property
    def ran(self) -> list[str]:
        return [Path(call["input"]).stem for call in self.calls]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakePapermill:
    """Replace papermill and the kernelspec lookup: no kernel is ever started."""
    runner = FakePapermill()
    monkeypatch.setattr(papermill, "execute_notebook", runner)
    monkeypatch.setattr(companion.pipeline.kernel, "kernel_name", lambda: "fake-kernel")
    return runner


def _no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a kernel was started although every cache key was current")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)
    monkeypatch.setattr(companion.pipeline.kernel, "kernel_name", refuse)


def test_first_run_executes_and_records_keys(layout: Layout, fake: FakePapermill) -> None:
    report = run_notebooks("tiny", layout)
    assert report.ran == NAMES and report.skipped == []
    readable = 0o666 & ~current_umask()  # as any other tool writes them, not mkstemp's 0600
    for name in NAMES:
        output = layout.executed_dir / f"{name}.ipynb"
        record = json.loads(key_path(output).read_text())
        assert output.is_file() and len(record["key"]) == 64
        assert record["glocal_version"] == glocal.__version__
        assert stat.S_IMODE(output.stat().st_mode) == readable
        assert stat.S_IMODE(key_path(output).stat().st_mode) == readable
    call = fake.calls[0]
    assert call["parameters"] == {
        "profile": "tiny",
        "results_dir": str(layout.results_dir / "01_first"),
        "overrides": {"n_points": 4},
    }
    assert Path(call["parameters"]["results_dir"]).is_absolute()
    # The kernel is told its folder; papermill's cwd= would chdir the whole process.
    assert call["resources"] == {"metadata": {"path": str(layout.notebooks_dir)}}
    assert call.get("cwd") is None
    assert call["kernel_name"] == "fake-kernel"


def test_cache_hit_skips_without_starting_a_kernel(
    layout: Layout, fake: FakePapermill, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_notebooks("tiny", layout)
    _no_kernel(monkeypatch)
    start = time.perf_counter()
    report = run_notebooks("tiny", layout)
    assert report.ran == [] and report.skipped == NAMES
    assert time.perf_counter() - start < 5


def test_source_change_reruns_only_that_notebook(layout: Layout, fake: FakePapermill) -> None:
    run_notebooks("tiny", layout)
    path = layout.notebooks_dir / "02_second.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].source += "\nprint('changed')"
    nbformat.write(nb, path)
    fake.calls.clear()
    assert run_notebooks("tiny", layout).ran == ["02_second"]


def test_outputs_and_cell_metadata_do_not_count(layout: Layout, fake: FakePapermill) -> None:
    run_notebooks("tiny", layout)
    path = layout.notebooks_dir / "01_first.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="stale output\n")]
    nb.cells[-1].execution_count = 7
    nb.cells[-1].metadata["collapsed"] = True
    nbformat.write(nb, path)
    assert run_notebooks("tiny", layout).ran == []


def test_parameter_change_reruns(layout: Layout, fake: FakePapermill) -> None:
    run_notebooks("tiny", layout)
    write_profile(layout.notebooks_dir, "01_first", {"tiny": {"n_points": 6}})
    assert run_notebooks("tiny", layout).ran == ["01_first"]
    other = Layout.create(
        "tiny",
        root=layout.root,
        notebooks_dir=layout.notebooks_dir,
        executed_dir=layout.executed_dir,
        results_dir=layout.root / "elsewhere",
    )
    assert run_notebooks("tiny", other).ran == NAMES  # results_dir is a parameter too


def test_version_or_package_change_reruns(
    layout: Layout, fake: FakePapermill, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_notebooks("tiny", layout)
    monkeypatch.setattr(glocal, "__version__", "9.9.9")
    assert run_notebooks("tiny", layout).ran == NAMES
    monkeypatch.setattr(companion.pipeline.notebooks, "package_hash", lambda: "0" * 64)
    assert run_notebooks("tiny", layout).ran == NAMES


def test_the_key_covers_every_file_of_both_packages() -> None:
    files = dict(companion.pipeline.notebooks.package_files())
    for name in ["glocal/evaluation/few_shot.py", "glocal/data/registry.json", "glocal/grids.json",
                 "glocal/features/models.json", "glocal/py.typed", "companion/pipeline/runner.py",
                 "companion/pipeline/smoke_models.json"]:  # fmt: skip
        assert files[name] == Path(glocal.__file__).parents[1] / name
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]


def test_a_library_edit_reruns_the_notebooks_and_rebuilds_the_book(
    layout: Layout, fake: FakePapermill, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Both keys cover every file of glocal and companion (only companion/ counted before)."""
    roots = {
        name: shutil.copytree(
            root, tmp_path / "site-packages" / name, ignore=shutil.ignore_patterns("__pycache__")
        )
        for name, root in companion.pipeline.notebooks.package_roots().items()
    }
    monkeypatch.setattr(companion.pipeline.notebooks, "package_roots", lambda: roots)
    site = make_site(tmp_path / "site", ["01_first"])
    run_notebooks("tiny", layout)
    book_key = companion.pipeline.book_build._sources_key(site)

    few_shot = roots["glocal"] / "evaluation" / "few_shot.py"
    few_shot.write_text(few_shot.read_text() + "\n# edited\n")
    assert run_notebooks("tiny", layout).ran == NAMES
    assert companion.pipeline.book_build._sources_key(site) != book_key
    models = roots["glocal"] / "features" / "models.json"  # a data file of the package
    models.write_text(models.read_text() + "\n")
    assert run_notebooks("tiny", layout).ran == NAMES
    (roots["glocal"] / "evaluation" / "new_metric.py").write_text("")  # a new module
    assert run_notebooks("tiny", layout).ran == NAMES

    book_key = companion.pipeline.book_build._sources_key(site)
    cache = roots["glocal"] / "evaluation" / "__pycache__"  # byte code and hidden files do not
    cache.mkdir()
    (cache / "few_shot.cpython-311.pyc").write_bytes(b"compiled")
    (roots["companion"] / ".runner.py.swp").write_bytes(b"editor")
    assert run_notebooks("tiny", layout).ran == []
    assert companion.pipeline.book_build._sources_key(site) == book_key


def test_the_next_run_removes_a_killed_runs_temp_files(layout: Layout, fake: FakePapermill) -> None:
    run_notebooks("tiny", layout)
    output = layout.executed_dir / "01_first.ipynb"
    given = Path(fake.calls[0]["output"])  # the temp file papermill wrote (glocal.io.atomic_path)
    assert given.parent == layout.executed_dir and given.name.startswith(".01_first.ipynb.")

    def killed_run() -> list[Path]:
        """What a run killed while writing 01_first leaves: temp files and no key."""
        _, key_tmp = tempfile.mkstemp(dir=layout.executed_dir, prefix=".01_first.key.json.",
                                      suffix=".json")  # fmt: skip
        given.write_text("{")
        key_path(output).unlink()
        return [given, Path(key_tmp)]

    names = [".02_second.ipynb.x1y2z3_w.ipynb", ".01_first.ipynb.notes", "01_first.txt"]
    others = [layout.executed_dir / name for name in names]
    for other in others:
        other.write_text("not a temp file of this run's")
    leftovers = killed_run()
    assert run_notebooks("tiny", layout).ran == ["01_first"]
    assert not any(path.exists() for path in leftovers)
    assert all(other.exists() for other in others)  # 02 did not run; the rest is not ours

    leftovers = killed_run()  # a run holding the lock may be writing them: they stay meanwhile
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_notebooks("tiny", layout, only=["01"])
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    with file_lock(output):
        waiting = threading.Thread(target=run)
        waiting.start()
        time.sleep(1.0)
        assert all(path.exists() for path in leftovers) and waiting.is_alive()
    waiting.join(60)
    assert not errors and not waiting.is_alive()
    assert not any(path.exists() for path in leftovers)


def test_declared_input_data_change_reruns(
    layout: Layout, fake: FakePapermill, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_notebook(layout.notebooks_dir / "01_first.ipynb", "first", inputs=["things/concepts"])
    run_notebooks("tiny", layout)
    record = json.loads(key_path(layout.executed_dir / "01_first.ipynb").read_text())
    pinned = next(e for e in data.registry() if e.name == "things/concepts")
    assert record["inputs"] == {"things/concepts": pinned.served.sha256}

    changed = dataclasses.replace(
        pinned, release=dataclasses.replace(pinned.release, sha256="f" * 64)
    )
    entries = [changed if e.name == pinned.name else e for e in data.registry()]
    monkeypatch.setattr(data, "registry", lambda: entries)
    assert run_notebooks("tiny", layout).ran == ["01_first"]


def test_unknown_input_name_is_a_clear_error(layout: Layout, fake: FakePapermill) -> None:
    write_notebook(layout.notebooks_dir / "01_first.ipynb", "first", inputs=["things/concept"])
    with pytest.raises(
        GlocalError, match=r"01_first\.ipynb: field metadata\.glocal\.inputs.*'things/concepts'"
    ):
        run_notebooks("tiny", layout)


def test_force_and_only(layout: Layout, fake: FakePapermill) -> None:
    run_notebooks("tiny", layout)
    assert run_notebooks("tiny", layout, only=["2"], force=True).ran == ["02_second"]
    assert run_notebooks("tiny", layout, only=["01_first"], force=True).ran == ["01_first"]
    with pytest.raises(
        GlocalError, match="--only 7: no such notebook; choose from 01_first, 02_second"
    ):
        run_notebooks("tiny", layout, only=["7"])


def test_parallel_jobs_run_all_and_raise_the_first_failure(
    layout: Layout, fake: FakePapermill, monkeypatch: pytest.MonkeyPatch
) -> None:
    placeholder_notebooks(layout.notebooks_dir, ["03_third", "04_fourth"])
    report = run_notebooks("tiny", layout, jobs=2)
    assert report.ran == [*NAMES, "03_third", "04_fourth"]

    def fail_third(input_path, output_path, **kwargs):
        if Path(input_path).stem == "03_third":
            raise PapermillExecutionError(4, 3, "x", "ValueError", "bad value\nmore", [])
        return fake(input_path, output_path, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", fail_third)
    with pytest.raises(
        GlocalError, match=r"03_third\.ipynb failed in cell \[3\].*ValueError: bad value;"
    ):
        run_notebooks("tiny", layout, jobs=2, force=True)
    assert not (layout.executed_dir / "03_third.ipynb").exists()
    with pytest.raises(GlocalError, match="--jobs 0"):
        run_notebooks("tiny", layout, jobs=0)


def test_parallel_kernels_share_the_cores(
    layout: Layout, fake: FakePapermill, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    seen: list[dict[str, str | None]] = []

    def record(input_path, output_path, **kwargs):
        seen.append({name: os.environ.get(name) for name in THREAD_VARIABLES})
        return fake(input_path, output_path, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", record)
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    run_notebooks("tiny", layout, jobs=2)
    assert seen == [dict.fromkeys(THREAD_VARIABLES, "2")] * 2  # 5 cores // 2 kernels
    assert all(os.environ.get(name) is None for name in THREAD_VARIABLES)  # restored after

    seen.clear()
    run_notebooks("tiny", layout, jobs=1, force=True)
    assert seen == [dict.fromkeys(THREAD_VARIABLES)] * 2  # one kernel keeps the default
    assert kernel_threads(8, cores=2) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # a setting of the user's wins
    seen.clear()
    run_notebooks("tiny", layout, jobs=2, force=True)
    assert [s["OMP_NUM_THREADS"] for s in seen] == ["3", "3"]
    assert [s["MKL_NUM_THREADS"] for s in seen] == [None, None]


def test_missing_profile_file_names_the_file(layout: Layout, fake: FakePapermill) -> None:
    (layout.notebooks_dir / "profiles" / "02_second.json").unlink()
    with pytest.raises(GlocalError, match=r"profile file .*profiles/02_second\.json is missing"):
        run_notebooks("tiny", layout)
    assert fake.calls == []  # bad input fails before anything runs


def test_missing_profile_key_names_file_and_key(layout: Layout, fake: FakePapermill) -> None:
    write_profile(layout.notebooks_dir, "01_first", {"quick": {}, "paper": {}})
    with pytest.raises(GlocalError, match=r"01_first\.json: no key 'tiny' \(has: paper, quick\)"):
        run_notebooks("tiny", layout)


def test_bad_profiles(layout: Layout, fake: FakePapermill) -> None:
    profile = layout.notebooks_dir / "profiles" / "01_first.json"
    profile.write_text('{"tiny": {"n_points": 3,}}')
    with pytest.raises(GlocalError, match=r"01_first\.json: not valid JSON \(line 1"):
        run_notebooks("tiny", layout)
    write_profile(layout.notebooks_dir, "01_first", {"tiny": {"results_dir": "x"}})
    with pytest.raises(GlocalError, match="sets results_dir, which the runner sets itself"):
        run_notebooks("tiny", layout)
    write_profile(layout.notebooks_dir, "01_first", {"tiny": {"n_pionts": 3}})
    with pytest.raises(GlocalError, match=r"sets n_pionts, which .*01_first\.ipynb never uses"):
        run_notebooks("tiny", layout)


@pytest.mark.parametrize("file", ["01_first.json", "defaults.json"])
def test_a_profile_file_that_is_not_utf8_is_one_line(
    layout: Layout, fake: FakePapermill, capsys: pytest.CaptureFixture[str], file: str
) -> None:
    profile = layout.notebooks_dir / "profiles" / file
    profile.write_bytes('{"tiny": {"n_points": 3, "note": "café"}}'.encode("latin-1"))
    with pytest.raises(GlocalError) as err:
        run_notebooks("tiny", layout)
    what = "defaults file" if file == "defaults.json" else "profile file"
    assert str(err.value) == (
        f"{what} {profile}: not UTF-8 text (byte 0xe9 at offset 37); save it as UTF-8, which "
        "JSON files must be"
    )
    args = ["reproduce", "--profile", "tiny", "--no-book", "--root", str(layout.root)]
    assert main(args) == 2
    said = capsys.readouterr().err.strip()
    assert said == f"glocal reproduce: error: {err.value}" and "a bug" not in said
    assert fake.calls == []


def test_notebook_without_parameters_cell(layout: Layout, fake: FakePapermill) -> None:
    path = layout.notebooks_dir / "01_first.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["tags"] = []
    nbformat.write(nb, path)
    with pytest.raises(GlocalError, match="no code cell tagged 'parameters'"):
        run_notebooks("tiny", layout)


def test_no_notebooks(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    with pytest.raises(GlocalError, match="no notebooks named NN_slug.ipynb"):
        run_notebooks("quick", Layout.create("quick", root=tmp_path))


def test_real_kernel_success_then_failure_leaves_no_output(layout: Layout) -> None:
    """One real papermill run, then a failing one: one-line error, no file under the final name."""
    extra = "\nimport sys\nprint(sys.executable)"
    write_notebook(layout.notebooks_dir / "01_first.ipynb", "first", extra=extra)
    report = run_notebooks("tiny", layout, only=["01"])
    output = layout.executed_dir / "01_first.ipynb"
    nb = nbformat.read(output, as_version=4)
    assert report.ran == ["01_first"]
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    kernel_python = printed.strip().splitlines()[-1]
    assert os.path.samefile(kernel_python, sys.executable)  # this environment's python
    assert any(o.get("data", {}).get("image/png") for c in nb.cells for o in c.get("outputs", []))
    assert (layout.results_dir / "01_first" / "figure.png").is_file()

    write_notebook(layout.notebooks_dir / "01_first.ipynb", "first", plot=False, fail=True)
    with pytest.raises(GlocalError) as err:
        run_notebooks("tiny", layout, only=["01"])
    message = str(err.value)
    assert "\n" not in message
    assert "01_first.ipynb failed in cell" in message
    assert "ValueError: placeholder failure" in message
    assert not output.exists() and not key_path(output).exists()
    assert (layout.executed_dir / "01_first.failed.ipynb").is_file()
    assert not list(layout.executed_dir.glob(".*"))  # no temp files left behind


def test_book_refuses_missing_executed_notebooks(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", ["01_first", "02_second"])
    executed = tmp_path / "executed"
    placeholder_notebooks(executed, ["01_first"])
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(GlocalError, match=r"lists book/results/02_second .*--only 02"):
        companion.pipeline.book_build.build_book(site, executed, tmp_path / "build", profile="tiny")
    assert sorted(p for p in tmp_path.rglob("*")) == before  # no lock file, no build folder


def test_book_build_is_skipped_when_nothing_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(tmp_path / "site", ["01_first"])
    executed = tmp_path / "executed"
    placeholder_notebooks(executed, ["01_first"])
    builds: list[Path] = []

    def fake_build(root: Path, stage: Path, log: Path) -> Path:
        builds.append(root)
        html = stage / "_build" / "html"
        html.mkdir(parents=True)
        (html / "index.html").write_text("<html></html>")
        return html

    monkeypatch.setattr(companion.pipeline.book_build, "_run_jupyter_book", fake_build)
    index = companion.pipeline.book_build.build_book(
        site, executed, tmp_path / "build", profile="tiny"
    )
    assert index.is_file() and (site / "book" / "results" / "01_first.ipynb").is_file()
    companion.pipeline.book_build.build_book(site, executed, tmp_path / "build", profile="tiny")
    assert len(builds) == 1
    (site / "book" / "method.md").write_text("# The method\n\nchanged\n")
    companion.pipeline.book_build.build_book(site, executed, tmp_path / "build", profile="tiny")
    assert len(builds) == 2


def test_cli_runs_and_reports_errors_in_one_line(
    layout: Layout, fake: FakePapermill, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "reproduce",
        "--profile",
        "tiny",
        "--no-book",
        "--root",
        str(layout.root),
        "--executed-dir",
        str(layout.executed_dir),
    ]
    assert main(args) == 0
    assert fake.ran == NAMES
    capsys.readouterr()
    shutil.rmtree(layout.notebooks_dir / "profiles")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("glocal reproduce: error: profile file") and "\n" not in err


def test_reproduce_runs_then_builds(layout: Layout, fake: FakePapermill, monkeypatch) -> None:
    seen = {}

    def fake_book(root, executed_dir, build_dir, profile, force):
        seen.update(root=root, executed=executed_dir, build=build_dir, profile=profile)
        return Path(build_dir) / "html" / "index.html"

    monkeypatch.setattr(companion.pipeline.book_build, "build_book", fake_book)
    report = reproduce("tiny", layout=layout)
    assert report.ran == NAMES and report.index == layout.build_dir / "html" / "index.html"
    assert seen == {
        "root": layout.root,
        "executed": layout.executed_dir,
        "build": layout.build_dir,
        "profile": "tiny",
    }


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("edited by hand"))
    nbformat.write(nb, path)


def _swap(path: Path) -> None:
    shutil.copyfile(path.with_name("02_second.ipynb"), path)


@pytest.mark.parametrize("damage", [_truncate, _edit, _swap])
def test_an_executed_notebook_that_is_not_its_runs_output_runs_again(
    layout: Layout, fake: FakePapermill, damage
) -> None:
    run_notebooks("tiny", layout)
    damage(layout.executed_dir / "01_first.ipynb")
    fake.calls.clear()
    report = run_notebooks("tiny", layout)
    assert report.ran == ["01_first"] and report.skipped == ["02_second"]
    nbformat.validate(nbformat.read(layout.executed_dir / "01_first.ipynb", as_version=4))


@pytest.mark.parametrize(
    ("content", "cause"),
    [(b'{"cells": [', "NotJSONError|JSONDecodeError"), (b"", "NotJSONError|JSONDecodeError"),
     (b'{"cells": 3, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
      "ValidationError|TypeError")],
)  # fmt: skip
def test_the_book_names_the_page_of_a_broken_executed_notebook(tmp_path: Path, content, cause):
    site = make_site(tmp_path / "site", ["01_first", "02_second"])
    executed = tmp_path / "executed"
    placeholder_notebooks(executed, ["01_first", "02_second"])
    (executed / "02_second.ipynb").write_bytes(content)
    with pytest.raises(GlocalError) as caught:
        companion.pipeline.book_build.build_book(site, executed, tmp_path / "build", profile="tiny")
    message = str(caught.value)
    assert message.startswith("page book/results/02_second: the executed notebook")
    assert re.search(cause, message) and "--only 02 --force" in message and "\n" not in message


def test_a_build_failure_without_warnings_names_the_page_and_the_cause():
    log = (
        "Running Jupyter-Book v1.0.4\nSource Folder: /x\n===============\n"
        "reading sources... [ 50%] book/results/02_second\n"
        'Exception occurred:\n  File "/x/y.py", line 3, in z\n'
        "nbformat.reader.NotJSONError: Notebook does not appear to be JSON: '{\"cells\": ['\n"
        "==============\n"
    )
    said = companion.pipeline.book_build._failure(log)
    assert said.startswith("book/results/02_second") and "NotJSONError" in said
