"""Benchmark the grid search: the engine's speed-up, and the paper grid at THINGS scale.

1. Engine: the small grid (9 settings x 3 folds) on a planted problem (1854 objects, 64
   features, 300k triplets, 2000 contrast rows), run serially and on a LocalCluster of 2
   single-threaded workers, without the cache; the speed-up and the overhead per task.
2. The paper grid (54 settings, SGD) x 3 folds at THINGS scale (1854 x 768 features, 4.2M
   triplets, a 10k x 768 contrast set) on a LocalCluster of 2 workers, with warm starts
   along lambda; the whole sweep's wall time against the cost of its fits one by one.

Writes benchmarks/results/search.md. ``GLOCAL_BENCH_SEARCH=engine`` runs part 1 only.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from glocal import GlocalTransform
from glocal.io import atomic_write
from glocal.planted import planted_problem
from glocal.search import GlocalSearchCV

HERE = Path(__file__).resolve().parent


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _engine_part() -> list[str]:
    problem = planted_problem(n_objects=1854, n_features=64, n_dims=16, n_contrast=2000, seed=0)
    base = GlocalTransform(device="cpu")
    rows = {}
    for name, scheduler, workers in (("serial", "serial", None), ("LocalCluster", None, 2)):
        search = GlocalSearchCV(
            "small", estimator=base, cv=3, scheduler=scheduler, n_workers=workers, cache=False,
            refit=False, progress=False,
        )  # fmt: skip
        start = time.perf_counter()
        search.fit(problem.X, problem.triplets, contrast=problem.contrast)
        wall = time.perf_counter() - start
        table = search.cv_results_
        task_s = float(table[[c for c in table if c.startswith("split") and
                              c.endswith("_seconds")]].to_numpy().sum())  # fmt: skip
        rows[name] = {"wall": wall, "task_s": task_s, "engine": search.engine_,
                      "best": search.best_params_, "n": 3 * len(table)}  # fmt: skip
        print(name, rows[name], flush=True)
    serial, cluster = rows["serial"], rows["LocalCluster"]
    overhead = (cluster["wall"] - cluster["task_s"] / 2) / cluster["n"]
    same = serial["best"] == cluster["best"]
    return [
        "### The engine: serial vs a LocalCluster of 2 workers\n",
        f"Planted problem (1854 objects, 64 features, 300k triplets), the `small` grid "
        f"(9 settings) x 3 folds = {serial['n']} fits, no cache; load average at the start "
        f"{_load()} (other jobs share these cores).\n",
        "| engine | wall (s) | sum of fit times (s) | speed-up | selected |",
        "|---|---|---|---|---|",
        f"| serial (1 thread) | {serial['wall']:.1f} | {serial['task_s']:.1f} | 1.00x | "
        f"{serial['best']} |",
        f"| {cluster['engine']} | {cluster['wall']:.1f} | {cluster['task_s']:.1f} | "
        f"{serial['wall'] / cluster['wall']:.2f}x | {cluster['best']} |",
        "",
        f"Overhead per task (cluster start-up included): {overhead:.2f} s = (wall - sum of "
        f"fit times / 2 workers) / {cluster['n']} tasks. Same selection: {same}.\n",
    ]


def _paper_part() -> list[str]:
    problem = planted_problem(n_objects=1854, n_features=768, n_dims=32, n_triplets=4_200_000,
                              n_contrast=10_000, seed=0)  # fmt: skip
    base = GlocalTransform(device="cpu")
    with tempfile.TemporaryDirectory() as cache:
        search = GlocalSearchCV("paper", estimator=base, cv=3, n_workers=2, cache=cache,
                                refit=False, progress=True)  # fmt: skip
        start = time.perf_counter()
        search.fit(problem.X, problem.triplets, contrast=problem.contrast)
        wall = time.perf_counter() - start
    table = search.cv_results_
    seconds = table[[c for c in table if c.startswith("split") and c.endswith("_seconds")]]
    steps = table[[c for c in table if c.startswith("split") and c.endswith("_n_steps")]]
    lmbdas = sorted(table["param_lmbda"].unique(), reverse=True)
    cold = table["param_lmbda"] == lmbdas[0]  # the first lambda of every chain starts cold
    per_fit = float(seconds.to_numpy().mean())
    best = table.loc[search.best_index_]
    return [
        "### The paper grid at THINGS scale\n",
        f"Planted problem: 1854 x 768 features, 4.2M triplets, 10k x 768 contrast set; the "
        f"`paper` grid ({len(table)} settings: SGD with momentum 0.9, lr x lambda x alpha x tau) "
        f"x 3 object-disjoint folds = {3 * len(table)} fits on {search.engine_}, warm starts "
        f"along lambda (10 -> 1 -> 0.1); {platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, load average at the end {_load()}.\n",
        "| | value |",
        "|---|---|",
        f"| whole sweep, wall | {wall / 60:.1f} min |",
        f"| sum of the fits' own times | {seconds.to_numpy().sum() / 60:.1f} min |",
        f"| mean fit | {per_fit:.1f} s, {float(steps.to_numpy().mean()):.0f} steps |",
        f"| cold fits (first lambda of a chain) | "
        f"{float(seconds[cold].to_numpy().mean()):.1f} s, "
        f"{float(steps[cold].to_numpy().mean()):.0f} steps |",
        f"| warm-started fits | {float(seconds[~cold].to_numpy().mean()):.1f} s, "
        f"{float(steps[~cold].to_numpy().mean()):.0f} steps |",
        f"| selected (alignment) | {search.best_params_}: validation accuracy "
        f"{best['mean_val_accuracy']:.4f} ± {best['std_val_accuracy']:.4f} |",
        "",
        "The issue's reference: today's fitter one fit at a time, 162 fits x about 100 s "
        "= about 4.5 h.\n",
    ]


def main() -> None:
    lines = ["## The grid search (`benchmarks/bench_search.py`)\n"]
    lines += _engine_part()
    if os.environ.get("GLOCAL_BENCH_SEARCH") != "engine":
        lines += _paper_part()
    else:
        lines.append("(The paper-grid part was not run: GLOCAL_BENCH_SEARCH=engine.)\n")
    out = HERE / "results" / "search.md"
    atomic_write(out, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    print("\n".join(lines))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
