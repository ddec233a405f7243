"""``glocal search``: grid search with object-disjoint CV, one Dask task per (setting, fold)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from glocal.commands._common import existing_file
from glocal.errors import GlocalError
from glocal.io import atomic_folder, check_writable, load_feature_matrix
from glocal.search import SCORINGS, GlocalSearchCV, grids, resolve_grid
from glocal.transform import PRESETS, GlocalTransform
from glocal.triplets import load_triplets

#: What ``--out`` holds: one search's results, replaced as a whole by the next.
OUTPUTS = ("cv_results.csv", "best_params.json", "best_transform.npz")


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
        "--grid",
        default="small",
        help=f'{", ".join(grids())}, or a JSON file {{name: [values]}} (or {{"preset": '
        'PRESET, "scoring": RULE, "grid": {name: [values]}})',
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="the transform every setting starts from (default: the grid's own preset, else "
        "glocal); a grid that names a preset runs only with it",
    )
    parser.add_argument("--cv", type=int, default=3, help="object-disjoint folds (default 3)")
    parser.add_argument(
        "--scoring",
        choices=sorted(SCORINGS),
        help="selection rule (default: the grid's own rule, else alignment)",
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


def _grid_spec(grid: str) -> dict[str, Any]:
    """The named grid ``grid``, or the JSON file's top level when it holds a ``"grid"``."""
    named = grids()
    if grid in named:
        return named[grid]
    try:
        spec = json.loads(Path(grid).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # resolve_grid names what is wrong with it
    return spec if isinstance(spec, dict) and "grid" in spec else {}


def grid_assumptions(grid: str, preset: str | None, scoring: str | None) -> tuple[str, str]:
    """The preset and the selection rule a search of ``grid`` runs with.

    A grid may name both (``"preset"``, ``"scoring"`` in ``grids.json`` or beside ``"grid"``
    in a JSON file): ``--preset`` and ``--scoring`` default to them. A grid that names a
    preset runs only with it, and no setting may undo what the preset fixes (alpha = 0 for
    naive and global, the regulariser): such a grid cannot be run as named and is refused.
    """
    spec = _grid_spec(grid)
    own = spec.get("preset")
    if own is not None and own not in PRESETS:
        raise GlocalError(
            f"--grid {grid}: its preset {own!r} is not one of {sorted(PRESETS)}; fix the file"
        )
    if preset is not None and own is not None and preset != own:
        raise GlocalError(
            f"--grid {grid} is a grid of the {own} preset ({_describe(own)}), so --preset "
            f"{preset} cannot run it as named; leave --preset out, or use a grid that names "
            "no preset (a JSON file {name: [values]})"
        )
    chosen = preset or own or "glocal"
    fixed: dict[str, Any] = {}
    if preset or own:  # a grid without a preset may vary what glocal, the default, fixes
        fixed["regularizer"] = PRESETS[chosen]["regularizer"]
        if PRESETS[chosen]["alpha"] == 0:
            fixed["alpha"] = 0.0
    for i, setting in enumerate(resolve_grid(grid)):
        for name, value in fixed.items():
            if name in setting and setting[name] != value:
                raise GlocalError(
                    f"--grid {grid}: setting {i} has {name}={setting[name]!r}, but the "
                    f"{chosen} preset fixes {name}={value!r}; drop {name} from the grid or "
                    "choose another --preset"
                )
    rule = scoring or spec.get("scoring") or "alignment"
    if rule not in SCORINGS:
        raise GlocalError(f"--grid {grid}: its scoring {rule!r} is not one of {sorted(SCORINGS)}")
    return chosen, rule


def _describe(preset: str) -> str:
    return ", ".join(f"{name} = {value}" for name, value in PRESETS[preset].items())


def run(args: argparse.Namespace) -> int:
    """Search, then write cv_results.csv, best_params.json and best_transform.npz.

    Everything is checked before the search starts. The three files are written into a temp
    folder beside ``--out``, which then replaces ``--out`` in one step: a failed search or a
    failure while writing (a full disk) leaves nothing behind and the previous results intact.
    """
    import pandas as pd

    out = Path(args.out)
    check_writable(out / OUTPUTS[0], "--out")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in OUTPUTS)
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if others[3:] else "")
            raise GlocalError(
                f"--out {out} holds files of its own ({shown}); the results replace the whole "
                "folder, so give a new folder, or one holding only an earlier search's results"
            )
    preset, scoring = grid_assumptions(args.grid, args.preset, args.scoring)
    X = load_feature_matrix(args.features, "features")
    triplets = load_triplets(args.triplets, n_objects=len(X))
    contrast = load_feature_matrix(args.contrast, "contrast") if args.contrast else None
    search = GlocalSearchCV(
        GlocalTransform.preset(preset),
        param_grid=args.grid,
        cv=args.cv,
        scoring=scoring,
        min_overlap=args.min_overlap,
        scheduler=args.scheduler,
        n_workers=args.workers,
        cache=not args.no_cache,
        verbose=0 if args.quiet else 1,
    )
    search.fit(X, triplets, contrast=contrast)
    table = pd.DataFrame(search.cv_results_).drop(columns=["params"])
    record = {"scoring": scoring, "preset": preset, "best_params": search.best_params_,
              "best_score": search.best_score_}  # fmt: skip
    with atomic_folder(out) as folder:  # the three files replace a previous run's as one
        table.to_csv(folder / OUTPUTS[0], index=False)
        (folder / OUTPUTS[1]).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        search.best_estimator_.save(folder / OUTPUTS[2])
    i = search.best_index_
    accuracy = search.cv_results_["mean_test_accuracy"][i]
    spread = search.cv_results_["std_test_accuracy"][i]
    kept = int(search.cv_results_["n_no_improvement"].sum())
    print(
        f"best ({scoring}): {search.best_params_} of the {preset} preset with validation accuracy "
        f"{accuracy:.4f} ± {spread:.4f}; {search.n_fits_computed_} fits ran on "
        f"{search.engine_}"
        + (f" ({kept} kept their start)" if kept else "")
        + f"; results in {out}",
        file=sys.stdout,
    )
    return 0
