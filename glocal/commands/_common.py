"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path


def existing_file(value: str) -> Path:
    """argparse type: a path that must exist."""
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file {value} does not exist")
    return path


def output_file(suffix: str):
    """argparse type: an output path with the given suffix."""

    def check(value: str) -> Path:
        path = Path(value)
        if path.suffix != suffix:
            raise argparse.ArgumentTypeError(f"{value}: the output name must end in {suffix}")
        return path

    return check
