"""Do fits move? The cases where a fit used to keep its start and call it convergence.

Real features: the quick profile's inputs (MiniLM "word: definition" features of the 1854
THINGS concepts; 300k training and 30k validation triplets simulated from VICE on the 1483
training concepts, 50k test triplets on the 371 held-out ones; 10k vocabulary words as the
contrast set, 2000 others to measure). Cases (issue 18): a large alpha, little data, a warm
start along lambda, and alpha = 1 (the local term alone). Every setting not named is the
library default. ``moved`` is the largest absolute change of W from where the fit started
(0 means the fit returned its start). Writes benchmarks/results/convergence.md.

Run: ``.venv/bin/python benchmarks/bench_convergence.py`` (about 5 min on 2 cores).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glocal import GlocalTransform, odd_one_out_accuracy
from glocal.errors import FitDivergedError
from glocal.evaluation.neighbours import neighbour_overlap
from glocal.io import atomic_write

HERE = Path(__file__).resolve().parent
HEADER = (
    "| fit | held-out acc | 10-NN overlap, held-out contrast | steps | best step | stop | "
    "moved | s |",
    "|---|---|---|---|---|---|---|---|",
)
#: (label, alpha, training triplets (None: all), settings, warm start from these settings)
CASES: tuple[tuple[str, float, int | None, dict[str, Any], dict[str, Any] | None], ...] = (
    ("α 0.75, defaults", 0.75, None, {}, None),
    ("α 0.75, lr 1e-4", 0.75, None, {"lr": 1e-4}, None),
    ("α 0.25, 10k triplets, defaults", 0.25, 10_000, {}, None),
    ("α 0.25, 30k triplets, defaults", 0.25, 30_000, {}, None),
    ("α 0.25, 30k triplets, lr 1e-4", 0.25, 30_000, {"lr": 1e-4}, None),
    ("α 0.25 λ 0.001, warm start from λ 0.1", 0.25, None, {"lmbda": 1e-3}, {"lmbda": 0.1}),
    ("α 0.25 λ 0.001, from scratch", 0.25, None, {"lmbda": 1e-3}, None),
    ("α 1.0, defaults", 1.0, None, {}, None),
    ("α 1.0, lr 1e-4", 1.0, None, {"lr": 1e-4}, None),
)


def _row(label: str, alpha: float, n: int | None, settings: dict, warm: dict | None, data) -> str:
    from companion.paper import fits

    inputs = data if n is None else data.with_train_size(n)
    X, train, val = fits._training_problem(inputs)
    contrast = inputs.contrast if alpha > 0 else None
    began = time.perf_counter()
    est = GlocalTransform(alpha=alpha, device="cpu")
    try:
        if warm is not None:
            est.set_params(**warm).fit(X, train, contrast=contrast, val_triplets=val)
        start = None if warm is None else est.weights_.copy()
        est.set_params(**settings, warm_start=warm is not None)
        est.fit(X, train, contrast=contrast, val_triplets=val)
    except FitDivergedError as err:
        line = f"| {label} | FitDivergedError: {str(err).split(';')[0]} | | | | | | |"
        print(line, flush=True)
        return line
    seconds = time.perf_counter() - began
    if start is None:
        start = est.init_scale_ * np.eye(len(est.weights_), dtype=np.float32)
    moved = float(np.abs(est.weights_ - start).max())
    accuracy = odd_one_out_accuracy(est.transform(inputs.features), inputs.triplets.test, "dot")
    overlap = neighbour_overlap(inputs.contrast_eval, est.transform(inputs.contrast_eval), (10,))
    line = (
        f"| {label} | {accuracy:.4f} | {overlap[10]:.3f} | {est.n_steps_} | {est.best_step_} | "
        f"{est.stop_reason_} | {moved:.2g} | {seconds:.0f} |"
    )
    print(line, flush=True)
    return line


def main() -> None:
    from companion.paper import inputs

    torch.set_num_threads(2)
    data = inputs.load_inputs(
        "text:definitions", 300_000, 30_000, 50_000, n_contrast=10_000, n_contrast_eval=2000,
        seed=0, device="cpu",
    )  # fmt: skip
    zero_shot = odd_one_out_accuracy(data.features, data.triplets.test, "cosine")
    lines = [
        "## Do fits move? (`benchmarks/bench_convergence.py`)\n",
        f"CPU, torch {torch.__version__}; the quick profile's real inputs; every setting not "
        "named is the library default. Zero-shot held-out accuracy (cosine) "
        f"{zero_shot:.4f}; the generating VICE embedding scores {data.triplets.ceiling:.4f}. "
        "`moved`: the largest absolute change of W from where the fit started.\n",
        *HEADER,
    ]
    lines += [_row(*case, data) for case in CASES]
    out = HERE / "results" / "convergence.md"
    atomic_write(out, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
