"""Hyper-parameter constraints: one check per parameter, help texts read from numpydoc, and
the deprecation of renamed parameters."""

from __future__ import annotations

import math
import numbers
import re
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from glocal.errors import GlocalError


@dataclass(frozen=True)
class Constraint:
    """A check of one hyper-parameter's value; ``describe`` says what is allowed."""

    check: Callable[[Any], bool]
    describe: str

    def validate(self, name: str, value: Any) -> None:
        """Raise a :class:`GlocalError` naming ``name`` and what is allowed, if ``value`` fails."""
        if not self.check(value):
            raise GlocalError(f"{name} must be {self.describe}, got {value!r}")


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _real(value: Any) -> bool:
    """A finite real number: Python's or numpy's (``np.float32(0.25)``, ``np.int64(3)``)."""
    return isinstance(value, numbers.Real) and not _is_bool(value) and math.isfinite(float(value))


def interval(
    low: float, high: float, *, closed: str = "both", allow_none: bool = False
) -> Constraint:
    """A finite real number in the interval (``closed``: both, left, right or neither end)."""
    lo_ok = (lambda v: v >= low) if closed in ("both", "left") else (lambda v: v > low)
    hi_ok = (lambda v: v <= high) if closed in ("both", "right") else (lambda v: v < high)
    left = "[" if closed in ("both", "left") else "("
    right = "]" if closed in ("both", "right") else ")"
    shown_high = "∞" if math.isinf(high) else f"{high:g}"
    return Constraint(
        lambda v: (v is None and allow_none) or (_real(v) and lo_ok(v) and hi_ok(v)),
        f"a finite number in {left}{low:g}, {shown_high}{right}"
        + (" or None" if allow_none else ""),
    )


def integer(low: int, *, allow_none: bool = False) -> Constraint:
    """An int of at least ``low`` (a bool is not an int here); optionally None."""

    def check(v: Any) -> bool:
        if v is None:
            return allow_none
        return isinstance(v, numbers.Integral) and not _is_bool(v) and int(v) >= low

    return Constraint(check, f"an integer >= {low}" + (" or None" if allow_none else ""))


def options(choices: Collection[str]) -> Constraint:
    """One of the given strings."""
    ordered = sorted(choices)
    return Constraint(lambda v: v in ordered, f"one of {ordered}")


def plain(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with numpy scalars as the Python numbers they hold: what the fitter computes
    with and what JSON records (a numpy scalar is accepted wherever a Python number is)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}


BOOLEAN = Constraint(_is_bool, "True or False")
TEXT = Constraint(lambda v: isinstance(v, str) and bool(v), "a non-empty string")


def parameter_docs(docstring: str | None) -> dict[str, str]:
    """The first sentence of each entry in a numpydoc ``Parameters`` section, by name."""
    text = docstring or ""
    match = re.search(r"^\s*Parameters\s*\n\s*-+\s*\n(.*?)(?:^\s*\w[\w ]*\n\s*-+\s*$|\Z)", text,
                      re.S | re.M)  # fmt: skip
    if not match:
        return {}
    docs: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    indent = None
    for line in match.group(1).splitlines():
        head = re.match(r"^(\s*)(\w+)\s*:", line)
        if head and (indent is None or len(head.group(1)) <= indent):
            if current:
                docs[current] = " ".join(lines)
            indent = len(head.group(1))
            current, lines = head.group(2), []
        elif current and line.strip():
            lines.append(line.strip())
    if current:
        docs[current] = " ".join(lines)
    return {name: _first_sentence(text) for name, text in docs.items()}


def _first_sentence(text: str) -> str:
    end = re.search(r"\.(\s|$)", text)
    return text[: end.start() + 1] if end else text


def verbose_level(verbose: int, progress: bool | None, where: str) -> int:
    """``verbose``, or the deprecated ``progress`` (the knob's old name) when it was given.

    ``progress`` is accepted for one release with a :class:`FutureWarning` that names the
    function; ``progress=True`` is ``verbose=1``, ``False`` is ``verbose=0``.
    """
    if progress is None:
        return verbose
    warnings.warn(
        f"{where}(progress=...) is deprecated and will be removed in the next release; pass "
        f"verbose={int(bool(progress))} instead (0: quiet, 1: a progress bar), as scikit-learn "
        "and GlocalTransform name it",
        FutureWarning,
        stacklevel=3,
    )
    return int(bool(progress))
