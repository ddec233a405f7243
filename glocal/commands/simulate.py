"""``glocal simulate``: draw human-like triplets from an embedding."""

from __future__ import annotations

import argparse
from pathlib import Path

from glocal.commands._common import existing_file, non_negative_int, positive_int
from glocal.errors import GlocalError
from glocal.io import check_writable, load_feature_matrix
from glocal.triplets import TEXT_SUFFIXES, save_triplets, simulate_triplets


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="simulate odd-one-out triplets from an embedding",
        description="Sample object triples uniformly and the pair kept together from the "
        "softmax over the three pairwise dot products (the SPoSE/VICE choice model).",
    )
    parser.add_argument(
        "--embedding",
        type=existing_file,
        required=True,
        help="embedding .npy (n_objects, d), e.g. the VICE THINGS embedding",
    )
    parser.add_argument("--n", type=positive_int, required=True, help="number of triplets")
    parser.add_argument("--out", required=True, help="output .npy or .txt")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="random seed, 0 or more (default 0)"
    )
    parser.add_argument("--temperature", type=float, default=1.0, help="softmax temperature")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate and save."""
    suffixes = (".npy", *TEXT_SUFFIXES)
    if Path(args.out).suffix.lower() not in suffixes:
        raise GlocalError(f"--out {args.out}: the name must end in one of {', '.join(suffixes)}")
    check_writable(args.out, "--out")
    embedding = load_feature_matrix(args.embedding, "embedding")
    triplets = simulate_triplets(embedding, args.n, seed=args.seed, temperature=args.temperature)
    path = save_triplets(args.out, triplets)
    print(f"saved {len(triplets)} triplets to {path}")
    return 0
