"""How the default hyper-parameters were chosen: alpha and lr on a planted problem.

1854 objects, 64 features, a hidden 16-d human embedding, 300k simulated triplets, a 90/10
random split, a 2000-row contrast set (``glocal.planted``). Every other setting is the
library default. Writes benchmarks/results/defaults.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from glocal import GlocalTransform, odd_one_out_accuracy, random_split
from glocal.evaluation.neighbours import neighbour_overlap
from glocal.io import atomic_write
from glocal.planted import planted_problem

HERE = Path(__file__).resolve().parent
ALPHAS = (0.0, 0.05, 0.1, 0.25)
LRS = (1e-2, 3e-3)


def main() -> None:
    problem = planted_problem(n_objects=1854, n_features=64, n_dims=16, seed=0)
    split = random_split(problem.triplets, test_size=0.1, seed=0)
    generator = odd_one_out_accuracy(problem.H, split.test)
    lines = [
        "## Choosing the defaults (`benchmarks/bench_defaults.py`)\n",
        "Planted problem: 1854 objects, 64 features, a hidden 16-d embedding, 300k simulated "
        f"triplets, 90/10 split; the generator itself scores {generator:.4f} on the held-out "
        f"triplets. Other settings are the defaults; CPU, torch {torch.__version__}.\n",
        "| alpha | lr | held-out acc | 10-NN overlap of contrast set | epochs | fit (s) |",
        "|---|---|---|---|---|---|",
    ]
    for alpha in ALPHAS:
        for lr in LRS:
            start = time.perf_counter()
            est = GlocalTransform(alpha=alpha, lr=lr, device="cpu", progress=False)
            est.fit(problem.X, split.train, contrast=problem.contrast, val_triplets=split.test)
            seconds = time.perf_counter() - start
            overlap = neighbour_overlap(problem.contrast, est.transform(problem.contrast), ks=(10,))
            row = (
                f"| {alpha} | {lr:g} | {est.score(problem.X, split.test):.4f} | "
                f"{overlap[10]:.3f} | {len(est.history_)} | {seconds:.1f} |"
            )
            print(row, flush=True)
            lines.append(row)
    out = HERE / "results" / "defaults.md"
    atomic_write(out, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
