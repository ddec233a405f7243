"""``glocal apply``: apply a saved transform to a feature matrix."""

from __future__ import annotations

import argparse

import numpy as np

from glocal.commands._common import existing_file, output_file
from glocal.errors import GlocalError
from glocal.io import check_writable, load_feature_matrix, save_npy
from glocal.transform import GlocalTransform


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``apply`` sub-command."""
    parser = subparsers.add_parser(
        "apply",
        help="apply a transform (ours or official) to features",
        description="Compute ((X - mean)/std) @ weights + bias for a features .npy and save it.",
    )
    parser.add_argument("--transform", type=existing_file, required=True, help="transform .npz")
    parser.add_argument(
        "--features", type=existing_file, required=True, help="features .npy (n, p)"
    )
    parser.add_argument("--out", type=output_file(".npy"), required=True, help="output .npy")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Transform and save."""
    check_writable(args.out, "--out")
    estimator = GlocalTransform.load(args.transform)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, in one line
        Z = estimator.transform(load_feature_matrix(args.features, "features"))
    if not np.isfinite(Z).all():
        bad = ~np.isfinite(Z)
        raise GlocalError(
            f"--transform {args.transform} applied to --features {args.features} gives "
            f"{bad.sum()} non-finite values in {bad.any(axis=1).sum()} of {len(Z)} rows "
            f"(float{8 * Z.itemsize} overflow: the largest |weight| is "
            f"{np.abs(estimator.weights_).max():.3g}); nothing was written: check that the "
            "transform belongs to these features and holds sensible weights"
        )
    save_npy(args.out, Z)
    print(f"saved {args.out} with shape {Z.shape}")
    return 0
