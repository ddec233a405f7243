"""``glocal reproduce``: prepare a profile's inputs, run the result notebooks with papermill
(cached) and build the book; ``--plan`` only lists the inputs."""

from __future__ import annotations

import argparse
import sys

from companion.pipeline.runner import Layout, reproduce


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``reproduce`` sub-command."""
    parser = subparsers.add_parser(
        "reproduce",
        help="run the result notebooks and build the book",
        description="Run notebooks/NN_slug.ipynb with papermill into "
        "notebooks/executed/PROFILE/ (parameters from notebooks/profiles/NN_slug.json, figures "
        "and tables under results/PROFILE/NN_slug), re-running a notebook only when its source, "
        "parameters, the glocal package or its declared input data changed; then build the "
        "Jupyter Book into BUILD_DIR/html. Run it from the repository root (or pass --root).",
    )
    parser.add_argument(
        "--profile",
        default="quick",
        help="profile key in the profile files: quick, paper, smoke, tiny",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NN", help="run only these notebooks (05 or 05_few_shot)"
    )
    parser.add_argument("--force", action="store_true", help="re-run even when the key is current")
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="run N notebooks at once (default 1)"
    )
    stages = parser.add_mutually_exclusive_group()
    stages.add_argument("--no-book", action="store_true", help="run the notebooks only")
    stages.add_argument(
        "--book-only", action="store_true", help="build the book from existing executed notebooks"
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print every input the profile needs (data files, image datasets, feature stores, "
        "searches and fits), which are present, and the command or manual step that provides "
        "each missing one; run nothing",
    )
    parser.add_argument(
        "--no-prepare",
        action="store_true",
        help="run the notebooks without first fetching data, extracting feature stores and "
        "running the fits (profiles with an entry in notebooks/profiles/prepare.json)",
    )
    parser.add_argument("--build-dir", help="book output folder; the site goes to BUILD_DIR/html")
    parser.add_argument("--root", help="repository root with _config.yml (default: the cwd)")
    parser.add_argument("--notebooks-dir", help="notebooks folder (default: ROOT/notebooks)")
    parser.add_argument(
        "--executed-dir", help="executed notebooks (default: NOTEBOOKS_DIR/executed/PROFILE)"
    )
    parser.add_argument("--results-dir", help="figures and tables (default: ROOT/results/PROFILE)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the notebooks and/or build the book, then print a summary."""
    layout = Layout.create(
        args.profile,
        root=args.root,
        notebooks_dir=args.notebooks_dir,
        executed_dir=args.executed_dir,
        results_dir=args.results_dir,
        build_dir=args.build_dir,
    )
    if args.plan:
        from companion.pipeline.plan import make_plan

        plan = make_plan(args.profile, layout.notebooks_dir, layout.executed_dir, only=args.only)
        print(plan.render())
        return 0
    report = reproduce(
        args.profile,
        only=args.only,
        force=args.force,
        book=not args.no_book,
        run=not args.book_only,
        layout=layout,
        jobs=args.jobs,
        prepare=not args.no_prepare,
    )
    if not args.book_only:
        print(
            f"notebooks ({args.profile}): {len(report.ran)} ran, {len(report.skipped)} up to "
            f"date; executed copies in {layout.executed_dir}",
            file=sys.stderr,
        )
    if report.index is not None:
        print(f"book: {report.index}")
    return 0
