"""Fetch, verify and cache registry files: offline mirror first, then cache, then download.

Concurrency: every write into the cache (a download, the removal of a corrupted copy, the
unpacking of an archive) happens under ``glocal.io.file_lock(TARGET)`` (the file
``TARGET.lock`` beside it), and the writer re-checks for a finished target after acquiring
it, so of two processes asking for the same file one does the work and the other waits and
then serves the result. Downloads go to a unique staging file beside the target and are
renamed onto it only after their sha256 matched.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from glocal.data._registry import Entry, Remote, get_entry, registry, transform_name
from glocal.errors import DamagedCacheWarning, DataUnavailableError, GlocalError
from glocal.io import ENV_CACHE, atomic_path, atomic_write, cache_dir, check_writable, file_lock

ENV_MIRROR = "GLOCAL_DATA_DIR"
ENV_OFFLINE = "GLOCAL_OFFLINE"
#: Set to 1 to accept files whose sha256 the registry does not pin (as ``--allow-unpinned``).
ENV_ALLOW_UNPINNED = "GLOCAL_ALLOW_UNPINNED"
STAGING_SUFFIX = ".download"
HASH_SUFFIX = ".sha256"
TIMEOUT_S = 60
LOG = logging.getLogger("glocal.data")


class ChecksumError(GlocalError):
    """A file's sha256 differs from the one pinned in the registry."""


class UnpinnedDataWarning(UserWarning):
    """A file was served whose sha256 is not pinned in the registry yet."""


class UnpinnedDataError(DataUnavailableError):
    """A file whose sha256 the registry does not pin was asked for without ``allow_unpinned``."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def unpinned_allowed(allow_unpinned: bool | None = None) -> bool:
    """Whether unpinned files may be served: ``allow_unpinned``, else ``$GLOCAL_ALLOW_UNPINNED``."""
    if allow_unpinned is not None:
        return bool(allow_unpinned)
    return _truthy(os.environ.get(ENV_ALLOW_UNPINNED))


ALLOW_HINT = (
    f"pass --allow-unpinned (glocal data fetch / path) or allow_unpinned=True, or set "
    f"{ENV_ALLOW_UNPINNED}=1, to accept unverified bytes"
)


def _require_pinned(entry: Entry, allow_unpinned: bool | None) -> None:
    """Refuse an unpinned file entry unless unverified bytes were explicitly allowed."""
    if entry.kind == "file" and not entry.pinned and not unpinned_allowed(allow_unpinned):
        raise UnpinnedDataError(
            f"cannot get {entry.name!r} verified: its sha256 is not pinned in "
            "glocal/data/registry.json, so glocal refuses to serve its bytes unchecked; "
            f"{ALLOW_HINT} (glocal then records the sha256 it sees and holds the file to it), "
            "or pin the entry's sha256 and size"
        )


def mirror_dir() -> Path | None:
    """The offline mirror ``$GLOCAL_DATA_DIR`` (laid out like the cache), or None if unset."""
    value = os.environ.get(ENV_MIRROR)
    if not value:
        return None
    mirror = Path(value).expanduser()
    if not mirror.is_dir():
        where = (
            ""
            if mirror.is_absolute()
            else f" (a relative path, read from the working directory {Path.cwd()})"
        )
        raise GlocalError(
            f"{ENV_MIRROR}={value} is not a folder{where}; point it at an offline copy laid "
            f'out like shared/data, as an absolute path (export {ENV_MIRROR}="$(realpath '
            f'{value})" where it resolves), or unset it'
        )
    return mirror


def git_blob_id(path: str | os.PathLike) -> str:
    """The git blob id of a file: the SHA-1 of ``b"blob <size>\\0"`` followed by its bytes."""
    size = os.path.getsize(path)
    digest = hashlib.sha1(f"blob {size}\0".encode())  # noqa: S324 - git's own id, not security
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256sum(path: str | os.PathLike) -> str:
    """The hex sha256 of a file (pooch's ``file_hash``, which reads it in chunks)."""
    import pooch

    return str(pooch.file_hash(str(path), alg="sha256"))


def _env_help() -> str:
    mirror = os.environ.get(ENV_MIRROR) or "unset"  # not mirror_dir(): this must never raise
    return (
        f"environment: {ENV_MIRROR}=<offline mirror laid out like the cache> (now {mirror}), "
        f"{ENV_CACHE}=<download cache> (now {cache_dir()}), {ENV_OFFLINE}=1 never downloads"
    )


def _absent(download: str) -> str:
    """Why a file is missing, naming the folders searched (the first clause of the error, which
    callers that list several missing files show alone)."""
    mirror = os.environ.get(ENV_MIRROR)
    where = f"{ENV_MIRROR}={mirror}" if mirror else f"{ENV_MIRROR} (unset)"
    return f"it is neither in {where} nor in the cache {cache_dir()} ({download})"


def _mismatch(name: str, path: Path, expected: str, actual: str, fix: str) -> ChecksumError:
    return ChecksumError(
        f"checksum mismatch for {name!r}: {path} has sha256 {actual}, the registry pins "
        f"{expected}; the file was not used; {fix}"
    )


def _check_columns(entry: Entry, path: Path) -> None:
    """Fail clearly when a table lacks the columns the registry lists for it."""
    if not entry.columns:
        return
    with open(path, encoding="utf-8", newline="") as fh:
        header = fh.readline()
    delimiter = "\t" if "\t" in header else ","
    found = [c.strip() for c in next(csv.reader([header], delimiter=delimiter), [])]
    missing = [c for c in entry.columns if c not in found]
    if missing:
        raise GlocalError(
            f"{entry.name!r} ({path}): missing column(s) {missing}; found {found}; the public "
            f"file changed format: report it, and pin the new layout in glocal/data/registry.json"
        )


def _record_unpinned(entry: Entry, path: Path, actual: str) -> None:
    warnings.warn(
        f"{entry.name!r} is unpinned in glocal/data/registry.json; served {path} with sha256 "
        f"{actual}: pin this value in the entry's 'sha256' field",
        UnpinnedDataWarning,
        stacklevel=3,
    )


def _refuse_copy(entry: Entry, path: Path, actual: str) -> None:
    """An unpinned file must not be a byte copy of another entry (as the dinov2 release was)."""
    for other in registry():
        if other.name != entry.name and other.served.sha256 == actual:
            raise ChecksumError(
                f"{entry.name!r}: {path} is a byte copy of {other.name!r} (same sha256 {actual}); "
                "it was not used; report the defect and add an 'override' to the registry entry"
            )


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + HASH_SUFFIX)


def _check_file(entry: Entry, path: Path, where: str) -> bool:
    """True if ``path`` exists and matches; False if absent; raises on a mismatch."""
    if not path.is_file():
        return False
    expected = entry.served.sha256
    actual = sha256sum(path)
    if expected is None and entry.served.git_blob is not None:
        blob = git_blob_id(path)
        if blob != entry.served.git_blob:
            fix = "replace it with the released file" if where == "mirror" else "fetch again"
            if where == "cache":
                path.unlink()
                fix = "it was removed from the cache; fetch again"
            raise ChecksumError(
                f"checksum mismatch for {entry.name!r}: {path} has git blob id {blob}, the "
                f"registry pins {entry.served.git_blob} (the release's git tree); {fix}"
            )
        if where != "mirror" and not _sidecar(path).is_file():
            atomic_write(_sidecar(path), lambda tmp: _write_text(tmp, actual + "\n"))
        return True
    if expected is None:
        # unpinned: the cache records the hash seen at download time and holds it to that
        recorded = _sidecar(path)
        if recorded.is_file() and recorded.read_text().strip() != actual:
            raise _mismatch(
                entry.name,
                path,
                recorded.read_text().strip(),
                actual,
                f"delete it (and {recorded.name}) and fetch again",
            )
        _refuse_copy(entry, path, actual)
        _record_unpinned(entry, path, actual)
    elif actual != expected:
        if where == "mirror":
            fix = f"replace it with the file from {entry.served.url} or unset {ENV_MIRROR}"
        elif where == "cache":  # only ever under the target's lock
            path.unlink()
            fix = "it was removed from the cache; fetch again"
        else:
            fix = "fetch again"
        raise _mismatch(entry.name, path, expected, actual, fix)
    return True


def _refuse(entry: Entry) -> None:
    if entry.refused:
        raise GlocalError(f"refusing to serve {entry.name!r}: {entry.refused}")


def _downloader() -> Callable[..., None]:
    """The pooch downloader used for every download (a seam that tests replace)."""
    import pooch

    return pooch.HTTPDownloader(progressbar=False, timeout=TIMEOUT_S)


def _unavailable(entry: Entry, target: Path, why: str) -> DataUnavailableError:
    remote = entry.served
    mirror = mirror_dir()
    by_hand = f"put it at {target}" + (f" or at {mirror / remote.path}" if mirror else "")
    return DataUnavailableError(
        f"cannot get {entry.name!r} (file {Path(remote.path).name}): {why}; download it by hand "
        f"from {remote.url} and {by_hand}; {_env_help()}"
    )


@contextmanager
def _cache_lock(target: Path) -> Iterator[None]:
    """Hold ``glocal.io.file_lock(target)``; an unwritable cache fails first, in one line."""
    check_writable(target.with_name(target.name + ".lock"), f"cache ({ENV_CACHE}) lock file")
    with file_lock(target):
        yield


def _download(entry: Entry, target: Path) -> Path:
    """Download into a unique staging file, verify it, then rename it onto ``target``.

    The caller holds the target's lock; the staging name (``.NAME.XXXXXXXX.download``) is
    unique anyway, so that no two writers ever share a file.
    """
    remote = entry.served
    if _truthy(os.environ.get(ENV_OFFLINE)):
        raise _unavailable(
            entry, target, _absent(f"{ENV_OFFLINE} is set, so nothing is downloaded")
        )
    LOG.info("downloading %s from %s to %s", entry.name, remote.url, target)
    with atomic_path(target, suffix=STAGING_SUFFIX) as staging:
        try:
            _downloader()(remote.url, str(staging), None)
        except OSError as err:  # requests' errors are OSErrors too
            why = f"the download failed ({type(err).__name__}: {err})"
            raise _unavailable(entry, target, why) from err
        actual = sha256sum(staging)
        if remote.sha256 is None and remote.git_blob is not None:
            blob = git_blob_id(staging)
            if blob != remote.git_blob:
                raise ChecksumError(
                    f"checksum mismatch for {entry.name!r} downloaded from {remote.url}: git "
                    f"blob id {blob}, the registry pins {remote.git_blob} (the release's git "
                    "tree); nothing was cached; if the public file changed, report it"
                )
            _check_columns(entry, staging)
            atomic_write(_sidecar(target), lambda tmp: _write_text(tmp, actual + "\n"))
            LOG.info("%s matches its git blob id; its sha256 is %s", entry.name, actual)
            return target
        if remote.sha256 is not None and actual != remote.sha256:
            size = staging.stat().st_size
            raise ChecksumError(
                f"checksum mismatch for {entry.name!r} downloaded from {remote.url}: sha256 "
                f"{actual} ({size} bytes), the registry pins {remote.sha256}"
                + (f" ({remote.size} bytes)" if remote.size else "")
                + "; nothing was cached; if the public file changed, report it"
            )
        _check_columns(entry, staging)
        if remote.sha256 is None:
            _refuse_copy(entry, target, actual)
            atomic_write(_sidecar(target), lambda tmp: _write_text(tmp, actual + "\n"))
            _record_unpinned(entry, target, actual)
    return target


def _folder_complete(entry: Entry, path: Path) -> bool:
    if not path.is_dir():
        return False
    n = sum(1 for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    return entry.n_folders is None or n >= entry.n_folders


def _password(entry: Entry, root: Path) -> bytes | None:
    env = entry.unzip.get("password_env", "")
    if env and os.environ.get(env):
        return os.environ[env].encode()
    name = entry.unzip.get("password_file")
    if name and (root / name).is_file():
        return (root / name).read_text(encoding="utf-8").strip().encode()
    return None


def _find_archive(entry: Entry) -> tuple[Path, Path] | None:
    """(root, archive) of a hand-downloaded archive of a folder entry, mirror first."""
    name = entry.unzip.get("archive")
    if not name:
        return None
    for root in [r for r in (mirror_dir(), cache_dir()) if r is not None]:
        if (root / name).is_file():
            return root, root / name
    return None


def _require_pinned_archive(
    entry: Entry, archive: Path, target: Path, allow_unpinned: bool | None
) -> None:
    """Refuse to unpack an archive without a pinned sha256 unless that was explicitly allowed."""
    if entry.unzip.get("sha256") or unpinned_allowed(allow_unpinned):
        return
    folders = f"the {entry.n_folders} folders" if entry.n_folders else "its folders"
    raise UnpinnedDataError(
        f"refusing to unpack {archive} for {entry.name!r} unverified: the archive's sha256 is "
        f"not pinned in glocal/data/registry.json (field unzip.sha256); {ALLOW_HINT}, or unpack "
        f"it by hand so that {target} holds {folders}"
    )


def _unpack(entry: Entry, target: Path, allow_unpinned: bool | None = None) -> Path | None:
    """Unpack a hand-downloaded archive of a folder entry into ``target`` (atomically).

    Returns None when no archive is present. Runs under the target's lock and returns the
    folder another process unpacked while this one waited.
    """
    found = _find_archive(entry)
    if found is None:
        return None
    root, archive = found
    spec = entry.unzip
    pinned = spec.get("sha256")
    _require_pinned_archive(entry, archive, target, allow_unpinned)
    with _cache_lock(target):
        if _folder_complete(entry, target):
            return target  # someone else unpacked it while we waited
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        if target.exists():
            raise GlocalError(
                f"{target} exists but is incomplete (fewer than {entry.n_folders} folders): "
                f"remove it and run 'glocal data fetch {entry.name}' again to unpack {archive}"
            )
        if pinned and (actual := sha256sum(archive)) != pinned:
            raise _mismatch(entry.name, archive, pinned, actual, "download the archive again")
        password = _password(entry, root)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp, pwd=password)
            inner = tmp / spec["member"] if spec.get("member") else tmp
            if not _folder_complete(entry, inner):
                raise GlocalError(
                    f"{archive} does not hold {entry.n_folders} folders under "
                    f"{spec.get('member', '.')!r}; download it again"
                )
            os.replace(inner, target)
        except (RuntimeError, NotImplementedError, zipfile.BadZipFile) as err:
            env = spec.get("password_env", "")
            raise GlocalError(
                f"cannot unpack {archive} ({type(err).__name__}: {err}); if the password is "
                f"wrong or missing, set {env} to the one published in "
                f"{spec.get('password_file', 'the dataset')}; or unpack it by hand (7z/unzip) "
                f"so that {target} holds the concept folders"
            ) from err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not pinned:
        warnings.warn(
            f"{entry.name!r}: unpacked {archive} without a pinned sha256 (allowed explicitly); "
            f"its sha256 is {sha256sum(archive)}: pin it in the entry's unzip.sha256",
            UnpinnedDataWarning,
            stacklevel=3,
        )
    return target


def _fetch_folder(entry: Entry, download: bool, allow_unpinned: bool | None) -> Path:
    rel = entry.served.path
    candidates = [r / rel for r in (mirror_dir(), cache_dir()) if r is not None]
    for candidate in candidates:
        if _folder_complete(entry, candidate):
            return candidate
    target = cache_dir() / rel
    if download:
        unpacked = _unpack(entry, target, allow_unpinned)
        if unpacked is not None:
            return unpacked
    how = entry.manual.format(cache=cache_dir(), target=target) or f"put it at {target}"
    found = [str(c) for c in candidates if c.is_dir()]
    state = f"{', '.join(found)} is incomplete" if found else "it is not present"
    raise DataUnavailableError(
        f"cannot get {entry.name!r} (folder {Path(rel).name}): {state} and it cannot be "
        f"downloaded automatically; {how}; {_env_help()}"
    )


def fetch(name: str, download: bool = True, *, allow_unpinned: bool | None = None) -> Path:
    """Return a verified local path for registry entry ``name``.

    Order: the offline mirror ``$GLOCAL_DATA_DIR`` (used only with the right sha256), the cache,
    then a download into the cache (unique staging file, checksum, rename), under the cache
    file's lock. A checksum mismatch raises :class:`ChecksumError`; a bad cached file is
    deleted. Without network (or with ``download=False``) a missing file raises
    :class:`DataUnavailableError` saying what to download from where, where to put it, and the
    environment variables. An entry without a pinned sha256 (and the unpacking of an unpinned
    archive) raises :class:`UnpinnedDataError` unless ``allow_unpinned=True`` or
    ``$GLOCAL_ALLOW_UNPINNED=1``.
    """
    entry = get_entry(name)
    _refuse(entry)
    if entry.kind == "folder":
        return _fetch_folder(entry, download, allow_unpinned)
    _require_pinned(entry, allow_unpinned)
    rel = entry.served.path
    mirror = mirror_dir()
    if mirror is not None and _check_file(entry, mirror / rel, "mirror"):
        return mirror / rel
    target = cache_dir() / rel
    try:  # published files are complete (atomic rename), so a good one needs no lock
        if _check_file(entry, target, "check"):
            return target
    except ChecksumError:
        if not download and entry.pinned:
            with _cache_lock(target):
                if _check_file(entry, target, "cache"):  # removes it, unless replaced meanwhile
                    return target
        elif not download:
            raise
    if not download:
        raise _unavailable(entry, target, _absent("download=False"))
    if _truthy(os.environ.get(ENV_OFFLINE)) and not target.is_file():  # fail before any lock
        raise _unavailable(
            entry, target, _absent(f"{ENV_OFFLINE} is set, so nothing is downloaded")
        )
    with _cache_lock(target):
        try:  # someone else may have downloaded it while we waited
            if _check_file(entry, target, "cache"):
                return target
        except ChecksumError as err:
            if not entry.pinned:
                raise
            warnings.warn(f"{err}: downloading it again", DamagedCacheWarning, stacklevel=2)
        return _download(entry, target)


def path(name: str, *, allow_unpinned: bool | None = None) -> Path:
    """The verified local path of ``name`` if it is already present; never downloads."""
    return fetch(name, download=False, allow_unpinned=allow_unpinned)


def transform_path(model: str, module: str, *, allow_unpinned: bool | None = None) -> Path:
    """Verified local path of the released gLocal transform ``transform.npz`` for model/module."""
    return fetch(transform_name(model, module), allow_unpinned=allow_unpinned)


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking one file: status is ok, mismatch, unpinned, flagged or absent."""

    name: str
    status: str
    path: Path | None = None
    expected: str | None = None
    actual: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        """False only for a checksum mismatch (or an incomplete folder)."""
        return self.status != "mismatch"


def _verify_file(entry: Entry, remote: Remote, file: Path, known: dict[str, str]) -> VerifyResult:
    actual = sha256sum(file)
    twin = known.get(actual)
    if remote.sha256 is None and remote.git_blob is not None:
        blob = git_blob_id(file)
        if blob == remote.git_blob:
            return VerifyResult(entry.name, "ok", file, None, actual,
                                f"matches git blob id {blob}; sha256 {actual}")  # fmt: skip
        return VerifyResult(entry.name, "mismatch", file, None, actual,
                            f"git blob id {blob} differs from {remote.git_blob}")  # fmt: skip
    if remote.sha256 is None:
        recorded = _sidecar(file).read_text().strip() if _sidecar(file).is_file() else None
        if recorded and recorded != actual:
            return VerifyResult(
                entry.name,
                "mismatch",
                file,
                recorded,
                actual,
                "differs from the sha256 recorded at download",
            )
        if twin and twin != entry.name:
            return VerifyResult(
                entry.name,
                "mismatch",
                file,
                None,
                actual,
                f"byte copy of {twin}; not a genuine {entry.name} file",
            )
        return VerifyResult(
            entry.name,
            "unpinned",
            file,
            None,
            actual,
            "unpinned: pin this sha256 in glocal/data/registry.json",
        )
    if actual == remote.sha256:
        return VerifyResult(entry.name, "ok", file, remote.sha256, actual)
    return VerifyResult(
        entry.name,
        "mismatch",
        file,
        remote.sha256,
        actual,
        "sha256 differs from the registry; the file is not used",
    )


def _verify_release_copy(entry: Entry, file: Path, known: dict[str, str]) -> VerifyResult:
    """Check a released file that the registry overrides (e.g. the dinov2 byte copy)."""
    actual = sha256sum(file)
    twin = known.get(actual)
    if actual == entry.release.sha256 and entry.duplicate_of:
        message = (
            f"released file is a byte copy of {entry.duplicate_of} (same sha256); not served; "
            f"{entry.name} is served from {entry.served.path} instead"
        )
        return VerifyResult(entry.name, "flagged", file, entry.release.sha256, actual, message)
    if twin:
        return VerifyResult(
            entry.name,
            "flagged",
            file,
            entry.release.sha256,
            actual,
            f"byte copy of {twin}; not served",
        )
    return VerifyResult(
        entry.name,
        "mismatch",
        file,
        entry.release.sha256,
        actual,
        "differs from the recorded release file; not served",
    )


def verify(names: list[str] | None = None) -> list[VerifyResult]:
    """Re-hash every registry file present in the mirror and the cache and report each.

    Statuses: ``ok``; ``mismatch`` (wrong sha256, or an incomplete folder); ``unpinned`` (no
    sha256 in the registry: the computed one is reported); ``flagged`` (a released file the
    registry refuses to serve, such as the dinov2-vit-base-p14 byte copy); ``absent``.
    """
    entries = [get_entry(n) for n in names] if names else list(registry())
    known = {e.served.sha256: e.name for e in registry() if e.served.sha256}
    roots = [r for r in (mirror_dir(), cache_dir()) if r is not None]
    results: list[VerifyResult] = []
    for entry in entries:
        found = False
        for root in roots:
            file = root / entry.served.path
            if entry.kind == "folder":
                if file.is_dir():
                    found = True
                    complete = _folder_complete(entry, file)
                    results.append(
                        VerifyResult(
                            entry.name,
                            "ok" if complete else "mismatch",
                            file,
                            message="" if complete else f"fewer than {entry.n_folders} folders",
                        )
                    )
                continue
            if file.is_file():
                found = True
                results.append(_verify_file(entry, entry.served, file, known))
            if entry.override is not None:
                release_copy = root / entry.release.path
                if release_copy.is_file():
                    found = True
                    results.append(_verify_release_copy(entry, release_copy, known))
        if not found:
            results.append(VerifyResult(entry.name, "absent", message="not in the mirror or cache"))
    return results
