"""``glocal data``: list, fetch, verify and locate the registry's public data files."""

from __future__ import annotations

import argparse
import sys
import warnings

from glocal import data
from glocal.errors import GlocalError


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
    listing = actions.add_parser("list", help="list the registry entries")
    listing.set_defaults(func=_list)
    fetch = actions.add_parser("fetch", help="fetch files (mirror, cache, else download)")
    fetch.add_argument("names", nargs="*", metavar="NAME", help="registry names")
    fetch.add_argument("--all", action="store_true", help="fetch every downloadable entry")
    fetch.set_defaults(func=_fetch)
    check = actions.add_parser("verify", help="re-hash every file present and report mismatches")
    check.add_argument("names", nargs="*", metavar="NAME", help="only these entries")
    check.set_defaults(func=_verify)
    where = actions.add_parser("path", help="print the local path of a present file")
    where.add_argument("name", metavar="NAME")
    where.set_defaults(func=_path)


def _list(args: argparse.Namespace) -> int:
    roots = [("mirror", data.mirror_dir()), ("cache", data.cache_dir())]
    rows = []
    for entry in data.registry():
        rel = entry.served.path
        here = [label for label, root in roots if root is not None and (root / rel).exists()]
        size = f"{entry.served.size / 2**20:.1f} MiB" if entry.served.size else "?"
        rows.append((entry.name, entry.status, size, ",".join(here) or "-", entry.license))
    widths = [
        max(len(r[i]) for r in rows + [("NAME", "STATUS", "SIZE", "PRESENT", "")]) for i in range(4)
    ]
    header = ("NAME", "STATUS", "SIZE", "PRESENT", "LICENSE")
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    return 0


def _fetch(args: argparse.Namespace) -> int:
    names = list(args.names)
    if args.all:
        names += [e.name for e in data.registry() if e.served.url and not e.refused]
    if not names:
        raise GlocalError("data fetch: give one or more NAMEs (see 'glocal data list') or --all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", data.UnpinnedDataWarning)
        for name in dict.fromkeys(names):
            print(f"{name}\t{data.fetch(name)}")
    for warning in caught:
        print(f"note: {warning.message}", file=sys.stderr)
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
        print(data.path(args.name))
    return 0
