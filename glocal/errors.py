"""Exception types raised for bad user input, and the warning about a repaired cache."""

from __future__ import annotations


class GlocalError(ValueError):
    """Bad input: the message names the file or argument, the field, and the fix."""


class DataUnavailableError(GlocalError, FileNotFoundError):
    """A required data file is missing and cannot be fetched."""


class FitDivergedError(GlocalError, FloatingPointError):
    """A fit cannot run: its objective is not finite at the start (the message says why)."""


class DamagedCacheWarning(UserWarning):
    """A cached file failed its checks (damaged, or not what it claims to be); it was removed
    and is made again (downloaded, fitted or extracted). The message names the file."""
