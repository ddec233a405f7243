"""How the default hyper-parameters were chosen: real MiniLM features and a planted problem.

Real: the quick profile's inputs (MiniLM "word: definition" features of the 1854 THINGS
concepts; 300k training and 30k validation triplets simulated from the VICE embedding on the
1483 training concepts, 50k test triplets on the 371 held-out ones; 10k vocabulary words as
the contrast set, 2000 others to measure). Planted: 1854 objects, 64 features, a hidden 16-d
embedding, 300k triplets, 80/10/10 split, 2000 contrast rows and 2000 fresh ones to measure
(``glocal.planted``). Every setting not named in a row is the library default. Writes
benchmarks/results/defaults.md.
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
from glocal.planted import planted_problem

HERE = Path(__file__).resolve().parent
ALPHAS = (0.0, 0.1, 0.25, 0.5)
#: Alternatives to the chosen defaults, each at alpha 0 and 0.25 (what changing one costs).
ALTERNATIVES: tuple[dict[str, Any], ...] = (
    {"tau": 0.1},
    {"lr": 1e-2},
    {"lmbda": 1e-2},
    {"init_scale": 1e-3, "min_steps": 100},  # the official start (with b = 0)
    {"student": "raw"},
)
HEADER = (
    "| setting | alpha | held-out acc | 10-NN overlap, held-out contrast | steps | stop | s |",
    "|---|---|---|---|---|---|---|",
)


def _fit_row(
    name: str, alpha: float, params: dict, X, train, val, contrast, test_X, test, probe
) -> str:
    start = time.perf_counter()
    est = GlocalTransform(alpha=alpha, device="cpu", **params)
    try:
        est.fit(X, train, contrast=contrast if alpha else None, val_triplets=val)
    except FitDivergedError as err:
        row = f"| {name} | {alpha:g} | – | – | – | diverged ({str(err).split(';')[0]}) | – |"
        print(row, flush=True)
        return row
    seconds = time.perf_counter() - start
    accuracy = odd_one_out_accuracy(est.transform(test_X), test, "dot")
    overlap = neighbour_overlap(probe, est.transform(probe), (10,))[10]
    row = (
        f"| {name} | {alpha:g} | {accuracy:.4f} | {overlap:.3f} | {est.n_steps_} | "
        f"{est.stop_reason_} | {seconds:.1f} |"
    )
    print(row, flush=True)
    return row


def _real() -> list[str]:
    from companion import fits, inputs

    data = inputs.load_inputs(
        "text:definitions", 300_000, 30_000, 50_000, n_contrast=10_000, n_contrast_eval=2000,
        seed=0, device="cpu",
    )  # fmt: skip
    X, train, val = fits._training_problem(data)
    args = (X, train, val, data.contrast, data.features, data.triplets.test, data.contrast_eval)
    lines = [
        "### Real features (MiniLM, the quick profile's inputs)\n",
        "Held-out accuracy on the 50k test triplets of held-out concepts (the generating VICE "
        f"embedding scores {data.triplets.ceiling:.4f}); 10-NN overlap with the original "
        "features on the 2000 held-out contrast words.\n",
        *HEADER,
    ]
    lines += [_fit_row("defaults", a, {}, *args) for a in ALPHAS]
    for params in ALTERNATIVES:
        name = ", ".join(f"{k}={v}" for k, v in params.items())
        lines += [_fit_row(name, a, params, *args) for a in (0.0, 0.25)]
    return lines


def _planted() -> list[str]:
    problem = planted_problem(n_objects=1854, n_features=64, n_dims=16, n_contrast=4000, seed=0)
    order = np.random.default_rng(0).permutation(len(problem.triplets))
    n = len(order) // 10
    test, val, train = (problem.triplets[order[:n]], problem.triplets[order[n : 2 * n]],
                        problem.triplets[order[2 * n :]])  # fmt: skip
    contrast, probe = problem.contrast[:2000], problem.contrast[2000:]
    generator = odd_one_out_accuracy(problem.H, test)
    args = (problem.X, train, val, contrast, problem.X, test, probe)
    lines = [
        "\n### Planted problem\n",
        f"The generator itself scores {generator:.4f} on the test triplets; the contrast rows "
        "are pure noise, so keeping their neighbourhoods must cost alignment.\n",
        *HEADER,
    ]
    lines += [_fit_row("defaults", a, {}, *args) for a in ALPHAS]
    return lines


def main() -> None:
    torch.set_num_threads(2)
    lines = [
        "## Choosing the defaults (`benchmarks/bench_defaults.py`)\n",
        f"CPU, torch {torch.__version__}; every setting not named is the library default "
        "(init: the best scaled identity, b = 0; Adam lr 1e-3; tau 0.05; lambda 1e-3; checks "
        "every 10 steps on the held-out objective). Rows below the defaults change one "
        "setting at alpha 0 and 0.25.\n",
    ]
    lines += _real() + _planted()
    out = HERE / "results" / "defaults.md"
    atomic_write(out, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
