"""The data registry: every public file glocal needs, checksummed, cached and usable offline.

The registry itself is data (``glocal/data/registry.json``). Files are looked up in the offline
mirror ``$GLOCAL_DATA_DIR`` first, then in the cache (``$GLOCAL_CACHE_DIR`` or the user cache
folder), and downloaded into the cache only when missing. A file whose sha256 the registry
does not pin is served only with ``allow_unpinned=True`` or ``$GLOCAL_ALLOW_UNPINNED=1``.
"""

from __future__ import annotations

from glocal.data._fetch import (
    ENV_ALLOW_UNPINNED,
    ENV_CACHE,
    ENV_MIRROR,
    ENV_OFFLINE,
    ChecksumError,
    UnpinnedDataError,
    UnpinnedDataWarning,
    VerifyResult,
    cache_dir,
    fetch,
    git_blob_id,
    mirror_dir,
    path,
    sha256sum,
    transform_path,
    unpinned_allowed,
    verify,
)
from glocal.data._registry import Entry, Remote, released_transforms, transform_name
from glocal.data._registry import get_entry as _get_entry
from glocal.data._registry import registry as _entries
from glocal.data.datasets import downstream_dataset


def registry() -> list[Entry]:
    """All registry entries (see :class:`Entry`), in registry file order."""
    return list(_entries())


def entry(name: str) -> Entry:
    """The registry entry called ``name`` (as ``glocal data list`` names it).

    Parameters
    ----------
    name : str
        A registry name, e.g. ``"things/concepts"``.

    Returns
    -------
    Entry
        Its record: the file as released and as served, checksums, kind, model and module.

    Raises
    ------
    GlocalError
        For an unknown name, with the closest known names.
    """
    return _get_entry(name)


__all__ = [
    "ENV_ALLOW_UNPINNED",
    "ENV_CACHE",
    "ENV_MIRROR",
    "ENV_OFFLINE",
    "ChecksumError",
    "Entry",
    "Remote",
    "UnpinnedDataError",
    "UnpinnedDataWarning",
    "VerifyResult",
    "cache_dir",
    "downstream_dataset",
    "entry",
    "fetch",
    "git_blob_id",
    "mirror_dir",
    "path",
    "registry",
    "released_transforms",
    "sha256sum",
    "transform_name",
    "transform_path",
    "unpinned_allowed",
    "verify",
]
