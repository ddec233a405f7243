"""The ``glocal`` command line: thin wrappers over the library, one sub-command per module."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from glocal import __version__
from glocal.errors import GlocalError

# Each module in glocal/commands/ exposes ``register(subparsers)``; the parser it adds must set
# ``func`` (called with the parsed namespace, returning an exit code or None).
COMMAND_MODULES = (
    "fit",
    "apply",
    "score",
    "simulate",
    "data",
    "extract",
    "search",
    # further sub-commands: add the module name here
)
#: Sub-commands contributed by other installed packages (the paper companion adds ``reproduce``):
#: an entry point in this group names a ``register(subparsers)`` function.
ENTRY_POINT_GROUP = "glocal.commands"
#: Set to 1 to see the traceback of an unexpected error instead of its one-line summary.
ENV_DEBUG = "GLOCAL_DEBUG"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered sub-command."""
    parser = _Parser(
        prog="glocal",
        description="Fit, apply and evaluate gLocal transforms of neural network features.",
    )
    parser.add_argument("--version", action="version", version=f"glocal {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"glocal.commands.{name}").register(subparsers)
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        entry_point.load()(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line: any failure exits with status 2 and one line on stderr."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print(f"glocal {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get(ENV_DEBUG, "").lower() in ("1", "true", "yes"):
            raise
        print(f"glocal {args.command}: error: {describe_error(err)}", file=sys.stderr)
        return 2
    return int(code or 0)


def describe_error(err: BaseException) -> str:
    """One line for the user: the message of a :class:`GlocalError`, else what and where."""
    if isinstance(err, GlocalError):
        text = str(err)
    elif isinstance(err, OSError) and err.filename is not None:
        names = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
        text = (
            f"{names}: {err.strerror or err} (check that the path exists and that you may read "
            "or write it)"
        )
    elif isinstance(err, MemoryError):
        text = f"out of memory ({str(err) or 'MemoryError'}); use smaller inputs or more memory"
    elif isinstance(err, (OSError, FloatingPointError)):
        text = f"{type(err).__name__}: {err}"
    else:
        text = (
            f"unexpected {type(err).__name__}: {err} (a bug in glocal, please report it; "
            f"{ENV_DEBUG}=1 shows the traceback)"
        )
    return " ".join(text.split())


if __name__ == "__main__":
    raise SystemExit(main())
