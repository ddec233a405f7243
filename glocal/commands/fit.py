"""``glocal fit``: fit a transform from features and triplets and save it as npz."""

from __future__ import annotations

import argparse

from glocal._io import load_feature_matrix
from glocal.commands._common import existing_file, output_file
from glocal.transform import PRESETS, GlocalTransform
from glocal.triplets import load_triplets

_FLOAT_PARAMS = ("alpha", "lmbda", "tau", "lr", "init_scale", "tol")
_INT_PARAMS = ("max_epochs", "contrast_batch_size", "patience", "min_steps", "seed")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fit`` sub-command."""
    parser = subparsers.add_parser(
        "fit",
        help="fit a gLocal / global / naive transform",
        description="Fit an affine map ((x - mean)/std) W + b that aligns features with human "
        "odd-one-out triplets, and save it in the official npz format.",
    )
    parser.add_argument(
        "--features",
        type=existing_file,
        required=True,
        help="THINGS features, .npy of shape (1854, p) in THINGS object order",
    )
    parser.add_argument(
        "--triplets",
        type=existing_file,
        required=True,
        help="training triplets: .npy / .txt (0-based) or THINGS-data .csv",
    )
    parser.add_argument("--out", type=output_file(".npz"), required=True, help="output .npz")
    parser.add_argument(
        "--contrast",
        type=existing_file,
        help="generic contrast features .npy (n, p); needed when alpha > 0",
    )
    parser.add_argument(
        "--val-triplets", type=existing_file, help="validation triplets for early stopping"
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="glocal",
        help="the paper's transform to start from (default: glocal)",
    )
    for name in _FLOAT_PARAMS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, help=f"override {name}")
    for name in _INT_PARAMS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"override {name}")
    parser.add_argument("--triplet-batch-size", type=int, help="triplets per step (0 = full batch)")
    parser.add_argument("--regularizer", choices=["eye", "l2"], help="override the penalty")
    parser.add_argument("--no-bias", action="store_true", help="fit W only (no offset b)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--model", help="source model id to record in the file's metadata")
    parser.add_argument("--module", help="source module to record in the file's metadata")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit and save; print a one-line summary."""
    X = load_feature_matrix(args.features, "features")
    triplets = load_triplets(args.triplets, n_objects=len(X))
    val = load_triplets(args.val_triplets, n_objects=len(X)) if args.val_triplets else None
    contrast = load_feature_matrix(args.contrast, "contrast") if args.contrast else None
    overrides = {
        name: getattr(args, name)
        for name in (*_FLOAT_PARAMS, *_INT_PARAMS, "regularizer")
        if getattr(args, name) is not None
    }
    if args.triplet_batch_size is not None:
        overrides["triplet_batch_size"] = args.triplet_batch_size or None
    if args.no_bias:
        overrides["bias"] = False
    estimator = GlocalTransform.preset(
        args.preset, device=args.device, progress=not args.quiet, **overrides
    )
    estimator.fit(X, triplets, contrast=contrast, val_triplets=val)
    estimator.save(args.out, model=args.model, module=args.module)
    last = estimator.history_[estimator.best_epoch_ - 1] if estimator.best_epoch_ else {}
    summary = f"saved {args.out} (train acc {estimator.score(X, triplets):.4f}"
    if "val_acc" in last:
        summary += f", val acc {last['val_acc']:.4f} at epoch {estimator.best_epoch_}"
    print(summary + ")")
    return 0
