"""The registry of public data files, read from ``registry.json`` and checked on load."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from glocal.errors import GlocalError

REGISTRY_FILE = "registry.json"
KINDS = ("file", "folder")


@dataclass(frozen=True)
class Remote:
    """Where one file lives: its path in the cache/mirror layout, its URL and checksum."""

    path: str
    url: str | None
    sha256: str | None
    size: int | None = None
    source: str = ""
    #: The file's git blob id (SHA-1 of ``b"blob <size>\0" + content``) in the repository it is
    #: released from: a pin for files whose sha256 could not be computed (too large to copy).
    git_blob: str | None = None


@dataclass(frozen=True)
class Entry:
    """One registry entry: the released file, an optional override, and its metadata."""

    name: str
    kind: str
    release: Remote
    license: str
    citation: str
    description: str
    override: Remote | None = None
    columns: tuple[str, ...] = ()
    note: str = ""
    manual: str = ""
    unzip: dict[str, Any] = field(default_factory=dict)
    n_folders: int | None = None
    model: str | None = None
    module: str | None = None
    duplicate_of: str = ""
    refused: str = ""

    @property
    def served(self) -> Remote:
        """The file glocal actually serves: the override when there is one, else the release."""
        return self.override or self.release

    @property
    def pinned(self) -> bool:
        """Whether the served file has a known sha256 or git blob id."""
        return self.served.sha256 is not None or self.served.git_blob is not None

    @property
    def checksum(self) -> str:
        """``pinned``, ``unpinned`` (served only when explicitly allowed) or ``flagged`` (the
        released file is a byte copy of another entry: refused, or replaced by an override).

        A folder entry is pinned when the archive it is unpacked from is (``unzip.sha256``).
        """
        if self.refused or self.duplicate_of:
            return "flagged"
        if self.kind == "folder":
            return "pinned" if self.unzip.get("sha256") else "unpinned"
        return "pinned" if self.pinned else "unpinned"

    @property
    def status(self) -> str:
        """One word for listings: refused, manual, unpinned, override or pinned."""
        if self.refused:
            return "refused"
        if self.served.url is None:
            return "manual"
        if not self.pinned:
            return "unpinned"
        return "override" if self.override else "pinned"


def _check_sha(sha: Any, where: str, field_name: str = "sha256", length: int = 64) -> None:
    if sha is not None and (
        not isinstance(sha, str)
        or len(sha) != length
        or any(c not in "0123456789abcdef" for c in sha)
    ):
        raise GlocalError(
            f"{where}: field {field_name!r} must be {length} lower-case hex digits or null"
        )


def _remote(raw: dict[str, Any], where: str) -> Remote:
    for key in ("path", "url", "sha256"):
        if key not in raw:
            raise GlocalError(f"{where}: missing field {key!r}")
    sha = raw["sha256"]
    _check_sha(sha, where)
    blob = raw.get("git_blob")
    _check_sha(blob, where, "git_blob", length=40)
    path = str(raw["path"])
    if path.startswith("/") or ".." in Path(path).parts:
        raise GlocalError(f"{where}: field 'path' must be relative without '..', got {path!r}")
    return Remote(path, raw["url"], sha, raw.get("size"), raw.get("source", ""), blob)


def _entry(raw: dict[str, Any], where: str) -> Entry:
    if not isinstance(raw, dict) or "name" not in raw:
        raise GlocalError(f"{where}: each entry must be an object with a 'name'")
    where = f"{where} ({raw['name']})"
    kind = raw.get("kind", "file")
    if kind not in KINDS:
        raise GlocalError(f"{where}: field 'kind' must be one of {KINDS}, got {kind!r}")
    for key in ("license", "citation", "description"):
        if not raw.get(key):
            raise GlocalError(f"{where}: field {key!r} is required")
    override = raw.get("override")
    unzip = raw.get("unzip", {})
    if not isinstance(unzip, dict):
        raise GlocalError(f"{where}: field 'unzip' must be an object")
    _check_sha(unzip.get("sha256"), where, "unzip.sha256")
    return Entry(
        name=raw["name"],
        kind=kind,
        release=_remote(raw, where),
        license=raw["license"],
        citation=raw["citation"],
        description=raw["description"],
        override=_remote(override, f"{where} override") if override else None,
        columns=tuple(raw.get("columns", ())),
        note=raw.get("note", ""),
        manual=raw.get("manual", ""),
        unzip=dict(unzip),
        n_folders=raw.get("n_folders"),
        model=raw.get("model"),
        module=raw.get("module"),
    )


def _flag_duplicates(entries: list[Entry]) -> list[Entry]:
    """Mark released files that are byte copies of another entry (equal sha256).

    In a group of entries whose released files share a sha256, an entry with an ``override``
    is served from the override and records ``duplicate_of``. The group is resolved when exactly
    one member has no override (that one is genuine); otherwise every member without an
    override is refused, because glocal cannot tell which file is genuine.
    """
    groups: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        if entry.release.sha256:
            groups.setdefault(entry.release.sha256, []).append(i)
    out = list(entries)
    for members in groups.values():
        if len(members) < 2:
            continue
        genuine = [i for i in members if entries[i].override is None]
        names = [entries[i].name for i in members]
        for i in members:
            others = [n for n in names if n != entries[i].name]
            if entries[i].override is not None:
                out[i] = replace(out[i], duplicate_of=", ".join(others))
            elif len(genuine) > 1:
                out[i] = replace(
                    out[i],
                    duplicate_of=", ".join(others),
                    refused=(
                        f"its released file has the same sha256 as {', '.join(others)}; "
                        "add an 'override' to the registry entry of the copy"
                    ),
                )
    served = [e.served.sha256 for e in out if e.served.sha256 and not e.refused]
    dup = {s for s in served if served.count(s) > 1}
    if dup:
        raise GlocalError(f"{REGISTRY_FILE}: served files share sha256 {sorted(dup)}")
    return out


def parse_registry(document: dict[str, Any], where: str = REGISTRY_FILE) -> tuple[Entry, ...]:
    """Validate a registry document (the parsed JSON) and return its entries."""
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise GlocalError(f"{where}: expected an object with a list 'entries'")
    entries = [_entry(raw, f"{where} entry {i}") for i, raw in enumerate(document["entries"])]
    names = [e.name for e in entries]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise GlocalError(f"{where}: entry names must be unique; repeated: {repeated}")
    return tuple(_flag_duplicates(entries))


@lru_cache(maxsize=1)
def registry() -> tuple[Entry, ...]:
    """All registry entries, in file order (duplicates flagged, see :class:`Entry`)."""
    text = resources.files("glocal.data").joinpath(REGISTRY_FILE).read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise GlocalError(f"glocal/data/{REGISTRY_FILE} is not valid JSON ({err})") from err
    return parse_registry(document, f"glocal/data/{REGISTRY_FILE}")


def get_entry(name: str) -> Entry:
    """The entry called ``name``; an unknown name raises with the closest known names."""
    for entry in registry():
        if entry.name == name:
            return entry
    names = [e.name for e in registry()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise GlocalError(
        f"unknown data name {name!r}{hint} (run 'glocal data list' for all {len(names)} names)"
    )


def released_transforms() -> list[tuple[str, str]]:
    """The (model, module) pairs of the officially released gLocal transforms."""
    return [(e.model, e.module) for e in registry() if e.model and e.module]


def transform_name(model: str, module: str) -> str:
    """Registry name of the released transform for ``model`` / ``module``."""
    name = f"transform/{model}/{module}"
    if not any(e.name == name for e in registry()):
        pairs = ", ".join(f"{m}/{mod}" for m, mod in released_transforms())
        raise GlocalError(
            f"no released gLocal transform for model {model!r}, module {module!r}; "
            f"released model/module pairs: {pairs}"
        )
    return name
