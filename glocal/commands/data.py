"""``glocal data``: list, fetch, verify and locate the registry's public data files."""

from __future__ import annotations

import argparse
import sys
import warnings

from glocal import data
from glocal.errors import DamagedCacheWarning, GlocalError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``glocal data list | fetch NAME... | verify [NAME...] | path NAME``."""
    parser = subparsers.add_parser(
        "data",
        help="list, fetch, verify and locate public data files",
        description=(
            "Public data files from glocal/data/registry.json. Files are looked up in the offline "
            f"mirror ${data.ENV_MIRROR}, then the cache ${data.ENV_CACHE} (now "
            f"{data.cache_dir()}), and downloaded with checksums when missing."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser(
        "list",
        help="list the registry entries",
        description="Columns: NAME, STATUS, SHA256 (" + "; ".join(CHECKSUM_LEGEND) + "), SIZE, "
        "PRESENT (mirror, cache) and LICENSE.",
    )
    listing.set_defaults(func=_list)
    fetch = actions.add_parser("fetch", help="fetch files (mirror, cache, else download)")
    fetch.add_argument("names", nargs="*", metavar="NAME", help="registry names")
    fetch.add_argument("--all", action="store_true", help="fetch every downloadable entry")
    fetch.add_argument("--allow-unpinned", action="store_true", help=ALLOW_HELP)
    fetch.set_defaults(func=_fetch)
    check = actions.add_parser("verify", help="re-hash every file present and report mismatches")
    check.add_argument("names", nargs="*", metavar="NAME", help="only these entries")
    check.set_defaults(func=_verify)
    where = actions.add_parser("path", help="print the local path of a present file")
    where.add_argument("name", metavar="NAME")
    where.add_argument("--allow-unpinned", action="store_true", help=ALLOW_HELP)
    where.set_defaults(func=_path)


ALLOW_HELP = (
    "serve files whose sha256 the registry does not pin (unverified bytes; the sha256 seen is "
    f"recorded and the file held to it); same as {data.ENV_ALLOW_UNPINNED}=1"
)
CHECKSUM_LEGEND = (
    "pinned: the sha256 is in the registry and checked",
    "git-blob: the file's git blob id in its release's git tree is in the registry and checked "
    "(its sha256 is recorded beside the downloaded file)",
    f"unpinned: no sha256 known, served only with --allow-unpinned or {data.ENV_ALLOW_UNPINNED}=1",
    "flagged: the released file is a byte copy of another entry (replaced by an override or "
    "refused)",
)


def _checksum_column(entry: data.Entry, allowed: bool) -> str:
    if entry.checksum == "unpinned" and allowed:
        return "unpinned(allowed)"
    if entry.checksum == "pinned" and entry.served.sha256 is None and entry.served.git_blob:
        return "git-blob"
    return entry.checksum


def _list(args: argparse.Namespace) -> int:
    roots = [("mirror", data.mirror_dir()), ("cache", data.cache_dir())]
    allowed = data.unpinned_allowed()
    header = ("NAME", "STATUS", "SHA256", "SIZE", "PRESENT", "LICENSE")
    rows = []
    for entry in data.registry():
        rel = entry.served.path
        here = [label for label, root in roots if root is not None and (root / rel).exists()]
        size = f"{entry.served.size / 2**20:.1f} MiB" if entry.served.size else "?"
        checksum = _checksum_column(entry, allowed)
        rows.append(
            (entry.name, entry.status, checksum, size, ",".join(here) or "-", entry.license)
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    print("SHA256: " + "; ".join(CHECKSUM_LEGEND), file=sys.stderr)
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from glocal.data._registry import get_entry

    names = list(args.names)
    allow = True if args.allow_unpinned else None  # None: $GLOCAL_ALLOW_UNPINNED decides
    skipped = []
    if args.all:
        downloadable = [e for e in data.registry() if e.served.url and not e.refused]
        if not data.unpinned_allowed(allow):
            skipped = [e.name for e in downloadable if e.checksum == "unpinned"]
        names += [e.name for e in downloadable if e.name not in skipped]
    if not names:
        raise GlocalError("data fetch: give one or more NAMEs (see 'glocal data list') or --all")
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", data.UnpinnedDataWarning)
        warnings.simplefilter("always", DamagedCacheWarning)
        for name in dict.fromkeys(names):
            got = data.fetch(name, allow_unpinned=allow)
            print(f"{name}\t{got}")
            entry = get_entry(name)
            blob_only = entry.served.sha256 is None and entry.served.git_blob is not None
            if entry.kind == "file" and blob_only and got.is_file():
                notes.append(
                    f"{name} matches its git blob id {entry.served.git_blob}; its sha256 is "
                    f"{data.sha256sum(got)}: pin it in glocal/data/registry.json"
                )
    for message in [*(str(w.message) for w in caught), *notes]:
        print(f"note: {message}", file=sys.stderr)
    if skipped:
        print(
            f"note: skipped {len(skipped)} unpinned entries ({', '.join(skipped)}); "
            "add --allow-unpinned to fetch them unverified",
            file=sys.stderr,
        )
    return 0


def _verify(args: argparse.Namespace) -> int:
    results = data.verify(args.names or None)
    for r in results:
        detail = f"  {r.message}" if r.message else ""
        actual = f"  sha256={r.actual}" if r.status in ("mismatch", "unpinned") else ""
        print(f"{r.status:<9} {r.name}  {r.path or '-'}{actual}{detail}")
    bad = [r for r in results if not r.ok]
    statuses = dict.fromkeys(r.status for r in results)
    counts = {s: sum(r.status == s for r in results) for s in statuses}
    print(", ".join(f"{n} {s}" for s, n in counts.items()), file=sys.stderr)
    return 1 if bad else 0


def _path(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", data.UnpinnedDataWarning)
        print(data.path(args.name, allow_unpinned=True if args.allow_unpinned else None))
    return 0
