"""Compare the outputs of two builds: every CSV number for number, every PNG pixel for pixel.

    python benchmarks/compare_builds.py BEFORE_RESULTS AFTER_RESULTS [--out FILE] [--tol 1e-6]

For a change that should not move a number (a restructuring): each results folder is a build's
``--results-dir`` (``results/PROFILE`` by default). A CSV matches when it has the same columns
in the same order, the same rows, numeric columns within ``--tol`` (NaN where the other has
NaN) and text columns equal. Text cells that differ are listed, since a path or a machine name
in a message differs between any two builds. Writes a markdown table (``--out``, default
standard output); the exit status is 1 when a CSV differs in a number, its columns or its rows.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glocal.io import atomic_write


@dataclass
class Comparison:
    """What differs between two tables (empty lists: nothing)."""

    name: str
    structure: list[str] = field(default_factory=list)  # columns or rows
    numbers: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    largest: float = 0.0
    cells: int = 0


def compare_tables(name: str, before: pd.DataFrame, after: pd.DataFrame, tol: float) -> Comparison:
    """Column by column: numbers within ``tol`` (NaN against NaN), text equal."""
    result = Comparison(name)
    if list(before.columns) != list(after.columns):
        changed = sorted(set(before.columns) ^ set(after.columns))
        result.structure.append(f"columns {changed if changed else 'in another order'}")
        return result
    if len(before) != len(after):
        result.structure.append(f"{len(before)} rows before, {len(after)} after")
        return result
    for column in before.columns:
        old, new = before[column], after[column]
        result.cells += len(old)
        if pd.api.types.is_numeric_dtype(old) and pd.api.types.is_numeric_dtype(new):
            x, y = old.to_numpy(np.float64), new.to_numpy(np.float64)
            if not np.array_equal(np.isnan(x), np.isnan(y)):
                result.numbers.append(f"{column}: NaN in other rows")
                continue
            both = ~np.isnan(x)
            gap = float(np.max(np.abs(x[both] - y[both]), initial=0.0))
            result.largest = max(result.largest, gap)
            if gap > tol:
                result.numbers.append(f"{column}: largest difference {gap:.3g}")
        else:
            differ = old.fillna("<NA>").astype(str) != new.fillna("<NA>").astype(str)
            if differ.any():
                result.text.append(f"{column}: {int(differ.sum())} cells")
    return result


def compare_images(before: Path, after: Path) -> float | None:
    """The share of pixels that differ (None: the images differ in size)."""
    from PIL import Image

    a, b = np.asarray(Image.open(before)), np.asarray(Image.open(after))
    if a.shape != b.shape:
        return None
    return float((a != b).reshape(a.shape[0], a.shape[1], -1).any(axis=-1).mean())


def report(before: Path, after: Path, tol: float) -> tuple[str, bool]:
    """The markdown report and whether every CSV matched."""
    tables = {p.relative_to(before) for p in before.rglob("*.csv")}
    tables_after = {p.relative_to(after) for p in after.rglob("*.csv")}
    lines = [f"`{before}` (before) against `{after}` (after), numbers to {tol:g}.\n",
             "| CSV | cells | largest number difference | differs |",
             "|---|---:|---:|---|"]  # fmt: skip
    same = True
    for name in sorted(tables - tables_after):
        lines.append(f"| {name} | | | only before |")
        same = False
    for name in sorted(tables_after - tables):
        lines.append(f"| {name} | | | only after |")
        same = False
    matched = 0
    for name in sorted(tables & tables_after):
        found = compare_tables(str(name), pd.read_csv(before / name), pd.read_csv(after / name),
                               tol)  # fmt: skip
        bad = found.structure + found.numbers
        same = same and not bad
        matched += not bad
        notes = "; ".join(bad + [f"text {t}" for t in found.text]) or "no"
        lines.append(f"| {name} | {found.cells} | {found.largest:.3g} | {notes} |")
    lines.append(f"\n{matched} of {len(tables & tables_after)} CSVs match in every number.\n")
    images = sorted(p.relative_to(before) for p in before.rglob("*.png"))
    shares = {name: compare_images(before / name, after / name)
              for name in images if (after / name).is_file()}  # fmt: skip
    moved = {name: share for name, share in shares.items() if share != 0.0}
    lines.append(f"PNG: {len(shares) - len(moved)} of {len(shares)} identical in every pixel"
                 + ("; " if moved else ".") + "; ".join(
                     f"{name}: {'another size' if share is None else f'{share:.2%} of pixels'}"
                     for name, share in moved.items()))  # fmt: skip
    return "\n".join(lines) + "\n", same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="markdown file (default: stdout)")
    parser.add_argument("--tol", type=float, default=1e-6)
    args = parser.parse_args(argv)
    for folder in (args.before, args.after):
        if not folder.is_dir():
            parser.error(f"{folder}: not a results folder; pass a build's --results-dir")
    text, same = report(args.before, args.after, args.tol)
    if args.out is None:
        sys.stdout.write(text)
    else:
        atomic_write(args.out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
