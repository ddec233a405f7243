"""Exception types raised for bad user input."""

from __future__ import annotations


class GlocalError(ValueError):
    """Bad input: the message names the file or argument, the field, and the fix."""


class DataUnavailableError(GlocalError, FileNotFoundError):
    """A required data file is missing and cannot be fetched."""


class FitDivergedError(GlocalError, FloatingPointError):
    """A fit's loss became non-finite or rose far above its start (the message says why)."""
