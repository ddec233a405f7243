"""Files: the cache folder, atomic writes, validated array loading."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from glocal.errors import GlocalError

ENV_CACHE = "GLOCAL_CACHE_DIR"
#: The environment variables that hold a folder or file path (``os.pathsep``-separated lists
#: for the model configs). A relative value is read against the working directory of the
#: process that reads it, so whoever starts processes in another folder (the notebook runner
#: starts kernels in ``notebooks/``) makes them absolute first: :func:`absolute_env_paths`.
PATH_VARIABLES = (
    ENV_CACHE,
    "GLOCAL_DATA_DIR",
    "GLOCAL_IMAGENET_DIR",
    "GLOCAL_MODEL_CONFIGS",
)


def absolute_env_paths(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Make the relative paths in glocal's path variables absolute, against the current folder.

    Parameters
    ----------
    environ : dict, optional
        The environment to change in place; ``os.environ`` by default.

    Returns
    -------
    dict
        ``{variable: new value}`` for every variable that changed.
    """
    env: Any = os.environ if environ is None else environ
    changed = {}
    for name in PATH_VARIABLES:
        value = env.get(name)
        if not value:
            continue
        parts = [
            os.path.abspath(os.path.expanduser(part)) if part else part
            for part in value.split(os.pathsep)
        ]
        new = os.pathsep.join(parts)
        if new != value:
            env[name] = changed[name] = new
    return changed


def cache_dir() -> Path:
    """glocal's cache: ``$GLOCAL_CACHE_DIR`` or the user cache folder (platformdirs).

    Downloads, feature stores (``features/``) and fitted transforms (``fits/``) live here.
    """
    value = os.environ.get(ENV_CACHE)
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("glocal", appauthor=False))


def digest(*parts: Any) -> str:
    """sha256 over arrays (dtype, shape and bytes) and JSON-able values: a cache key."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.dtype, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


@contextmanager
def file_lock(
    path: str | os.PathLike, timeout: float | None = None, *, remove_on_error: bool = False
) -> Iterator[Path]:
    """Hold an inter-process lock for ``path`` (the file ``PATH.lock`` beside it).

    Every cache writer takes it before checking whether its result already exists, so that of
    two processes (parallel notebooks, Dask workers) asking for the same thing, one does the
    work and the other waits, then finds the finished result. ``timeout`` (seconds) raises
    :class:`GlocalError` instead of waiting for ever. ``remove_on_error``: when the block
    fails, the lock file is removed (while still held), so a failed writer leaves no lock
    behind; a waiter that then holds the removed file sees it and locks the current one.
    """
    target = Path(path)
    lock = target.with_name(target.name + ".lock")
    fd = _lock_file(lock, target, timeout)
    if fd is None:  # no flock here (Windows, some network file systems): filelock's own
        with _filelock(lock, target, timeout):
            yield target
        return
    import fcntl

    try:
        yield target
    except BaseException:
        if remove_on_error:
            with contextlib.suppress(OSError):
                os.unlink(lock)
        raise
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _locked_too_long(target: Path, lock: Path, timeout: float | None) -> GlocalError:
    return GlocalError(
        f"{target} is locked by another process ({lock}) for more than {timeout} s; wait for "
        "it to finish, or delete the lock file if no glocal process is running"
    )


def _lock_file(lock: Path, target: Path, timeout: float | None) -> int | None:
    """An open descriptor of ``lock`` holding its exclusive flock, once the file it holds is
    the one at that path (its holder may have removed it meanwhile); None without flock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    deadline = None if timeout is None else time.monotonic() + timeout
    for _ in range(1000):
        lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:
            continue  # its folder was removed just now (a failed writer's clean-up)
        except PermissionError:
            fd = os.open(lock, os.O_RDONLY)  # another user's lock file: flock needs no write
        try:
            if not _flock(fd, deadline):
                raise _locked_too_long(target, lock, timeout)
            held = os.fstat(fd)
            try:
                now = os.stat(lock)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_ino, now.st_dev) == (held.st_ino, held.st_dev):
                return fd
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):
                return None
            raise
        except BaseException:
            os.close(fd)
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)  # its holder removed that file: lock the one at the path now
    raise GlocalError(f"cannot hold the lock {lock}: it keeps being removed; try again")


def _flock(fd: int, deadline: float | None) -> bool:
    """Take the exclusive flock of ``fd``: wait for ever, or until ``deadline`` (False)."""
    import fcntl

    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


@contextmanager
def _filelock(lock: Path, target: Path, timeout: float | None) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        held = FileLock(lock, timeout=-1 if timeout is None else timeout)
        held.acquire()
    except Timeout as err:
        raise _locked_too_long(target, lock, timeout) from err
    try:
        yield
    finally:
        held.release()


class NotWritableError(GlocalError, OSError):
    """A file or folder that glocal was asked to write cannot be created."""


def _proc_umask() -> int | None:
    """The process umask as the kernel reports it (Linux ≥ 4.7), without changing it."""
    try:
        with open("/proc/self/status", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_umask_once() -> int:
    # os.umask can only be read by setting it; done once, at import, before any thread
    # of ours writes files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_PROC_UMASK_AT_IMPORT = _proc_umask()
_HAS_PROC_UMASK = _PROC_UMASK_AT_IMPORT is not None
_IMPORT_UMASK: int = (
    _PROC_UMASK_AT_IMPORT if _PROC_UMASK_AT_IMPORT is not None else _read_umask_once()
)


def current_umask() -> int:
    """The process umask: read from /proc where possible, else the value seen at import."""
    if _HAS_PROC_UMASK:
        mask = _proc_umask()
        if mask is not None:
            return mask
    return _IMPORT_UMASK


def _cannot_write(target: Path, err: OSError) -> NotWritableError:
    where = err.filename or target.parent
    return NotWritableError(
        f"cannot write {target}: {err.strerror or err} ({where}); choose a writable location "
        f"or fix the permissions (for the cache, set {ENV_CACHE} to a writable folder)"
    )


#: What a write that ran out of room raises: the error names no file, so glocal names it.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _name_the_target(target: Path, err: OSError) -> OSError:
    """``err`` as a :class:`NotWritableError` naming ``target`` when it is a full disk (or
    quota) that names no file; otherwise ``err`` itself."""
    if isinstance(err, GlocalError) or err.filename is not None or err.errno not in _NO_ROOM:
        return err
    return NotWritableError(
        f"cannot write {target}: {err.strerror or err}; free space on its disk or choose "
        f"another location (for the cache, set {ENV_CACHE} to a folder on another disk)"
    )


def check_writable(path: str | os.PathLike, what: str = "output file") -> Path:
    """Fail fast with a :class:`GlocalError` when ``path`` could not be written later.

    Commands call this before long work (a fit) so that a bad ``--out`` fails in a second, not
    after the work. Nothing is left behind: the probe is an anonymous temporary file in the
    nearest existing folder on the way to ``path``.
    """
    target = Path(path)
    if target.is_dir():
        raise GlocalError(f"{what} {target} is a folder; give a file name inside it")
    folder = target.absolute().parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())  # "/" exists
    if not existing.is_dir():
        raise GlocalError(
            f"{what} {target}: {existing} is a file, not a folder; choose another path"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise GlocalError(
            f"{what} {target}: cannot create files in {existing} ({err.strerror or err}); "
            "choose a writable location or fix the permissions"
        ) from err
    return target


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the mode any other tool would give it (0666 less the umask), not the 0600 of
    ``mkstemp``. A folder that cannot be written raises :class:`NotWritableError`.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp"
        )
    except OSError as err:
        raise _cannot_write(target, err) from err
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    try:
        with _errors_name(target):
            yield tmp_path
        try:
            os.replace(tmp_path, target)
        except OSError as err:
            raise _cannot_write(target, err) from err
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def _errors_name(target: Path) -> Iterator[None]:
    """An OSError raised inside names ``target`` when it did not name a file of its own."""
    try:
        yield
    except OSError as err:
        named = _name_the_target(target, err)
        if named is err:
            raise
        raise named from err


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temp folder beside ``path``; publish it as ``path`` in one step if the
    block succeeds.

    For outputs of several files (a search's results): readers see the previous folder or
    the new one, never a mix. A previous ``path`` is swapped out in the same step (Linux's
    ``renameat2`` exchange; elsewhere it is moved aside and the new folder moved in) and then
    deleted. When the block fails (a full disk), ``path`` is left as it was and the temp
    folder is removed.
    """
    target = Path(path)
    parent = target.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as err:
        raise _cannot_write(target, err) from err
    try:
        os.chmod(tmp, 0o777 & ~current_umask())
        with _errors_name(target):
            yield tmp
        try:
            _publish_folder(tmp, target)
        except OSError as err:
            raise _cannot_write(target, err) from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _publish_folder(new: Path, target: Path) -> None:
    """Move the folder ``new`` onto ``target``; an existing ``target`` ends up at ``new``'s
    name (removed by the caller) or is deleted here."""
    if not target.is_dir():
        os.rename(new, target)
        return
    if _exchange(new, target):
        return
    aside = new.with_name(new.name + ".old")
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except OSError:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or file system cannot."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a libc older than glibc 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if done == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOTSUP):
        return False  # not supported here: the two renames do it
    raise OSError(error, os.strerror(error), str(b))


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


def read_utf8(path: str | os.PathLike, where: str) -> str:
    """The text of ``path`` (UTF-8, an optional byte-order mark); other bytes raise
    :class:`GlocalError` naming ``where``, the line and column, and the fix."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - data.rfind(b"\n", 0, err.start)
        raise GlocalError(
            f"{where}: line {line} is not UTF-8 text (byte 0x{data[err.start]:02x} at column "
            f"{column}); save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def load_npy(path: str | os.PathLike, where: str) -> np.ndarray:
    """``np.load`` of one ``.npy`` file; an empty, truncated, corrupt or oversized file raises
    :class:`GlocalError` naming ``where`` (e.g. ``"features file X.npy"``) and the fix."""
    from numpy.lib import format as npy_format

    path = Path(path)
    again = "write it again with numpy.save"
    try:
        size = path.stat().st_size
        if size == 0:
            raise GlocalError(f"{where} is empty (0 bytes); {again}")
        with open(path, "rb") as fh:
            version = npy_format.read_magic(fh)
            read_header = (
                npy_format.read_array_header_1_0
                if version == (1, 0)
                else npy_format.read_array_header_2_0
            )
            shape, _, dtype = read_header(fh)
            offset = fh.tell()
    except GlocalError:
        raise
    except OSError as err:
        raise GlocalError(f"{where} cannot be read ({err.strerror or err})") from err
    except (ValueError, EOFError, SyntaxError, TypeError) as err:
        raise GlocalError(
            f"{where} is not a readable .npy array ({' '.join(str(err).split())}); {again}"
        ) from err
    if dtype.hasobject:
        raise GlocalError(
            f"{where} holds Python objects (dtype {dtype}); save a numeric array instead"
        )
    needed = math.prod(shape) * dtype.itemsize
    if size - offset < needed:
        raise GlocalError(
            f"{where} is truncated or corrupt: its header promises shape {tuple(shape)} of "
            f"{dtype} ({needed:,} bytes) but only {size - offset:,} bytes follow; {again}"
        )
    try:
        return np.load(path, allow_pickle=False)
    except MemoryError as err:
        raise GlocalError(
            f"{where}: not enough memory to load shape {tuple(shape)} of {dtype} "
            f"({needed / 2**30:.1f} GiB)"
        ) from err
    except (ValueError, OSError, EOFError) as err:
        raise GlocalError(f"{where} is not a readable .npy array ({err}); {again}") from err


def load_feature_matrix(path: str | os.PathLike, name: str = "features") -> np.ndarray:
    """Load a 2-D float feature matrix from ``.npy`` with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise GlocalError(f"{name} file {path} does not exist")
    if path.suffix != ".npy":
        raise GlocalError(f"{name} file {path}: expected a .npy array of shape (n, p)")
    array = load_npy(path, f"{name} file {path}")
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
