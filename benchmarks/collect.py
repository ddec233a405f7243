"""Join the per-benchmark sections in benchmarks/results/*.md into benchmarks/RESULTS.md."""

from __future__ import annotations

import datetime
from pathlib import Path

from glocal.io import atomic_write

HERE = Path(__file__).resolve().parent


def main() -> None:
    sections = sorted((HERE / "results").glob("*.md"))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmark results\n",
        f"Written by `make bench` ({stamp}); each section comes from `benchmarks/bench_*.py`.\n",
    ]
    parts += [section.read_text() for section in sections]
    text = "\n".join(parts)
    atomic_write(HERE / "RESULTS.md", lambda tmp: tmp.write_text(text))
    print(f"wrote {HERE / 'RESULTS.md'} from {len(sections)} sections")


if __name__ == "__main__":
    main()
