"""GlocalSearchCV: object-disjoint folds, selection rules, the cache, and the Dask engine.

The same small planted sweep runs serially, on a LocalCluster, and on a scheduler with two
workers started as separate processes (one of them killed mid-sweep); all give equal results.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glocal import GlocalTransform, odd_one_out_accuracy
from glocal.errors import GlocalError
from glocal.planted import planted_problem
from glocal.search import GlocalSearchCV, object_folds, resolve_grid

GRID = {"alpha": [0.0, 0.25], "lmbda": [0.1, 0.01]}


@pytest.fixture(scope="module")
def problem():
    return planted_problem(
        n_objects=90, n_features=12, n_dims=4, n_triplets=20_000, n_contrast=240, seed=5
    )


def _search(**kwargs):
    base = GlocalTransform(max_steps=200, contrast_batch_size=64, device="cpu")
    return GlocalSearchCV(GRID, estimator=base, cv=3, progress=False, **kwargs)


def _core(table: pd.DataFrame) -> pd.DataFrame:
    """The results without wall-clock columns (those differ between runs)."""
    return table.drop(columns=[c for c in table.columns if "seconds" in c])


def test_folds_are_object_disjoint_and_cover_the_objects(problem):
    folds = object_folds(90, problem.triplets, 240, cv=3, seed=0)
    seen = np.concatenate([f.val_objects for f in folds])
    assert sorted(seen) == list(range(90))
    for fold in folds:
        assert not set(fold.train_objects) & set(fold.val_objects)
        train = fold.train_objects[fold.train]
        val = fold.val_objects[fold.val]
        assert np.isin(train, fold.train_objects).all() and np.isin(val, fold.val_objects).all()
        assert not set(fold.contrast_train) & set(fold.contrast_val)


def test_grids_and_bad_input(problem, tmp_path):
    assert len(resolve_grid("paper")) == 54
    assert len(resolve_grid("small")) == 9
    path = tmp_path / "grid.json"
    path.write_text('{"alpha": [0.1, 0.2]}')
    assert resolve_grid(path) == [{"alpha": 0.1}, {"alpha": 0.2}]
    with pytest.raises(GlocalError, match="not a named grid"):
        resolve_grid("huge")
    with pytest.raises(GlocalError, match=r"\['gamma'\] are not hyper-parameters"):
        GlocalSearchCV({"gamma": [1]}, scheduler="serial").fit(problem.X, problem.triplets)
    with pytest.raises(GlocalError, match="need a contrast set"):
        GlocalSearchCV({"alpha": [0.5]}, scheduler="serial").fit(problem.X, problem.triplets)
    with pytest.raises(GlocalError, match="scoring must be one of"):
        GlocalSearchCV(scoring="best").fit(problem.X, problem.triplets)


@pytest.fixture(scope="module")
def serial(problem, tmp_path_factory):
    cache = tmp_path_factory.mktemp("serial-cache")
    search = _search(scheduler="serial", cache=cache)
    return search.fit(problem.X, problem.triplets, contrast=problem.contrast), cache


def test_serial_sweep_selects_and_refits(problem, serial):
    search, cache = serial
    table = search.cv_results_
    assert len(table) == 4 and search.n_fits_computed_ == 12
    raw = odd_one_out_accuracy(problem.X, problem.triplets, similarity="cosine")
    global_rows = table[table["param_alpha"] == 0.0]
    assert (global_rows["mean_val_accuracy"] > raw + 0.1).all()  # the planted map is learnable
    assert (table["mean_val_accuracy"] > raw).all()
    # the local term keeps neighbourhoods: alpha 0.25 beats alpha 0 on held-out overlap
    by_alpha = table.groupby("param_alpha")["mean_val_overlap"].mean()
    assert by_alpha[0.25] > by_alpha[0.0] + 0.05
    assert table.loc[search.best_index_, "rank_alignment"] == 1
    assert search.best_params_ == table.loc[search.best_index_, "params"]
    assert search.best_estimator_.alpha == search.best_params_["alpha"]
    assert len(list(Path(cache).glob("*.npz"))) == 12
    # the rules differ in what they reward
    tradeoff = _search(scheduler="serial", cache=cache, scoring="tradeoff", min_overlap=0.6)
    tradeoff.fit(problem.X, problem.triplets, contrast=problem.contrast)
    assert tradeoff.n_fits_computed_ == 0  # every fit came from the cache
    chosen = tradeoff.cv_results_.loc[tradeoff.best_index_]
    assert chosen["mean_val_overlap"] >= 0.6 or (table["mean_val_overlap"] < 0.6).all()


def test_a_diverging_setting_is_a_result_not_a_crash(problem):
    search = GlocalSearchCV({"lr": [1e-3, 1e4]}, estimator=GlocalTransform(alpha=0.0,
                            max_steps=60, device="cpu"), cv=2, scheduler="serial", cache=False,
                            progress=False)  # fmt: skip
    search.fit(problem.X, problem.triplets)
    table = search.cv_results_.set_index("param_lr")
    assert table.loc[1e4, "n_diverged"] == 2 and np.isnan(table.loc[1e4, "mean_val_accuracy"])
    assert table.loc[1e-3, "n_diverged"] == 0 and search.best_params_ == {"lr": 1e-3}


def test_local_cluster_gives_the_same_results(problem, serial, tmp_path):
    search = _search(n_workers=2, cache=tmp_path)
    search.fit(problem.X, problem.triplets, contrast=problem.contrast)
    assert "LocalCluster with 2 workers" in search.engine_
    pd.testing.assert_frame_equal(_core(search.cv_results_), _core(serial[0].cv_results_))


def _start(command: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def _wait_for(path: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() > end:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.2)


def test_remote_scheduler_with_a_worker_killed_mid_sweep(problem, serial, tmp_path):
    """A scheduler and two workers as separate processes; one worker dies mid-sweep. The
    sweep still completes (Dask reruns the lost task elsewhere) and a rerun comes entirely
    from the cache; the results equal the serial run's."""
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    info = tmp_path / "scheduler.json"
    options = ["--scheduler-file", str(info), "--port", "0", "--no-dashboard"]
    scheduler = _start([*dask, *options], tmp_path / "s.log")
    workers = []
    try:
        _wait_for(info)
        import json

        address = json.loads(info.read_text())["address"]
        for i in range(2):
            workers.append(_start([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                   "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                   "--name", f"w{i}"], tmp_path / f"w{i}.log"))  # fmt: skip
        cache = tmp_path / "cache"
        search = _search(scheduler=address, cache=cache)
        killer = _kill_after_first_result(cache, workers[0])
        search.fit(problem.X, problem.triplets, contrast=problem.contrast)
        killer.join()
        assert workers[0].poll() is not None, "the worker was not killed mid-sweep"
        pd.testing.assert_frame_equal(_core(search.cv_results_), _core(serial[0].cv_results_))
        again = _search(scheduler=address, cache=cache)
        again.fit(problem.X, problem.triplets, contrast=problem.contrast)
        assert again.n_fits_computed_ == 0
        pd.testing.assert_frame_equal(_core(again.cv_results_), _core(serial[0].cv_results_))
    finally:
        for proc in [*workers, scheduler]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*workers, scheduler]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _kill_after_first_result(cache: Path, worker: subprocess.Popen):
    import threading

    def watch() -> None:
        end = time.monotonic() + 120
        while time.monotonic() < end and not list(cache.glob("*.npz")):
            time.sleep(0.05)
        worker.kill()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_cli_search_writes_the_table_and_the_transform(problem, tmp_path):
    from glocal.cli import main

    np.save(tmp_path / "X.npy", problem.X)
    np.save(tmp_path / "T.npy", problem.triplets)
    np.save(tmp_path / "C.npy", problem.contrast)
    grid = tmp_path / "grid.json"
    grid.write_text('{"alpha": [0.0, 0.5], "max_steps": [50]}')
    out = tmp_path / "out"
    code = main(["search", "--features", str(tmp_path / "X.npy"), "--triplets",
                 str(tmp_path / "T.npy"), "--contrast", str(tmp_path / "C.npy"), "--grid",
                 str(grid), "--cv", "2", "--out", str(out), "--scheduler", "serial",
                 "--no-cache", "--quiet"])  # fmt: skip
    assert code == 0
    table = pd.read_csv(out / "cv_results.csv")
    assert len(table) == 2 and {"mean_val_accuracy", "rank_alignment"} <= set(table.columns)
    assert (out / "best_params.json").is_file()
    assert GlocalTransform.load(out / "best_transform.npz").weights_.shape == (12, 12)


def _environ(name):
    return os.environ.get(name)


def test_local_cluster_workers_start_without_the_malloc_trim_setting():
    """Dask's MALLOC_TRIM_THRESHOLD_ made torch fits three times slower in a worker."""
    from glocal.engine import Engine

    with Engine(n_workers=1) as engine:
        future = engine.submit(_environ, "MALLOC_TRIM_THRESHOLD_", key="environ-probe")
        assert future.result() is None
        assert engine.submit(_environ, "OMP_NUM_THREADS", key="omp-probe").result() == "1"
