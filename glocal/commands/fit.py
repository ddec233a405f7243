"""``glocal fit``: fit a transform from features and triplets and save it as npz."""

from __future__ import annotations

import argparse
import inspect
import typing
from typing import Any

from glocal.commands._common import check_device, existing_file, output_file
from glocal.io import check_writable, load_feature_matrix
from glocal.transform import PRESETS, GlocalTransform
from glocal.triplets import load_triplets

#: Hyper-parameters that the command sets itself rather than through a flag of the same name.
_OWN_FLAGS = {"verbose": "--quiet"}


def _none_or(kind: type) -> Any:
    def parse(value: str) -> Any:
        return None if value.lower() in ("none", "full") else kind(value)

    parse.__name__ = kind.__name__
    return parse


def hyper_parameter_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per hyper-parameter of :class:`GlocalTransform`, derived from its signature.

    Types come from the annotations, help texts from the numpydoc ``Parameters`` section; a
    flag left out keeps the preset's value.
    """
    hints = typing.get_type_hints(GlocalTransform.__init__)
    docs = GlocalTransform.parameter_help()
    group = parser.add_argument_group(
        "hyper-parameters (default: the preset's value)", argument_default=argparse.SUPPRESS
    )
    for name in inspect.signature(GlocalTransform).parameters:
        if name in _OWN_FLAGS:
            continue
        flag = f"--{name.replace('_', '-')}"
        hint = hints[name]
        helptext = docs.get(name, "")
        if hint is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, help=helptext)
            continue
        args = typing.get_args(hint)
        if type(None) in args:
            kind = next(a for a in args if a is not type(None))
            group.add_argument(flag, type=_none_or(kind), help=f"{helptext} ('none': None)")
        else:
            group.add_argument(flag, type=hint, help=helptext)


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
    parser.add_argument("--model", help="source model id to record in the file's metadata")
    parser.add_argument("--module", help="source module to record in the file's metadata")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    hyper_parameter_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit and save; print a one-line summary."""
    check_writable(args.out, "--out")  # before the fit, not after it
    X = load_feature_matrix(args.features, "features")
    triplets = load_triplets(args.triplets, n_objects=len(X))
    val = load_triplets(args.val_triplets, n_objects=len(X)) if args.val_triplets else None
    contrast = load_feature_matrix(args.contrast, "contrast") if args.contrast else None
    names = [n for n in inspect.signature(GlocalTransform).parameters if n not in _OWN_FLAGS]
    overrides = {name: getattr(args, name) for name in names if hasattr(args, name)}
    estimator = GlocalTransform.preset(args.preset, verbose=0 if args.quiet else 1, **overrides)
    check_device(estimator.device)
    estimator.fit(X, triplets, contrast=contrast, val_triplets=val)  # errors say what to fix
    estimator.save(args.out, model=args.model, module=args.module)
    best = next(h for h in estimator.history_ if h["step"] == estimator.best_step_)
    summary = f"saved {args.out} (train acc {estimator.score(X, triplets):.4f}"
    if val is not None:
        summary += f", val acc {best['val_acc']:.4f}"
    summary += (
        f"; kept step {estimator.best_step_} of {estimator.n_steps_}, "
        f"{estimator.stop_reason_.replace('_', ' ')})"
    )
    if estimator.stop_reason_ == "no_improvement" and estimator.n_steps_ == 0:
        summary += (
            "; the start's held-out objective is already 0, its floor (alpha = 1 and the start "
            "keeps every neighbourhood), so the file holds the start (W = β I) and no step ran"
        )
    elif estimator.stop_reason_ == "no_improvement":
        smallest = min(h["lr"] for h in estimator.history_[1:])
        summary += (
            f"; no step size from --lr {estimator.lr:g} down to {smallest:g} improved the "
            "held-out objective, so the file holds the start (W = β I): the start is already "
            "optimal for these settings, or --lr is far too large"
        )
    print(summary)
    return 0
