"""``glocal score``: odd-one-out accuracy of features (optionally transformed) on triplets."""

from __future__ import annotations

import argparse

from glocal.commands._common import existing_file
from glocal.evaluation.alignment import triplet_similarities
from glocal.evaluation.similarity import default_similarity
from glocal.io import load_feature_matrix
from glocal.transform import GlocalTransform
from glocal.triplets import load_triplets


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``score`` sub-command."""
    parser = subparsers.add_parser(
        "score",
        help="odd-one-out accuracy on triplets",
        description="Odd-one-out accuracy (ties count as wrong). Without --transform the raw "
        "features are scored with cosine similarity (zero-shot, as in the paper); with it, "
        "the transformed features with dot products.",
    )
    parser.add_argument("--features", type=existing_file, required=True, help="features .npy")
    parser.add_argument(
        "--triplets",
        type=existing_file,
        required=True,
        help="triplets: .npy / .txt (0-based) or THINGS-data .csv",
    )
    parser.add_argument("--transform", type=existing_file, help="transform .npz to apply first")
    parser.add_argument(
        "--similarity",
        choices=["dot", "cosine"],
        help="override the similarity (default: cosine raw, dot transformed)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the accuracy, and why it is low when similarities tie."""
    X = load_feature_matrix(args.features, "features")
    triplets = load_triplets(args.triplets, n_objects=len(X))
    similarity = args.similarity or default_similarity(transformed=bool(args.transform))
    if args.transform:
        X = GlocalTransform.load(args.transform).transform(X)
    sims = triplet_similarities(X, triplets, similarity)
    others = sims[:, 1:].max(axis=1)
    accuracy = float((sims[:, 0] > others).mean())  # as odd_one_out_accuracy: ties are wrong
    line = f"odd-one-out accuracy: {accuracy:.4f} ({len(triplets)} triplets, {similarity})"
    tied = int((sims[:, 0] == others).sum())
    if tied == len(triplets):
        line += (
            f"; all {tied} triplets tie: the features give the kept pair the same similarity "
            "as another pair (e.g. constant features), and ties count as wrong"
        )
    elif tied:
        line += f"; {tied} triplets tie and count as wrong"
    print(line)
    return 0
