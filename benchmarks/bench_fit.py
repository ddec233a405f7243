"""Benchmark the fitter on a synthetic THINGS-sized problem against the official-style baseline.

m = 1854 objects, p = 768 features, 4.2M training triplets, a 10k × 768 contrast set,
alpha = 0.25. Each measurement runs in a fresh process so that peak memory (ru_maxrss) is its own.
Writes benchmarks/results/fit.md.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

N_TRAIN = 4_200_000
BASELINE_STEPS = int(os.environ.get("GLOCAL_BENCH_BASELINE_STEPS", "40"))


def _problem():
    from glocal.synthetic import planted_problem
    from glocal.triplets import random_split

    problem = planted_problem(
        n_objects=1854,
        n_features=768,
        n_dims=32,
        n_triplets=int(N_TRAIN / 0.9),
        n_contrast=10_000,
        seed=0,
    )
    split = random_split(problem.triplets, test_size=0.1, seed=0)
    return problem, split


def _ours(device: str, queue) -> None:
    from glocal import GlocalTransform

    problem, split = _problem()
    start = time.perf_counter()
    est = GlocalTransform(alpha=0.25, device=device, progress=False)
    est.fit(problem.X, split.train, contrast=problem.contrast, val_triplets=split.test)
    total = time.perf_counter() - start
    history = est.history_
    best = max(h["val_acc"] for h in history)
    converged = next(h for h in history if h["val_acc"] >= best - 0.005)
    per_pass = history[-1]["seconds"] / len(history)
    queue.put(
        {
            "impl": f"glocal ({device})",
            "n_train": len(split.train),
            "per_pass_s": per_pass,
            "converge_s": converged["seconds"],
            "converge_epoch": converged["epoch"],
            "fit_s": total,
            "epochs": len(history),
            "best_val_acc": best,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        }
    )


def _baseline(queue) -> None:
    from official_style import OneHotMinibatchFitter

    problem, split = _problem()
    mean, std = float(problem.X.mean()), float(problem.X.std())
    fitter = OneHotMinibatchFitter(
        (problem.X - mean) / std, (problem.contrast - mean) / std, problem.contrast
    )
    per_step = fitter.time_steps(split.train, BASELINE_STEPS)
    steps_per_pass = math.ceil(len(split.train) / fitter.triplet_batch)
    queue.put(
        {
            "impl": "official-style one-hot minibatch (cpu)",
            "n_train": len(split.train),
            "per_pass_s": per_step * steps_per_pass,
            "per_step_s": per_step,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        }
    )


def _run(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    print("official-style baseline ...", flush=True)
    baseline = _run(_baseline)
    print(baseline, flush=True)
    rows = [baseline]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        print(f"glocal on {device} ...", flush=True)
        rows.append(_run(_ours, device))
        print(rows[-1], flush=True)
    lines = [
        "## Fitting a THINGS-sized problem (`benchmarks/bench_fit.py`)\n",
        f"Synthetic: m = 1854, p = 768, {baseline['n_train']:,} training triplets, "
        "10k × 768 contrast "
        f"set, alpha = 0.25; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}. The baseline's time per pass is extrapolated from "
        f"{BASELINE_STEPS} timed steps ({baseline['per_step_s']:.3f} s/step × "
        f"{math.ceil(baseline['n_train'] / 256):,} steps of 256 triplets); it was not run to "
        "convergence (hours).\n",
        "| implementation | time per pass (s) | speed-up per pass | time to converge (s) | "
        "epochs to converge | full fit (s) | best held-out acc | peak memory (GB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        speedup = baseline["per_pass_s"] / row["per_pass_s"]
        lines.append(
            f"| {row['impl']} | {row['per_pass_s']:.1f} | {speedup:.0f}× | "
            f"{row.get('converge_s', float('nan')):.1f} | {row.get('converge_epoch', '–')} | "
            f"{row.get('fit_s', float('nan')):.1f} | {row.get('best_val_acc', float('nan')):.4f} | "
            f"{row['peak_rss_gb']:.2f} |"
        )
    if "cuda" not in devices:
        lines.append("\nNo GPU on this machine: the GPU row is missing (run `make bench` on one).")
    lines.append(
        "\nConverged = first epoch whose held-out accuracy is within 0.5 points of the best.\n"
    )
    out = HERE / "results" / "fit.md"
    out.parent.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".md")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, out)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
