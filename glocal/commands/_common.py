"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

from glocal.errors import GlocalError


def existing_file(value: str) -> Path:
    """argparse type: a path that must exist."""
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file {value} does not exist")
    return path


def output_file(suffix: str) -> Callable[[str], Path]:
    """argparse type: an output path with the given suffix."""

    def check(value: str) -> Path:
        path = Path(value)
        if path.suffix != suffix:
            raise argparse.ArgumentTypeError(f"{value}: the output name must end in {suffix}")
        return path

    return check


def positive_int(value: str) -> int:
    """argparse type: an integer >= 1."""
    number = _integer(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def non_negative_int(value: str) -> int:
    """argparse type: an integer >= 0 (e.g. a number of worker processes, 0 = none)."""
    number = _integer(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or positive, got {value}")
    return number


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None


def check_device(value: str, flag: str = "--device") -> None:
    """Refuse a torch device that this machine cannot use, before any long work starts."""
    import torch

    usage = f"use {flag} auto (CUDA when present) or {flag} cpu"
    if value == "auto":
        return
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise GlocalError(f"{flag} {value!r} is not a torch device; {usage}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GlocalError(f"{flag} {value}: CUDA is not available on this machine; {usage}")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise GlocalError(
                f"{flag} {value}: this machine has {count} CUDA device(s), cuda:0 to "
                f"cuda:{count - 1}; {usage}"
            )
    elif device.type == "meta":
        raise GlocalError(f"{flag} {value}: meta tensors hold no data; {usage}")
    elif device.type != "cpu":
        try:
            torch.empty(1, device=device)
        except Exception as err:  # torch raises RuntimeError, AssertionError, NotImplementedError
            reason = re.split(r"(?<=[.!?])\s|\n", str(err).strip())[0] or type(err).__name__
            raise GlocalError(f"{flag} {value}: not usable here ({reason}); {usage}") from None
