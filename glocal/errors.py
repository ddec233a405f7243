"""Exception types raised for bad user input, and the warning about a repaired cache."""

from __future__ import annotations


class GlocalError(ValueError):
    """Bad input: the message names the file or argument, the field, and the fix."""

    def __reduce__(self) -> tuple:
        # Rebuilt from the class and its message wherever it is unpickled: a Dask task's
        # exception comes back to the client so. Without it, tblib (which Dask uses) rebuilt
        # the subclasses that are also OSErrors through ValueError.__new__, which fails, and
        # the user's error reached the command line as a bare Exception, "a bug in glocal".
        return (type(self), self.args, self.__dict__ or None)


class DataUnavailableError(GlocalError, FileNotFoundError):
    """A required data file is missing and cannot be fetched."""


class FitDivergedError(GlocalError, FloatingPointError):
    """A fit cannot run: its objective is not finite at the start (the message says why)."""


class DamagedCacheWarning(UserWarning):
    """A cached file failed its checks (damaged, or not what it claims to be); it was removed
    and is made again (downloaded, fitted or extracted). The message names the file."""
