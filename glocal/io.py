"""Files: the cache folder, atomic writes, validated array loading."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from glocal.errors import GlocalError

ENV_CACHE = "GLOCAL_CACHE_DIR"


def cache_dir() -> Path:
    """glocal's cache: ``$GLOCAL_CACHE_DIR`` or the user cache folder (platformdirs).

    Downloads, feature stores (``features/``) and fitted transforms (``fits/``) live here.
    """
    value = os.environ.get(ENV_CACHE)
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("glocal", appauthor=False))


@contextmanager
def file_lock(path: str | os.PathLike, timeout: float | None = None) -> Iterator[Path]:
    """Hold an inter-process lock for ``path`` (the file ``PATH.lock`` beside it).

    Every cache writer takes it before checking whether its result already exists, so that of
    two processes (parallel notebooks, Dask workers) asking for the same thing, one does the
    work and the other waits, then finds the finished result. ``timeout`` (seconds) raises
    :class:`GlocalError` instead of waiting for ever.
    """
    from filelock import FileLock, Timeout

    target = Path(path)
    lock = target.with_name(target.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(lock, timeout=-1 if timeout is None else timeout):
            yield target
    except Timeout as err:
        raise GlocalError(
            f"{target} is locked by another process ({lock}) for more than {timeout} s; wait for "
            "it to finish, or delete the lock file if no glocal process is running"
        ) from err


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp"
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save one array as ``.npy`` atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array)

    return atomic_write(path, write)


def load_feature_matrix(path: str | os.PathLike, name: str = "features") -> np.ndarray:
    """Load a 2-D float feature matrix from ``.npy`` with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise GlocalError(f"{name} file {path} does not exist")
    if path.suffix != ".npy":
        raise GlocalError(f"{name} file {path}: expected a .npy array of shape (n, p)")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise GlocalError(f"{name} file {path} is not a readable .npy array ({err})") from err
    return check_feature_matrix(array, f"{name} file {path}")


def check_feature_matrix(array: np.ndarray, where: str = "X") -> np.ndarray:
    """Check that ``array`` is a finite 2-D real matrix and return it as float32 or float64.

    Integers become float64 and float16 becomes float32; anything else (complex, object,
    strings, sparse matrices) is refused rather than coerced.
    """
    if hasattr(array, "toarray") or type(array).__module__.startswith("scipy.sparse"):
        raise GlocalError(
            f"{where}: sparse input is not supported; pass a dense array (X.toarray())"
        )
    array = np.asarray(array)
    if array.ndim != 2:
        raise GlocalError(
            f"{where}: expected a 2-D matrix (n, p), got shape {array.shape}; Reshape your data "
            "(X.reshape(1, -1) for one sample, X.reshape(-1, 1) for one feature)"
        )
    if array.shape[1] == 0:
        raise GlocalError(
            f"{where}: 0 feature(s) (shape={array.shape}) while a minimum of 1 is required."
        )
    if array.shape[0] == 0:
        raise GlocalError(
            f"{where}: 0 sample(s) (shape={array.shape}) while a minimum of 1 is required."
        )
    if np.iscomplexobj(array):
        raise GlocalError(
            f"{where}: Complex data not supported (dtype {array.dtype}); pass real features"
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise GlocalError(
            f"{where}: expected a numeric array, got dtype {array.dtype}; convert it explicitly "
            "(e.g. np.asarray(X, dtype=np.float32))"
        )
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float32 if array.dtype == np.float16 else np.float64)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise GlocalError(
            f"{where}: {bad} rows contain NaN or infinite values; remove or impute them"
        )
    return array
