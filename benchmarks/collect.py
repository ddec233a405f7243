"""Join the per-benchmark sections in benchmarks/results/*.md into benchmarks/RESULTS.md."""

from __future__ import annotations

import datetime
import os
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    sections = sorted((HERE / "results").glob("*.md"))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmark results\n",
        f"Written by `make bench` ({stamp}); each section comes from `benchmarks/bench_*.py`.\n",
    ]
    parts += [section.read_text() for section in sections]
    fd, tmp = tempfile.mkstemp(dir=HERE, suffix=".md")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(parts))
    os.replace(tmp, HERE / "RESULTS.md")
    print(f"wrote {HERE / 'RESULTS.md'} from {len(sections)} sections")


if __name__ == "__main__":
    main()
