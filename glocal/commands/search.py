"""``glocal search``: grid search with object-disjoint CV, one Dask task per (setting, fold)."""

from __future__ import annotations

import argparse
import json
import sys

from glocal.commands._common import existing_file
from glocal.io import atomic_path, load_feature_matrix
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
    """Search, then write cv_results.csv, best_params.json and best_transform.npz."""
    from pathlib import Path

    from glocal.errors import GlocalError

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GlocalError(f"--out {out}: cannot create the folder ({err})") from err
    if not os_writable(out):
        raise GlocalError(f"--out {out}: the folder is not writable; choose another")
    X = load_feature_matrix(args.features, "features")
    triplets = load_triplets(args.triplets, n_objects=len(X))
    contrast = load_feature_matrix(args.contrast, "contrast") if args.contrast else None
    search = GlocalSearchCV(
        args.grid,
        cv=args.cv,
        scoring=args.scoring,
        min_overlap=args.min_overlap,
        scheduler=args.scheduler,
        n_workers=args.workers,
        cache=not args.no_cache,
        progress=not args.quiet,
    )
    search.fit(X, triplets, contrast=contrast)
    table = search.cv_results_.drop(columns=["params"])
    with atomic_path(out / "cv_results.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "best_params.json") as tmp:
        record = {"scoring": args.scoring, "best_params": search.best_params_}
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    search.best_estimator_.save(out / "best_transform.npz")
    best = search.cv_results_.iloc[search.best_index_]
    print(
        f"best ({args.scoring}): {search.best_params_} with validation accuracy "
        f"{best['mean_val_accuracy']:.4f} ± {best['std_val_accuracy']:.4f}; "
        f"{search.n_fits_computed_} fits ran on {search.engine_}; results in {out}",
        file=sys.stdout,
    )
    return 0


def os_writable(folder: object) -> bool:
    """True when a file can be created in ``folder``."""
    import os

    return os.access(str(folder), os.W_OK | os.X_OK)
