"""How the search fails: a cache that cannot lie, and one line for every bad input.

Table-driven: every damaged cache entry is named and fitted again, every bad argument or
setting is refused with one line before the engine starts, on the API and on the CLI.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glocal import GlocalTransform
from glocal.errors import DamagedCacheWarning, GlocalError
from glocal.planted import planted_problem
from glocal.search import GlocalSearchCV

GRID = {"alpha": [0.0, 0.25], "lmbda": [0.01]}


@pytest.fixture(scope="module")
def problem():
    return planted_problem(
        n_objects=80, n_features=8, n_dims=3, n_triplets=4000, n_contrast=120, seed=0
    )


def _search(**kwargs):
    base = GlocalTransform(max_steps=40, device="cpu")
    return GlocalSearchCV(base, kwargs.pop("grid", GRID), cv=2, scheduler="serial", **kwargs)


def _fit(search, problem):
    return search.fit(problem.X, problem.triplets, contrast=problem.contrast)


def _core(results) -> pd.DataFrame:
    table = pd.DataFrame(results)
    return table.drop(columns=[c for c in table.columns if c.endswith("_time")])


@pytest.fixture(scope="module")
def reference(problem, tmp_path_factory):
    """A complete cache of the grid (4 fits) and its results."""
    cache = tmp_path_factory.mktemp("reference-cache")
    return _fit(_search(cache=cache), problem), cache


def _truncate(path: Path, other: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _flip_a_byte(path: Path, other: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _empty(path: Path, other: Path) -> None:
    path.write_bytes(b"")


def _copy_another(path: Path, other: Path) -> None:
    shutil.copyfile(other, path)


def _old_layout(path: Path, other: Path) -> None:
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files if k != "format"}
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _edit_record(path: Path, edit) -> None:
    """Rewrite an entry with its record changed by ``edit``: a valid archive, the same request."""
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    record = json.loads(str(arrays["record"]))
    edit(record)
    arrays["record"] = np.array(json.dumps(record))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _no_accuracy(path: Path, other: Path) -> None:
    _edit_record(path, lambda record: record.pop("accuracy"))


def _accuracy_as_text(path: Path, other: Path) -> None:
    _edit_record(path, lambda record: record.update(accuracy="0.9"))


def _steps_as_null(path: Path, other: Path) -> None:
    _edit_record(path, lambda record: record.update(n_steps=None))


@pytest.mark.parametrize(
    ("damage", "said"),
    [(_truncate, "cannot be read"), (_flip_a_byte, "cannot be read"), (_empty, "cannot be read"),
     (_copy_another, "answers another request"), (_old_layout, "not a glocal-search-entry"),
     (_no_accuracy, "damaged record (no 'accuracy')"),
     (_accuracy_as_text, "damaged record ('accuracy' is '0.9', not a number)"),
     (_steps_as_null, "damaged record ('n_steps' is None, not an integer)")],
)  # fmt: skip
def test_a_damaged_entry_is_named_and_fitted_again(problem, reference, tmp_path, damage, said):
    search, original = reference
    cache = tmp_path / "cache"
    shutil.copytree(original, cache)
    entries = sorted(cache.glob("*.npz"))
    damage(entries[0], entries[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = _fit(_search(cache=cache), problem)
    named = [w for w in caught if issubclass(w.category, DamagedCacheWarning)]
    assert len(named) == 1 and str(entries[0]) in str(named[0].message)
    assert said in str(named[0].message)
    assert again.n_fits_computed_ == 1
    pd.testing.assert_frame_equal(_core(again.cv_results_), _core(search.cv_results_))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repaired: a third run reads everything silently
        assert _fit(_search(cache=cache), problem).n_fits_computed_ == 0


def test_a_read_only_cache_of_complete_results_is_read_without_writing(
    problem, reference, tmp_path
):
    search, original = reference
    cache = tmp_path / "cache"
    shutil.copytree(original, cache)
    for lock in cache.glob("*.lock"):
        lock.unlink()
    before = sorted(os.listdir(cache))
    cache.chmod(0o555)
    try:
        again = _fit(_search(cache=cache), problem)
    finally:
        cache.chmod(0o755)
    assert again.n_fits_computed_ == 0 and sorted(os.listdir(cache)) == before  # no lock files
    pd.testing.assert_frame_equal(_core(again.cv_results_), _core(search.cv_results_))


def test_identical_settings_share_one_fit(problem):
    search = _fit(_search(grid={"alpha": [0.1, 0.1]}, cache=False), problem)
    table = pd.DataFrame(search.cv_results_)
    assert search.n_fits_computed_ == 2  # two folds, one setting
    assert table.loc[0, "mean_test_accuracy"] == table.loc[1, "mean_test_accuracy"]
    assert list(table["rank_test_alignment"]) == [1, 1]


# --- bad input: one line, before the engine starts ------------------------------------------

FIVE = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [12, 13, 14]])
NAN = math.nan

CASES = [
    # (search arguments, data change, message)
    ({"grid": {"lmbda": [NAN]}}, None, r"setting 0 \{'lmbda': nan\}: lmbda must be a finite"),
    ({"grid": {"lr": [-1.0]}}, None, "lr must be a finite number in"),
    ({"grid": {"device": ["cuda:999"]}}, None, "device 'cuda:999'"),
    ({"grid": {"alpha": ["0.25"]}}, None, r"alpha must be a finite number in \[0, 1\], got '0.25'"),
    ({"grid": {"progress": [False]}}, None, r"\['progress'\] are not hyper-parameters"),
    ({"grid": {"verbose": [False]}}, None, "verbose must be an integer >= 0, got False"),
    ({"grid": {}}, None, "param_grid is empty"),
    ({"grid": {"alpha": [0.5]}}, "no contrast", "need a contrast set"),
    ({"grid": {"alpha": [0.5]}}, "one contrast row", "contrast: its 1 rows are dealt into 2"),
    ({}, "five triplets", r"fold \d of 2 has \d+ training and \d+ validation triplets of 5"),
    ({"seed": -1}, None, "seed must be an integer >= 0, got -1"),
    ({"cache": "FILE"}, None, "is a file; give a folder"),
    ({"k": 200}, None, "k=200: the smallest held-out contrast slice has 60 rows"),
    ({"scoring": "best"}, None, "scoring must be one of"),
    ({"refit": "nope"}, None, "refit must be True, False or one of"),
    ({"cv": 1}, None, "cv must be an integer >= 2"),
    ({"min_overlap": 2.0}, None, r"min_overlap must be a finite number in \[0, 1\]"),
    ({"scheduler": "not a scheduler"}, None, "scheduler 'not a scheduler' is not a scheduler"),
    ({"scheduler": "foo://h:1"}, None, "scheduler 'foo://h:1' is not a scheduler address"),
    ({"scheduler": ""}, None, "scheduler '' is not a scheduler address"),
    ({"scheduler": None}, "GLOCAL_SCHEDULER=garbage", r"\$GLOCAL_SCHEDULER 'garbage' is not"),
]


@pytest.mark.parametrize(("arguments", "change", "message"), CASES)
def test_bad_input_is_one_line_before_the_engine_starts(
    problem, tmp_path, monkeypatch, arguments, change, message
):
    import glocal.engine

    def never(self):
        raise AssertionError("the engine started before the input was checked")

    monkeypatch.setattr(glocal.engine.Engine, "__enter__", never)
    arguments = dict(arguments)
    if arguments.get("cache") == "FILE":
        arguments["cache"] = tmp_path / "a-file"
        arguments["cache"].write_text("")
    triplets, contrast = problem.triplets, problem.contrast
    if change == "five triplets":
        triplets = FIVE
    elif change == "no contrast":
        contrast = None
    elif change == "one contrast row":
        contrast = contrast[:1]
    elif change == "GLOCAL_SCHEDULER=garbage":
        monkeypatch.setenv("GLOCAL_SCHEDULER", "garbage")
    grid = arguments.pop("grid", GRID)
    search = GlocalSearchCV(GlocalTransform(max_steps=40), grid, cv=arguments.pop("cv", 2),
                            cache=arguments.pop("cache", False), **arguments)  # fmt: skip
    with pytest.raises(GlocalError, match=message) as caught:
        search.fit(problem.X, triplets, contrast=contrast)
    assert "\n" not in str(caught.value)


def test_the_old_argument_order_and_removed_arguments_are_refused(problem):
    with pytest.raises(GlocalError, match="the grid is the second argument"):
        GlocalSearchCV("paper").fit(problem.X, problem.triplets)
    with pytest.raises(TypeError):
        GlocalSearchCV(warm_start="lmbda")  # warm starts along a grid are gone


CLI_CASES = [
    (["--grid", "GRID"], '{"lmbda": [-1]}', "lmbda must be a finite number"),
    (["--scheduler", "not a scheduler"], None, "is not a scheduler address"),
    (["--triplets", "FIVE", "--grid", "GRID"], '{"alpha": [0.0]}', "of 2 has"),
    (["--grid", "GRID"], '{"alpha": [0.5]}', "need a contrast set"),
]


@pytest.mark.parametrize(("flags", "grid", "message"), CLI_CASES)
def test_cli_failures_are_one_line_and_leave_nothing(problem, tmp_path, capsys, flags, grid,
                                                      message):  # fmt: skip
    from glocal.cli import main

    np.save(tmp_path / "X.npy", problem.X)
    np.save(tmp_path / "T.npy", problem.triplets)
    np.save(tmp_path / "FIVE.npy", FIVE)
    (tmp_path / "GRID.json").write_text(grid or "{}")
    base = {"--features": "X.npy", "--triplets": "T.npy", "--grid": "small",
            "--scheduler": "serial"}  # fmt: skip
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        base[flag] = {"GRID": "GRID.json", "FIVE": "FIVE.npy"}.get(value, value)
    argv = ["search", "--cv", "2", "--out", str(tmp_path / "out"), "--no-cache", "--quiet"]
    for flag, value in base.items():
        path = tmp_path / value
        argv += [flag, str(path) if path.suffix in (".npy", ".json") else value]
    before = sorted(os.listdir(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert sorted(os.listdir(tmp_path)) == before  # no --out folder, no lock files


# --- a task's own error reaches the caller as itself ------------------------------------------


def _raise(kind: str) -> None:
    import errno

    from glocal.errors import DataUnavailableError, FitDivergedError
    from glocal.io import NotWritableError

    try:
        raise IsADirectoryError(errno.EISDIR, "Is a directory", "/cache/entry.npz")
    except OSError as err:
        if kind == "disk full":
            raise OSError(errno.ENOSPC, "No space left on device", "/cache/entry.npz") from err
        error = {"GlocalError": GlocalError, "NotWritableError": NotWritableError,
                 "DataUnavailableError": DataUnavailableError,
                 "FitDivergedError": FitDivergedError}[kind]  # fmt: skip
        raise error(f"{kind}: cannot write /cache/entry.npz; set GLOCAL_CACHE_DIR") from err


ERRORS = ["GlocalError", "NotWritableError", "DataUnavailableError", "FitDivergedError"]


@pytest.mark.parametrize("kind", ERRORS)
def test_glocal_errors_survive_dask_pickling(kind):
    # Dask sends a task's exception back through tblib; the errors that are also OSErrors
    # came back as a bare Exception ("a bug in glocal" on the command line)
    from distributed.core import clean_exception, error_message

    try:
        _raise(kind)
    except GlocalError as err:
        sent = error_message(err)
    received = clean_exception(sent["exception"].data)[1]  # the bytes the client receives
    assert type(received).__name__ == kind and isinstance(received, GlocalError)
    assert str(received).startswith(f"{kind}: cannot write")


def test_a_tasks_own_error_is_raised_as_itself_on_a_local_cluster():
    from glocal.cli import describe_error
    from glocal.engine import Engine

    with Engine(n_workers=1) as engine:
        for kind in ("NotWritableError", "disk full"):
            future = engine.submit(_raise, kind, key=f"raise-{kind}")
            with pytest.raises(OSError) as caught:
                dict(engine.results({"task": future}))
            line = describe_error(caught.value)
            assert "/cache/entry.npz" in line and "Dask cluster" not in line, line
            assert "a bug in glocal" not in line
