"""Small placeholder notebooks, profiles and book sites for the runner and book tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nbformat
import yaml

REPO = Path(__file__).resolve().parents[1]

PLOT = """\
import os
import matplotlib
import matplotlib.pyplot as plt

os.makedirs(results_dir, exist_ok=True)
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot(range(n_points), [i * i for i in range(n_points)], marker="o")
ax.set_title(f"placeholder ({profile}, seed {seed})")
fig.savefig(os.path.join(results_dir, "figure.png"))
plt.show()
"""


def write_notebook(
    path: Path,
    title: str,
    *,
    fail: bool = False,
    plot: bool = True,
    inputs: list[str] | None = None,
    extra: str = "",
) -> Path:
    """Write a placeholder result notebook with a tagged parameters cell."""
    params = nbformat.v4.new_code_cell(
        'profile = "quick"\nresults_dir = "results/placeholder"\nseed = 0\noverrides = {}'
    )
    params.metadata["tags"] = ["parameters"]
    cells = [
        nbformat.v4.new_markdown_cell(f"# {title}\n\nA placeholder result page."),
        params,
        nbformat.v4.new_code_cell('n_points = overrides.get("n_points", 5)'),
    ]
    if plot:
        cells.append(nbformat.v4.new_code_cell(PLOT))
    cells.append(nbformat.v4.new_code_cell(f"print('sum', sum(range(n_points))){extra}"))
    if fail:
        cells.append(nbformat.v4.new_code_cell("raise ValueError('placeholder failure')"))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if inputs is not None:
        nb.metadata["glocal"] = {"inputs": inputs}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def write_profile(notebooks_dir: Path, name: str, profiles: dict[str, dict[str, Any]]) -> Path:
    """Write ``profiles/NAME.json``."""
    path = notebooks_dir / "profiles" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profiles, indent=1), encoding="utf-8")
    return path


def placeholder_notebooks(notebooks_dir: Path, names: list[str]) -> list[Path]:
    """Placeholder notebooks ``names`` with quick/paper/tiny profiles."""
    paths = []
    for name in names:
        paths.append(write_notebook(notebooks_dir / f"{name}.ipynb", name.replace("_", " ")))
        write_profile(
            notebooks_dir,
            name,
            {"quick": {"n_points": 8}, "paper": {"n_points": 20}, "tiny": {"n_points": 4}},
        )
    return paths


def make_site(root: Path, results: list[str] | None = None) -> Path:
    """Copy the repository's book sources into ``root``; optionally replace the result pages."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("results"))
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    if results is not None:  # the given pages are the only result pages
        for part in toc["parts"]:
            part["chapters"] = [c for c in part["chapters"]
                                if not c["file"].startswith("book/results/")]  # fmt: skip
        toc["parts"] = [p for p in toc["parts"] if p["chapters"] or p.get("caption") == "Results"]
        part = next(p for p in toc["parts"] if p.get("caption") == "Results")
        part["chapters"] = [{"file": f"book/results/{name}"} for name in results]
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    return root


def toc_results() -> list[str]:
    """The result pages (``book/results/NN_slug``) listed in any part of the repository's
    ``_toc.yml`` (Results, Open questions), in order."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    return [
        c["file"].split("/")[-1]
        for part in toc["parts"]
        for c in part.get("chapters", [])
        if c["file"].startswith("book/results/")
    ]
