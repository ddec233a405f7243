"""Benchmark a cold ``make reproduce`` of the quick profile: wall time per stage and what it spent.

Runs ``python -m companion --profile quick --jobs 2 --force`` with empty caches
(``GLOCAL_CACHE_DIR`` and ``XDG_CACHE_HOME`` in a temporary folder) and writes the executed
notebooks, results and book there too, so the repository's own outputs are not touched. The
machine should be otherwise idle. The table gives prepare, each notebook and the whole run as
the runner reports them, then the CPU seconds of the searches' fold fits and of the final fits
as their records store them (each fit runs on one thread), which is where the time goes.

Writes benchmarks/results/reproduce_quick.md. ``GLOCAL_BENCH_REPRODUCE=skip`` skips it (it takes
about half an hour on 2 cores); ``GLOCAL_BENCH_REPRODUCE_KEEP=FOLDER`` (a new folder) keeps the
build's caches, executed notebooks, results and book there instead of a temporary folder.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from glocal.io import atomic_write

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: The issue's budget for a cold quick build on 2 idle cores.
BUDGET_S = 15 * 60
_RAN = re.compile(r"ran (\d\d_\w+) in ([\d.]+) s")
_PREPARE = re.compile(r"prepare \(quick\): .*; ([\d.]+) s$")


def _fit_records(cache: Path) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds of every search fold fit (by its settings' alpha) and final fit (by kind), read
    with the readers of the search cache and of the fit cache."""
    from glocal import GlocalTransform
    from glocal.search import _read_entry

    units: dict[str, list[float]] = defaultdict(list)
    for path in sorted((cache / "search").glob("*.npz")):
        record, why = _read_entry(path, {})
        if record is None:
            raise SystemExit(f"bench_reproduce: {why or path}")
        alpha = record["params"].get("alpha", 0.0)
        units[f"alpha {alpha:g}" if alpha else "alpha 0 (naive, global)"].append(
            float(record["fit_time"])
        )
    fits: dict[str, list[float]] = defaultdict(list)
    for path in sorted((cache / "fits").glob("*.npz")):
        experiment = GlocalTransform.load(path).metadata_.get("experiment", {})
        fits[experiment.get("kind", "?")].append(float(experiment.get("seconds", 0.0)))
    return units, fits


def main() -> None:
    if os.environ.get("GLOCAL_BENCH_REPRODUCE", "run") == "skip":
        print("bench_reproduce: skipped (GLOCAL_BENCH_REPRODUCE=skip)")
        return
    keep = os.environ.get("GLOCAL_BENCH_REPRODUCE_KEEP")
    if keep and Path(keep).exists():
        raise SystemExit(f"GLOCAL_BENCH_REPRODUCE_KEEP={keep} exists; name a new folder")
    with tempfile.TemporaryDirectory(prefix="glocal-bench-reproduce-") as tmp:
        work = Path(keep) if keep else Path(tmp)
        env = {**os.environ, "GLOCAL_CACHE_DIR": str(work / "cache"),
               "XDG_CACHE_HOME": str(work / "xdg")}  # fmt: skip
        command = [sys.executable, "-m", "companion", "--profile", "quick", "--jobs", "2",
                   "--force", "--build-dir", str(work / "_build"),
                   "--executed-dir", str(work / "executed"),
                   "--results-dir", str(work / "results")]  # fmt: skip
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        output = (proc.stdout + proc.stderr).replace("\r", "\n")
        if proc.returncode != 0:
            raise SystemExit(f"the quick build failed ({proc.returncode}):\n{output[-3000:]}")
        units, fits = _fit_records(work / "cache")
    stages = [("prepare (page 1's searches and fits, both sources)", float(m.group(1)))
              for m in map(_PREPARE.search, output.splitlines()) if m]  # fmt: skip
    stages += [(name, float(seconds)) for name, seconds in _RAN.findall(output)]
    lines = [
        "## A cold quick build (`benchmarks/bench_reproduce.py`)\n",
        f"{platform.node()}, {os.cpu_count()} CPUs, load {load_before:.1f} at the start; "
        "`python -m companion --profile quick --jobs 2 --force` with empty caches. "
        f"**Whole run {wall:.0f} s ({wall / 60:.1f} min)**; the budget is {BUDGET_S} s. "
        "Notebooks run two at a time, so their times overlap.\n",
        "| stage | s |",
        "|---|---|",
        *[f"| {name} | {seconds:.1f} |" for name, seconds in stages],
        f"| whole run, with the book | {wall:.1f} |",
        "",
        "Where the CPU time went (one thread per fit, as each record stores it):\n",
        "| work | count | CPU s | mean s |",
        "|---|---|---|---|",
    ]
    for label, table in (("search fold fits", units), ("final fits", fits)):
        for key in sorted(table):
            values = table[key]
            lines.append(f"| {label}, {key} | {len(values)} | {sum(values):.0f} | "
                         f"{np.mean(values):.1f} |")  # fmt: skip
    total = sum(sum(v) for v in units.values()) + sum(sum(v) for v in fits.values())
    lines += [f"| all fits | {sum(map(len, units.values())) + sum(map(len, fits.values()))} | "
              f"{total:.0f} | |", ""]  # fmt: skip
    out = HERE / "results" / "reproduce_quick.md"
    atomic_write(out, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
