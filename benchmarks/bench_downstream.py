"""Benchmark: k-NN anomaly detection at CIFAR size and 5-shot learning on 100 classes.

Each task runs in its own child process so that its peak resident memory (``ru_maxrss``) is
its own; the parent writes the markdown section ``benchmarks/results/downstream.md``.

    python benchmarks/bench_downstream.py [--device cpu|cuda|auto] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from glocal.evaluation.anomaly import anomaly_detection  # noqa: E402
from glocal.evaluation.few_shot import few_shot, summarize_few_shot  # noqa: E402
from glocal.io import atomic_write  # noqa: E402

SIZES = {
    "full": {"anomaly": (50_000, 10_000, 768, 10), "few_shot": (100, 5, 100, 768, 2)},
    "quick": {"anomaly": (5_000, 1_000, 768, 10), "few_shot": (20, 5, 20, 768, 2)},
}


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _gaussian_classes(rng, n, dim, n_classes, scale):
    centres = rng.standard_normal((n_classes, dim), dtype=np.float32) * scale
    y = np.arange(n) % n_classes
    return centres[y] + rng.standard_normal((n, dim), dtype=np.float32), y


def run_anomaly(size: str, device: str) -> dict:
    n_train, n_test, dim, n_classes = SIZES[size]["anomaly"]
    rng = np.random.default_rng(0)
    centres_rng = np.random.default_rng(1)
    centres = centres_rng.standard_normal((n_classes, dim), dtype=np.float32) * 0.12
    train_y, test_y = np.arange(n_train) % n_classes, np.arange(n_test) % n_classes
    train_X = centres[train_y] + rng.standard_normal((n_train, dim), dtype=np.float32)
    test_X = centres[test_y] + rng.standard_normal((n_test, dim), dtype=np.float32)
    return _measure(
        lambda: anomaly_detection(train_X, train_y, test_X, test_y, k=5, device=device),
        lambda r: f"mean AUROC {r.mean_auroc:.3f}",
        f"{n_train:,} train × {n_test:,} test × {dim}, {n_classes} classes, k = 5",
        device,
    )


def run_few_shot(size: str, device: str) -> dict:
    n_classes, shots, n_test, dim, repeats = SIZES[size]["few_shot"]
    rng = np.random.default_rng(0)
    centres = np.random.default_rng(1).standard_normal((n_classes, dim), dtype=np.float32) * 0.2
    pool_y = np.repeat(np.arange(n_classes), 4 * shots)
    test_y = np.repeat(np.arange(n_classes), n_test)
    pool_X = centres[pool_y] + rng.standard_normal((len(pool_y), dim), dtype=np.float32)
    test_X = centres[test_y] + rng.standard_normal((len(test_y), dim), dtype=np.float32)

    def task():
        return few_shot(
            pool_X, pool_y, test_X, test_y, shots=(shots,), n_test_per_class=n_test,
            n_repeats=repeats, classifier=("logreg", "centroid"), device=device,
        )  # fmt: skip

    def describe(results):
        s = summarize_few_shot(results).set_index("classifier")["mean"]
        return f"accuracy logreg {s['logreg']:.3f}, centroid {s['centroid']:.3f}"

    return _measure(
        task,
        describe,
        f"{n_classes} classes × {shots} shots, {n_test} test/class, {dim} dims, "
        f"{repeats} repeats, C grid of 11 with 5-fold CV",
        device,
    )


def _measure(task, describe, setting: str, device: str) -> dict:
    before = _max_rss_mib()
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    start = time.perf_counter()
    result = task()
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = _max_rss_mib()
    return {
        "setting": setting,
        "device": str(torch.device("cuda" if cuda else "cpu")),
        "seconds": seconds,
        "peak_rss_mib": peak,
        "rss_above_data_mib": max(0.0, peak - before),
        "traced_peak_mib": traced_peak / 2**20,
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "result": describe(result),
    }


TASKS = {"anomaly": run_anomaly, "few_shot": run_few_shot}
TITLES = {"anomaly": "anomaly detection (one-vs-rest)", "few_shot": "5-shot learning"}


def _child(task: str, size: str, device: str) -> dict:
    cmd = [sys.executable, __file__, "--child", task, "--size", size, "--device", device]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _section(rows: dict[str, dict], size: str) -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [
        "## Downstream protocols (`benchmarks/bench_downstream.py`)\n",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} on "
        f"{platform.node() or 'this machine'}: {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__} with {torch.get_num_threads()} threads, sizes `{size}`; load "
        f"average at the start {load} (other jobs share these cores, so times are upper "
        "bounds). Synthetic Gaussian classes; each task runs in a fresh process.\n",
        "| task | setting | device | time (s) | peak RSS (MiB) | RSS above data (MiB) | "
        "traced NumPy peak (MiB) | GPU peak (MiB) | result |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for task, r in rows.items():
        gpu = "–" if r["gpu_peak_mib"] is None else f"{r['gpu_peak_mib']:.0f}"
        lines.append(
            f"| {TITLES[task]} | {r['setting']} | {r['device']} | {r['seconds']:.1f} | "
            f"{r['peak_rss_mib']:.0f} | {r['rss_above_data_mib']:.0f} | "
            f"{r['traced_peak_mib']:.0f} | {gpu} | {r['result']} |"
        )
    lines.append(
        "\nPeak RSS is the child's `ru_maxrss` (data included); *RSS above data* is what the "
        "task added on top of its inputs; the traced peak counts NumPy/Python allocations "
        "(tracemalloc), not torch's. Anomaly scoring never holds more than a 2048 × 8192 "
        "block of similarities.\n"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--size", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=sorted(TASKS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "downstream.md")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(TASKS[args.child](args.size, args.device)))
        return
    size = "quick" if args.quick else "full"
    rows = {}
    for task in TASKS:
        print(f"running {task} ({size}, {args.device}) …", flush=True)
        rows[task] = _child(task, size, args.device)
        print(f"  {rows[task]['seconds']:.1f} s, {rows[task]['result']}", flush=True)
    text = _section(rows, size)
    atomic_write(args.out, lambda tmp: tmp.write_text(text))
    print(text)


if __name__ == "__main__":
    main()
