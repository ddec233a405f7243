"""GlocalSearchCV: object-disjoint folds, selection rules, scikit-learn's shape, and the engine.

The same small planted sweep runs serially, on a LocalCluster, and on a scheduler with two
workers started as separate processes (one of them killed mid-sweep); all give equal results.
The cache and the input checks are tested in tests/test_search_failures.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glocal import GlocalTransform, odd_one_out_accuracy
from glocal.errors import GlocalError
from glocal.planted import planted_problem
from glocal.search import SCORES, GlocalSearchCV, object_folds, resolve_grid
from glocal.triplets import object_disjoint_folds

GRID = {"alpha": [0.0, 0.25], "lmbda": [0.1, 0.01]}


@pytest.fixture(scope="module")
def problem():
    return planted_problem(
        n_objects=90, n_features=12, n_dims=4, n_triplets=20_000, n_contrast=240, seed=5
    )


def _base(**params):
    return GlocalTransform(**{"max_steps": 200, "contrast_batch_size": 64, "device": "cpu",
                              **params})  # fmt: skip


def _search(**kwargs):
    return GlocalSearchCV(_base(), GRID, cv=3, **kwargs)


def _core(results: dict) -> pd.DataFrame:
    """The results without wall-clock columns (those differ between runs)."""
    table = pd.DataFrame(results)
    return table.drop(columns=[c for c in table.columns if c.endswith("_time")])


def test_folds_are_object_disjoint_and_cover_the_objects(problem):
    folds = object_folds(problem.X, problem.triplets, 240, cv=3, seed=0)
    seen = np.concatenate([f.val_objects for f in folds])
    assert sorted(seen) == list(range(90))
    for fold in folds:
        assert not set(fold.train_objects) & set(fold.val_objects)
        train = fold.train_objects[fold.train]
        val = fold.val_objects[fold.val]
        assert np.isin(train, fold.train_objects).all() and np.isin(val, fold.val_objects).all()
        assert not set(fold.contrast_train) & set(fold.contrast_val)
    # the same object groups as glocal.object_disjoint_folds (one rule for both)
    split = object_disjoint_folds(problem.triplets, 90, n_folds=3, seed=0)
    for fold, other in zip(folds, split, strict=True):
        np.testing.assert_array_equal(fold.val_objects, other.test_objects)


def test_cv_takes_a_splitter_or_an_iterable_of_object_folds(problem):
    from sklearn.model_selection import KFold

    splitter = KFold(3, shuffle=True, random_state=1)
    pairs = list(splitter.split(problem.X))
    by_splitter = object_folds(problem.X, problem.triplets, 240, cv=splitter, seed=0)
    by_pairs = object_folds(problem.X, problem.triplets, 240, cv=pairs, seed=0)
    for a, b, (_, val) in zip(by_splitter, by_pairs, pairs, strict=True):
        np.testing.assert_array_equal(a.val_objects, np.sort(val))
        np.testing.assert_array_equal(a.train, b.train)
        expected = problem.triplets[np.isin(problem.triplets, val).all(axis=1)]
        assert len(a.val) == len(expected)
    bad = [(pairs[0][0], pairs[0][0][:5])]  # shares objects, and one fold only
    with pytest.raises(GlocalError, match="at least 2"):
        object_folds(problem.X, problem.triplets, None, cv=bad, seed=0)
    with pytest.raises(GlocalError, match="object-disjoint"):
        object_folds(problem.X, problem.triplets, None, cv=bad * 2, seed=0)
    with pytest.raises(GlocalError, match=r"must lie in \[0, 90\)"):
        object_folds(problem.X, problem.triplets, None, cv=[([0, 1], [95]), ([2], [3])], seed=0)


def test_grids():
    assert len(resolve_grid("paper")) == 54
    small = resolve_grid("small")
    assert len(small) == 12
    for name in ("small", "global", "paper"):  # every lambda grid spans the official values
        assert {10.0, 1.0, 0.1} <= {s["lmbda"] for s in resolve_grid(name)}
    with pytest.raises(GlocalError, match="not a named grid"):
        resolve_grid("huge")


@pytest.fixture(scope="module")
def serial(problem, tmp_path_factory):
    cache = tmp_path_factory.mktemp("serial-cache")
    search = _search(scheduler="serial", cache=cache)
    return search.fit(problem.X, problem.triplets, contrast=problem.contrast), cache


def test_serial_sweep_selects_and_refits(problem, serial):
    search, cache = serial
    table = pd.DataFrame(search.cv_results_)
    assert len(table) == 4 and search.n_fits_computed_ == 12 and search.n_splits_ == 3
    raw = odd_one_out_accuracy(problem.X, problem.triplets, similarity="cosine")
    global_rows = table[table["param_alpha"] == 0.0]
    assert (global_rows["mean_test_accuracy"] > raw + 0.1).all()  # the planted map is learnable
    # the local term keeps neighbourhoods: alpha 0.25 beats alpha 0 on held-out overlap
    by_alpha = table.groupby("param_alpha")["mean_test_overlap"].mean()
    assert by_alpha[0.25] > by_alpha[0.0] + 0.05
    best = table.loc[search.best_index_]
    assert best["rank_test_alignment"] == 1 == best["rank_test_score"]
    assert search.best_score_ == best["mean_test_accuracy"] == table["mean_test_accuracy"].max()
    assert search.best_params_ == best["params"]
    assert search.best_estimator_.alpha == search.best_params_["alpha"]
    # every axis of this 2 x 2 grid has two values, so the choice sits on an end of each
    ends = {0.0: "lowest", 0.25: "highest", 0.1: "highest", 0.01: "lowest"}
    assert search.best_edges_ == {k: ends[v] for k, v in search.best_params_.items()}
    assert len(list(Path(cache).glob("*.npz"))) == 12
    # every fit says how it stopped; none of these kept its start
    for f in range(3):
        assert set(table[f"split{f}_stop_reason"]) <= {"converged", "max_steps"}
        assert (table[f"split{f}_best_step"] > 0).all()
    assert (table["n_no_improvement"] == 0).all()
    # the rules differ in what they reward, and a second search comes from the cache
    tradeoff = _search(scheduler="serial", cache=cache, scoring="tradeoff", min_overlap=0.6)
    tradeoff.fit(problem.X, problem.triplets, contrast=problem.contrast)
    assert tradeoff.n_fits_computed_ == 0
    chosen = pd.DataFrame(tradeoff.cv_results_).loc[tradeoff.best_index_]
    assert chosen["mean_test_overlap"] >= 0.6 or (table["mean_test_overlap"] < 0.6).all()


def test_results_have_scikit_learns_layout(serial):
    results = serial[0].cv_results_
    n = len(results["params"])
    for score in SCORES:
        assert {f"mean_test_{score}", f"std_test_{score}", "split2_test_" + score} <= set(results)
    for key in ("mean_fit_time", "std_fit_time", "mean_score_time", "rank_test_score"):
        assert len(results[key]) == n
    assert isinstance(results["param_alpha"], np.ma.MaskedArray)
    assert all(isinstance(v, np.ndarray) for k, v in results.items() if k != "params")


def test_several_rules_rank_and_refit_names_the_selecting_one(problem, serial):
    cache = serial[1]
    search = _search(scheduler="serial", cache=cache, scoring=["alignment", "objective"],
                     refit="objective")  # fmt: skip
    search.fit(problem.X, problem.triplets, contrast=problem.contrast)
    results = search.cv_results_
    assert {"rank_test_alignment", "rank_test_objective"} <= set(results)
    assert "rank_test_score" not in results  # as in scikit-learn's multi-metric results
    assert search.best_score_ == results["mean_test_neg_objective"].max()
    with pytest.raises(GlocalError, match="set refit to the one that selects"):
        _search(scheduler="serial", scoring=["alignment", "objective"]).fit(
            problem.X, problem.triplets, contrast=problem.contrast
        )
    no_refit = _search(scheduler="serial", cache=cache, refit=False)
    no_refit.fit(problem.X, problem.triplets, contrast=problem.contrast)
    assert not hasattr(no_refit, "best_estimator_") and no_refit.best_params_
    with pytest.raises(Exception, match="no best_estimator_"):
        no_refit.transform(problem.X)


def _select_and_apply(search_class, estimator, grid, X, y):
    """Written for scikit-learn's GridSearchCV; GlocalSearchCV runs it unchanged."""
    search = search_class(estimator, grid, cv=3, refit=True)
    search.fit(X, y)
    table = pd.DataFrame(search.cv_results_)
    best = table.loc[search.best_index_]
    assert best["rank_test_score"] == 1
    assert best["mean_test_score"] == search.best_score_
    assert best["params"] == search.best_params_
    assert search.best_estimator_.get_params()[next(iter(grid))] == best["params"][next(iter(grid))]
    return search.transform(X), search.score(X, y)


@pytest.mark.slow
def test_a_script_written_for_grid_search_cv_runs_unchanged(problem, tmp_path, monkeypatch):
    from sklearn.decomposition import PCA
    from sklearn.model_selection import GridSearchCV

    Z, score = _select_and_apply(GridSearchCV, PCA(), {"n_components": [2, 4]}, problem.X, None)
    assert Z.shape[0] == 90 and np.isfinite(score)
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(tmp_path))
    Z, score = _select_and_apply(
        GlocalSearchCV, _base(alpha=0.0), {"lmbda": [0.1, 0.001]}, problem.X, problem.triplets
    )
    assert Z.shape == problem.X.shape and 0.5 < score <= 1.0


def test_a_setting_whose_fit_cannot_start_is_a_result_not_a_crash(problem):
    search = GlocalSearchCV(_base(alpha=0.0, max_steps=60), {"init_scale": [None, 1e30]},
                            cv=2, scheduler="serial", cache=False)  # fmt: skip
    search.fit(problem.X, problem.triplets)
    table = pd.DataFrame(search.cv_results_).set_index("param_init_scale")
    assert table.loc[1e30, "n_diverged"] == 2 and np.isnan(table.loc[1e30, "mean_test_accuracy"])
    assert table.loc[1e30, "split0_stop_reason"] == "diverged"
    assert search.best_params_ == {"init_scale": None}


@pytest.mark.slow
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


def _cluster(tmp_path: Path, n_workers: int = 2):
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    info = tmp_path / "scheduler.json"
    options = ["--scheduler-file", str(info), "--port", "0", "--no-dashboard"]
    scheduler = _start([*dask, *options], tmp_path / "s.log")
    _wait_for(info)
    address = json.loads(info.read_text())["address"]
    workers = [
        _start([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                "--no-nanny", "--no-dashboard", "--name", f"w{i}"], tmp_path / f"w{i}.log")
        for i in range(n_workers)
    ]  # fmt: skip
    return address, scheduler, workers


def _stop(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _kill_after_first_result(cache: Path, process: subprocess.Popen):
    import threading

    def watch() -> None:
        end = time.monotonic() + 120
        while time.monotonic() < end and not list(cache.glob("*.npz")):
            time.sleep(0.05)
        process.kill()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_remote_scheduler_with_a_worker_killed_mid_sweep(problem, serial, tmp_path, capfd):
    """A scheduler and two workers as separate processes; one worker dies mid-sweep. The
    sweep still completes (Dask reruns the lost task elsewhere) without printing Dask's
    tracebacks, and a rerun comes entirely from the cache; the results equal the serial run's."""
    address, scheduler, workers = _cluster(tmp_path)
    try:
        cache = tmp_path / "cache"
        search = _search(scheduler=address, cache=cache)
        killer = _kill_after_first_result(cache, workers[0])
        capfd.readouterr()
        search.fit(problem.X, problem.triplets, contrast=problem.contrast)
        killer.join()
        printed = capfd.readouterr()
        assert printed.out == "" and printed.err == ""
        assert workers[0].poll() is not None, "the worker was not killed mid-sweep"
        pd.testing.assert_frame_equal(_core(search.cv_results_), _core(serial[0].cv_results_))
        again = _search(scheduler=address, cache=cache)
        again.fit(problem.X, problem.triplets, contrast=problem.contrast)
        assert again.n_fits_computed_ == 0
        pd.testing.assert_frame_equal(_core(again.cv_results_), _core(serial[0].cv_results_))
    finally:
        _stop([*workers, scheduler])


@pytest.mark.slow
def test_a_scheduler_lost_mid_search_is_one_line(problem, tmp_path, capfd):
    address, scheduler, workers = _cluster(tmp_path, n_workers=1)
    try:
        cache = tmp_path / "cache"
        killer = _kill_after_first_result(cache, scheduler)
        capfd.readouterr()
        with pytest.raises(GlocalError) as caught:
            _search(scheduler=address, cache=cache).fit(
                problem.X, problem.triplets, contrast=problem.contrast
            )
        killer.join()
        message = str(caught.value)
        assert "\n" not in message and address in message and "run again" in message
        assert capfd.readouterr().err == ""
    finally:
        _stop([*workers, scheduler])


@pytest.mark.slow
def test_a_script_without_a_main_guard_runs_serially_and_says_why(problem, tmp_path):
    np.save(tmp_path / "X.npy", problem.X)
    np.save(tmp_path / "T.npy", problem.triplets)
    script = tmp_path / "plain.py"
    script.write_text(
        textwrap.dedent("""
        import numpy as np
        from glocal import GlocalSearchCV, GlocalTransform
        X, T = np.load("X.npy"), np.load("T.npy")
        search = GlocalSearchCV(GlocalTransform(alpha=0.0, max_steps=30), {"lmbda": [0.1, 0.01]},
                                cv=2, cache=False)
        search.fit(X, T)
        print("best", search.best_params_, search.engine_)
    """)
    )
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "best {'lmbda'" in done.stdout and "serial" in done.stdout
    warning = [line for line in done.stderr.splitlines() if "UnguardedScriptWarning" in line]
    assert len(warning) == 1 and "__main__" in warning[0]
    assert warning[0].startswith(f"{script}:7: ")  # where the script starts the search


@pytest.mark.parametrize("kind", ["executable without .py", "latin-1 coding line"])
def test_the_guard_covers_any_script_file(tmp_path, kind):
    # before: the local cluster started, its workers ran the script again, and the run died
    # with a 273-line "Nanny failed to start" traceback
    body = (
        "from glocal.engine import Engine\n"
        "with Engine() as engine:\n"
        "    print('serial' if engine.serial else 'cluster', '\xe9')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GLOCAL_SCHEDULER"}
    env["PYTHONWARNINGS"] = "default"
    if kind == "executable without .py":
        script = tmp_path / "run-search"
        script.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
        script.chmod(0o755)
        argv = [str(script)]
    else:
        script = tmp_path / "latin.py"
        script.write_bytes(f"# -*- coding: latin-1 -*-\n# caf\xe9\n{body}".encode("latin-1"))
        argv = [sys.executable, str(script)]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0 and done.stdout.split() == ["serial", "\xe9"], done.stderr[-2000:]
    line = 4 if kind == "latin-1 coding line" else 3
    warning = [w for w in done.stderr.splitlines() if "UnguardedScriptWarning" in w]
    assert len(warning) == 1 and warning[0].startswith(f"{script}:{line}: "), done.stderr


def test_cli_search_writes_the_table_and_the_transform(problem, tmp_path, capsys):
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
    assert len(table) == 2 and {"mean_test_accuracy", "rank_test_alignment"} <= set(table)
    assert {"split0_stop_reason", "split1_best_step"} <= set(table.columns)
    record = json.loads((out / "best_params.json").read_text())
    assert record["best_score"] == table["mean_test_accuracy"].max()
    assert GlocalTransform.load(out / "best_transform.npz").weights_.shape == (12, 12)
    assert capsys.readouterr().out.startswith("best (alignment)")


def _environ(name):
    return os.environ.get(name)


def test_local_cluster_workers_start_without_the_malloc_trim_setting():
    """Dask's MALLOC_TRIM_THRESHOLD_ made torch fits three times slower in a worker."""
    from glocal.engine import Engine

    with Engine(n_workers=1) as engine:
        future = engine.submit(_environ, "MALLOC_TRIM_THRESHOLD_", key="environ-probe")
        assert future.result() is None
        assert engine.submit(_environ, "OMP_NUM_THREADS", key="omp-probe").result() == "1"


def _slow_double(x):
    time.sleep(1.0)
    return 2 * x


@pytest.mark.slow
def test_an_engine_waits_on_its_own_client_when_another_thread_closes_its_engine():
    """Two searches of one process (prepare's sources side by side) each have an engine on the
    same scheduler. Dask's ``as_completed`` followed the newest client of the process; when
    that was the other engine's and it closed, the first search waited forever."""
    from glocal.engine import Engine

    with Engine(n_workers=1) as cluster:
        address = cluster.client.scheduler.address
        with Engine(address) as first:
            futures = {f"t{i}": first.submit(_slow_double, i, key=f"double-{i}")
                       for i in range(3)}  # fmt: skip
            second = Engine(address).__enter__()  # the newest client: Dask's default
            got: dict = {}
            reader = threading.Thread(target=lambda: got.update(first.results(futures)),
                                      daemon=True)  # fmt: skip
            reader.start()
            time.sleep(0.3)
            second.__exit__(None, None, None)
            reader.join(timeout=30)
            assert not reader.is_alive(), "the first engine's search never saw its results"
    assert got == {"t0": 0, "t1": 2, "t2": 4}


def test_scores_with_the_kept_contrast_reference_equal_a_direct_computation(problem):
    """The fold's teacher softmax and neighbours are computed once per worker and reused;
    every fit's scores still equal the local loss and overlap computed from scratch."""
    import torch

    from glocal import losses
    from glocal.evaluation.neighbours import neighbour_overlap
    from glocal.search import _REFERENCES, SearchData, _scores

    folds = object_folds(problem.X, problem.triplets, 240, cv=2, seed=0)
    data = SearchData(problem.X, problem.contrast, folds, k=5, digest="planted-5")
    _REFERENCES.clear()
    for fold in folds:
        for alpha, tau in [(0.25, 1.0), (0.5, 1.0), (0.5, 0.5)]:
            est = _base(alpha=alpha, tau=tau, max_steps=20).fit(
                problem.X[fold.train_objects], fold.train,
                contrast=problem.contrast[fold.contrast_train],
            )  # fmt: skip
            got = _scores(est, data, fold)
            original = problem.contrast[fold.contrast_val]
            mapped = est.transform(original)
            local = float(
                losses.local_loss(
                    torch.as_tensor(original, dtype=torch.float64),
                    torch.as_tensor(mapped, dtype=torch.float64),
                    tau,
                )
            )
            assert got["neg_local_loss"] == pytest.approx(-local, rel=1e-12)
            assert got["overlap"] == pytest.approx(
                neighbour_overlap(original, mapped, (5,), "cosine")[5], abs=1e-12
            )
    assert len(_REFERENCES) == 4  # 2 folds x 2 temperatures, each computed once


def test_grid_edges_name_the_axes_a_choice_sits_on_the_end_of():
    from glocal.search import grid_edges

    grid = resolve_grid({"lmbda": [10.0, 1.0, 0.1], "alpha": [0.25, 0.5], "optimizer": ["adam",
                         "sgd"], "bias": [True, False], "tau": [0.05]})  # fmt: skip
    inside = {"lmbda": 1.0, "alpha": 0.25, "optimizer": "sgd", "bias": False, "tau": 0.05}
    assert grid_edges(grid, inside) == {"alpha": "lowest"}  # words, flags, fixed axes: no edge
    assert grid_edges(grid, {**inside, "lmbda": 10.0, "alpha": 0.5}) == {
        "lmbda": "highest", "alpha": "highest"}  # fmt: skip
    assert grid_edges(grid, {**inside, "lmbda": 0.1}) == {"lmbda": "lowest", "alpha": "lowest"}


def test_a_named_grid_without_an_estimator_searches_its_own_preset():
    from glocal.search import grids

    for name, spec in grids().items():
        base = GlocalSearchCV(param_grid=name)._base()
        expected = GlocalTransform.preset(spec["preset"]) if "preset" in spec else GlocalTransform()
        assert base.get_params() == expected.get_params(), name
    assert GlocalSearchCV(param_grid="global")._base().alpha == 0.0
    assert GlocalSearchCV(param_grid="naive")._base().regularizer == "fro"
    mine = GlocalTransform(alpha=0.3)
    assert GlocalSearchCV(mine, "global")._base().alpha == 0.3  # a given estimator wins
