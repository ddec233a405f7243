"""Fetch, verify and cache registry files: offline mirror first, then cache, then download."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from glocal.data._registry import Entry, Remote, get_entry, registry, transform_name
from glocal.errors import DataUnavailableError, GlocalError
from glocal.io import ENV_CACHE, cache_dir

ENV_MIRROR = "GLOCAL_DATA_DIR"
ENV_OFFLINE = "GLOCAL_OFFLINE"
STAGING_SUFFIX = ".download"
HASH_SUFFIX = ".sha256"
TIMEOUT_S = 60
LOG = logging.getLogger("glocal.data")


class ChecksumError(GlocalError):
    """A file's sha256 differs from the one pinned in the registry."""


class UnpinnedDataWarning(UserWarning):
    """A file was served whose sha256 is not pinned in the registry yet."""


def mirror_dir() -> Path | None:
    """The offline mirror ``$GLOCAL_DATA_DIR`` (laid out like the cache), or None if unset."""
    value = os.environ.get(ENV_MIRROR)
    if not value:
        return None
    mirror = Path(value).expanduser()
    if not mirror.is_dir():
        raise GlocalError(
            f"{ENV_MIRROR}={value} is not a folder; point it at an offline copy laid out like "
            "../shared/data, or unset it"
        )
    return mirror


def sha256sum(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _env_help() -> str:
    mirror = os.environ.get(ENV_MIRROR) or "unset"  # not mirror_dir(): this must never raise
    return (
        f"environment: {ENV_MIRROR}=<offline mirror laid out like the cache> (now {mirror}), "
        f"{ENV_CACHE}=<download cache> (now {cache_dir()}), {ENV_OFFLINE}=1 never downloads"
    )


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


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + HASH_SUFFIX)


def _check_file(entry: Entry, path: Path, where: str) -> bool:
    """True if ``path`` exists and matches; False if absent; raises on a mismatch."""
    if not path.is_file():
        return False
    expected = entry.served.sha256
    actual = sha256sum(path)
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
        fix = (
            f"replace it with the file from {entry.served.url} or unset {ENV_MIRROR}"
            if where == "mirror"
            else "it was removed from the cache; fetch again"
        )
        if where == "cache":
            path.unlink()
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


def _download(entry: Entry, target: Path) -> Path:
    """Download into a staging file, verify it, then rename it onto ``target``."""
    import pooch

    remote = entry.served
    if os.environ.get(ENV_OFFLINE, "").lower() in ("1", "true", "yes"):
        raise _unavailable(entry, target, f"{ENV_OFFLINE} is set, so nothing is downloaded")
    staging = target.with_name(f".{target.name}.{os.getpid()}{STAGING_SUFFIX}")
    staging.unlink(missing_ok=True)
    known = f"sha256:{remote.sha256}" if remote.sha256 else None
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # pooch would log the staging name; log the real one
    LOG.info("downloading %s from %s to %s", entry.name, remote.url, target)
    try:
        pooch.retrieve(
            remote.url,
            known_hash=known,
            fname=staging.name,
            path=staging.parent,
            downloader=_downloader(),
        )
    except ValueError as err:  # pooch: hash mismatch (the temporary file is already removed)
        staging.unlink(missing_ok=True)
        raise ChecksumError(
            f"checksum mismatch for {entry.name!r} downloaded from {remote.url}: "
            f"{' '.join(str(err).split())}; "
            "nothing was cached; if the public file changed, report it"
        ) from err
    except OSError as err:  # requests' errors are OSErrors too
        staging.unlink(missing_ok=True)
        why = f"the download failed ({type(err).__name__}: {err})"
        raise _unavailable(entry, target, why) from err
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    finally:
        logger.setLevel(level)
    try:
        _check_columns(entry, staging)
        actual = sha256sum(staging)
        if remote.sha256 is None:
            _refuse_copy(entry, target, actual)
            _sidecar(target).write_text(actual + "\n")
            _record_unpinned(entry, target, actual)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
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


def _unpack(entry: Entry, target: Path) -> Path | None:
    """Unpack a hand-downloaded archive of a folder entry into ``target`` (atomically)."""
    spec = entry.unzip
    for root in [r for r in (mirror_dir(), cache_dir()) if r is not None]:
        archive = root / spec.get("archive", "")
        if not spec.get("archive") or not archive.is_file():
            continue
        password = _password(entry, root)
        target.parent.mkdir(parents=True, exist_ok=True)
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
        return target
    return None


def _fetch_folder(entry: Entry, download: bool) -> Path:
    rel = entry.served.path
    candidates = [r / rel for r in (mirror_dir(), cache_dir()) if r is not None]
    for candidate in candidates:
        if _folder_complete(entry, candidate):
            return candidate
    target = cache_dir() / rel
    if download:
        unpacked = _unpack(entry, target)
        if unpacked is not None:
            return unpacked
    how = entry.manual.format(cache=cache_dir(), target=target) or f"put it at {target}"
    found = [str(c) for c in candidates if c.is_dir()]
    state = f"{', '.join(found)} is incomplete" if found else "it is not present"
    raise DataUnavailableError(
        f"cannot get {entry.name!r} (folder {Path(rel).name}): {state} and it cannot be "
        f"downloaded automatically; {how}; {_env_help()}"
    )


def fetch(name: str, download: bool = True) -> Path:
    """Return a verified local path for registry entry ``name``.

    Order: the offline mirror ``$GLOCAL_DATA_DIR`` (used only with the right sha256), the cache,
    then a download into the cache (staging file, checksum, rename). A checksum mismatch raises
    :class:`ChecksumError`; a bad cached file is deleted. Without network (or with
    ``download=False``) a missing file raises :class:`DataUnavailableError` saying what to
    download from where, where to put it, and the environment variables.
    """
    entry = get_entry(name)
    _refuse(entry)
    if entry.kind == "folder":
        return _fetch_folder(entry, download)
    rel = entry.served.path
    mirror = mirror_dir()
    if mirror is not None and _check_file(entry, mirror / rel, "mirror"):
        return mirror / rel
    target = cache_dir() / rel
    try:
        if _check_file(entry, target, "cache"):
            return target
    except ChecksumError:
        if not download:
            raise
    if not download:
        raise _unavailable(entry, target, "it is not in the mirror or the cache (download=False)")
    target.parent.mkdir(parents=True, exist_ok=True)
    return _download(entry, target)


def path(name: str) -> Path:
    """The verified local path of ``name`` if it is already present; never downloads."""
    return fetch(name, download=False)


def transform_path(model: str, module: str) -> Path:
    """Verified local path of the released gLocal transform ``transform.npz`` for model/module."""
    return fetch(transform_name(model, module))


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
