"""Notebook output: figures as PNG + SVG and tables as CSV (atomic writes), and a shared style."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from glocal.errors import GlocalError
from glocal.io import atomic_path

#: One colour per representation, the same in every notebook.
COLORS = {
    "original": "#7f7f7f",
    "zero-shot": "#7f7f7f",
    "naive": "#d62728",
    "global": "#1f77b4",
    "glocal": "#2ca02c",
    "human": "#9467bd",
    "ceiling": "#9467bd",
    "chance": "#000000",
}
#: How representations are named in legends and axes.
LABELS = {
    "original": "original",
    "zero-shot": "zero-shot (original)",
    "naive": "naive",
    "global": "global",
    "glocal": "gLocal",
    "human": "human (VICE)",
}
STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "svg.hashsalt": "glocal",  # stable element ids: the same figure gives the same SVG
}


def use_style() -> None:
    """Apply the notebooks' matplotlib style (call once at the top of a notebook)."""
    import matplotlib

    matplotlib.rcParams.update(STYLE)


def color(name: str) -> str:
    """The colour of a representation (grey for unknown names)."""
    return COLORS.get(name, "#8c564b")


def label(name: str) -> str:
    """The display name of a representation."""
    return LABELS.get(name, name)


def _name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise GlocalError(f"output name {name!r} must be a plain file stem without '/'")
    return name


def save_figure(
    fig: Any, results_dir: str | os.PathLike, name: str, formats: Iterable[str] = ("png", "svg")
) -> list[Path]:
    """Write ``fig`` as ``results_dir/name.png`` and ``.svg`` (each atomically); return the paths.

    The files carry no creation date, so an unchanged figure gives unchanged files.
    """
    stem = _name(name)
    paths = []
    for fmt in formats:
        target = Path(results_dir) / f"{stem}.{fmt}"
        metadata = {"Date": None} if fmt in ("svg", "pdf") else {"Software": None}
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, metadata=metadata)
        paths.append(target)
    return paths


def save_table(
    table: pd.DataFrame, results_dir: str | os.PathLike, name: str, index: bool = False
) -> Path:
    """Write ``table`` as ``results_dir/name.csv`` atomically; return the path."""
    if not isinstance(table, pd.DataFrame):
        raise GlocalError(f"save_table: expected a pandas DataFrame, got {type(table).__name__}")
    target = Path(results_dir) / f"{_name(name)}.csv"
    with atomic_path(target) as tmp:
        table.to_csv(tmp, index=index)
    return target


def reference_line(ax: Any, y: float, name: str, text: str | None = None, **kwargs: Any) -> None:
    """A dashed horizontal line at ``y`` (chance, a ceiling, a baseline) with a legend label."""
    style = {"color": color(name), "ls": "--", "lw": 1.0, "label": text or label(name)}
    ax.axhline(y, **{**style, **kwargs})


def ensure_span(ax: Any, span: float) -> None:
    """Widen the y-axis to at least ``span`` about its centre: noise should not look like signal."""
    low, high = ax.get_ylim()
    if high - low < span:
        middle = (low + high) / 2
        ax.set_ylim(middle - span / 2, middle + span / 2)
