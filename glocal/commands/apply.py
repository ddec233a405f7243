"""``glocal apply``: apply a saved transform to a feature matrix."""

from __future__ import annotations

import argparse

from glocal.commands._common import existing_file, output_file
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
    Z = estimator.transform(load_feature_matrix(args.features, "features"))
    save_npy(args.out, Z)
    print(f"saved {args.out} with shape {Z.shape}")
    return 0
