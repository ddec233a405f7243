"""``glocal search``: grid search with object-disjoint CV, one Dask task per (setting, fold)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from glocal.commands._common import existing_file
from glocal.io import atomic_path, check_writable, load_feature_matrix
from glocal.search import SCORINGS, GlocalSearchCV, grids
from glocal.triplets import load_triplets


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` sub-command."""
    named = ", ".join(f"{name} ({spec['description']})" for name, spec in grids().items())
    parser = subparsers.add_parser(
        "search",
        help="choose hyper-parameters by grid search with object-disjoint CV",
        description="Fit every setting of a grid on object-disjoint folds of the training "
        "objects (each fit one Dask task, cached), write the results table, and refit the "
        f"selected setting on all triplets. Named grids: {named}.",
    )
    parser.add_argument("--features", type=existing_file, required=True, help="features .npy")
    parser.add_argument(
        "--triplets", type=existing_file, required=True, help="training triplets (.npy/.txt/.csv)"
    )
    parser.add_argument("--contrast", type=existing_file, help="contrast features .npy (n, p)")
    parser.add_argument(
        "--grid", default="small", help="paper, small, or a JSON file {name: [values]}"
    )
    parser.add_argument("--cv", type=int, default=3, help="object-disjoint folds (default 3)")
    parser.add_argument(
        "--scoring",
        choices=sorted(SCORINGS),
        default="alignment",
        help="selection rule (default alignment)",
    )
    parser.add_argument(
        "--min-overlap", type=float, default=0.5, help="overlap kept under --scoring tradeoff"
    )
    parser.add_argument("--out", required=True, help="output folder for the results")
    parser.add_argument(
        "--scheduler",
        help="Dask scheduler address (default: $GLOCAL_SCHEDULER or a local cluster); "
        "'serial' runs in this process",
    )
    parser.add_argument("--workers", type=int, help="workers of the local cluster")
    parser.add_argument("--no-cache", action="store_true", help="do not reuse or keep fits")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Search, then write cv_results.csv, best_params.json and best_transform.npz.

    Everything is checked before the search starts, and ``--out`` is created only when the
    results are written: a failed search leaves nothing behind.
    """
    import pandas as pd

    out = Path(args.out)
    check_writable(out / "cv_results.csv", "--out")
    X = load_feature_matrix(args.features, "features")
    triplets = load_triplets(args.triplets, n_objects=len(X))
    contrast = load_feature_matrix(args.contrast, "contrast") if args.contrast else None
    search = GlocalSearchCV(
        param_grid=args.grid,
        cv=args.cv,
        scoring=args.scoring,
        min_overlap=args.min_overlap,
        scheduler=args.scheduler,
        n_workers=args.workers,
        cache=not args.no_cache,
        verbose=0 if args.quiet else 1,
    )
    search.fit(X, triplets, contrast=contrast)
    table = pd.DataFrame(search.cv_results_).drop(columns=["params"])
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "cv_results.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "best_params.json") as tmp:
        record = {"scoring": args.scoring, "best_params": search.best_params_,
                  "best_score": search.best_score_}  # fmt: skip
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    search.best_estimator_.save(out / "best_transform.npz")
    i = search.best_index_
    accuracy = search.cv_results_["mean_test_accuracy"][i]
    spread = search.cv_results_["std_test_accuracy"][i]
    kept = int(search.cv_results_["n_no_improvement"].sum())
    print(
        f"best ({args.scoring}): {search.best_params_} with validation accuracy "
        f"{accuracy:.4f} ± {spread:.4f}; {search.n_fits_computed_} fits ran on "
        f"{search.engine_}"
        + (f" ({kept} kept their start)" if kept else "")
        + f"; results in {out}",
        file=sys.stdout,
    )
    return 0
