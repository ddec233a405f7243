"""Notebook output: figures as PNG + SVG and tables as CSV (atomic writes), and a shared style.

Besides writing files, this module holds what the result pages share for *showing* results:
the colours and names of the representations, tables without index columns
(:func:`show`), figures glued into the book with a numbered caption (:func:`glue_figure`),
and the fits' loss curves
(:func:`fit_histories`, :func:`stopping_table`, :func:`plot_fit_histories`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
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
#: One marker per representation, so that lines differ in more than colour.
MARKERS = {"original": "s", "zero-shot": "s", "naive": "v", "global": "D", "glocal": "o"}
#: How representations are named in legends and axes.
LABELS = {
    "original": "original",
    "zero-shot": "zero-shot (original)",
    "naive": "naive",
    "global": "global",
    "glocal": "gLocal",
    "human": "human (VICE)",
}
#: Figures are drawn for the book's text column (about 7 inches at the page's scale).
COLUMN_WIDTH = 7.0
STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.alpha": 0.3,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "errorbar.capsize": 3,
    "svg.hashsalt": "glocal",  # stable element ids: the same figure gives the same SVG
}


def use_style() -> None:
    """Apply the notebooks' matplotlib style (call once at the top of a notebook)."""
    import matplotlib

    matplotlib.rcParams.update(STYLE)  # type: ignore[arg-type]


def color(name: str) -> str:
    """The colour of a representation (brown for unknown names)."""
    return COLORS.get(name, "#8c564b")


def marker(name: str) -> str:
    """The marker of a representation (a circle for unknown names)."""
    return MARKERS.get(name, "o")


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


# --- tables and glued values for the book -----------------------------------------------------


def _cell(value: Any, digits: int) -> str:
    """One table cell: integers with thousands separators, floats with ``digits`` decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}"
    return str(value)


def show(
    table: pd.DataFrame,
    digits: int = 3,
    index: bool = False,
    columns: Mapping[str, str] | None = None,
    integer_columns: Sequence[str] = (),
) -> None:
    """Display ``table`` as the book shows tables: no index column, integers as integers.

    ``columns`` renames columns for display; ``integer_columns`` are shown without decimals
    even when pandas stored them as floats (a count column with a missing value). With
    ``index=True`` the index becomes ordinary leading columns. Returns nothing (so that a
    cell ending in ``show(...)`` does not show the table twice).
    """
    from IPython.display import HTML, display

    shown = (table.reset_index() if index else table).astype(object)
    inferred = [shown[c].infer_objects() for c in shown.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x) for x in inferred
    ]
    for column in integer_columns:
        if column in shown:
            shown[column] = [v if pd.isna(v) else int(v) for v in shown[column]]
    if columns:
        shown = shown.rename(columns=dict(columns))
    cells = shown.map(lambda v: _cell(v, digits))
    head = "".join(
        f'<th class="{"num" if n else "text"}">{_escape(str(c))}</th>'
        for c, n in zip(cells.columns, numeric, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if n else "text"}">{_escape(v)}</td>'
            for v, n in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in cells.itertuples(index=False)
    )
    html = (
        '<div class="glocal-table"><table class="dataframe glocal">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )
    display(HTML(html))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def say(text: str) -> None:
    """Display ``text`` as Markdown (it wraps to the column, unlike printed lines)."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def glue(name: str, value: Any) -> None:
    """Store ``value`` under ``name`` for the book (``{glue:text}`` roles), without showing it.

    Numbers are stored as Python numbers and text as plain strings, so a page can format them
    (``{glue:text}`name:.3f```) and other pages can quote them (``path::name``).
    """
    from myst_nb import glue as _glue

    if isinstance(value, (np.integer,)):
        value = int(value)
    elif isinstance(value, (np.floating,)):
        value = float(value)
    _glue(name, value, display=False)


def glue_figure(fig: Any, results_dir: str | os.PathLike, name: str) -> None:
    """Save ``fig`` (PNG + SVG, :func:`save_figure`), glue it as ``fig_NAME`` and close it.

    The page shows it where a markdown cell says ``{glue:figure} fig_NAME`` with a ``:name:``
    and a caption, so that the text can refer to it by number. Nothing is shown in the code
    cell itself, and nothing is returned (a cell may end with this call).
    """
    import matplotlib.pyplot as plt
    from myst_nb import glue as _glue

    save_figure(fig, results_dir, name)
    _glue(f"fig_{name}", fig, display=False)
    plt.close(fig)


# --- the fits: loss curves and how each fit stopped -------------------------------------------

#: History keys drawn as curves, in this order, when a fit recorded them.
HISTORY_PANELS = (
    ("loss", "training objective"),
    ("objective", "monitored objective (held out)"),
    ("val_acc", "validation odd-one-out accuracy"),
)


def fit_histories(transforms: Mapping[str, Any], **columns: Any) -> pd.DataFrame:
    """One row per check and fit, from each transform's recorded history.

    Keeps every key a fit recorded (step, loss, global_loss, local_loss, objective, val_loss,
    val_acc, lr, seconds, ...); ``columns`` are added as constant columns (e.g. the source).
    The step-0 check has no training loss (nothing was trained yet).
    """
    frames = []
    for name, est in transforms.items():
        history = _history(est)
        if history:
            frames.append(pd.DataFrame(history).assign(transform=name, **columns))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _history(est: Any) -> list[dict]:
    experiment = (getattr(est, "metadata_", None) or {}).get("experiment", {}) or {}
    history = experiment.get("history")
    if history is None:
        history = getattr(est, "history_", None)
    return list(history or [])


def _experiment(est: Any) -> dict[str, Any]:
    return (getattr(est, "metadata_", None) or {}).get("experiment", {}) or {}


def stopping(est: Any) -> dict[str, Any]:
    """How one fit ended: steps run, the step kept, and why it stopped.

    ``stopped_by`` is the fitter's record: ``converged`` (the stopping rule ended the fit)
    or ``max_steps`` (the step limit did; such a fit has not converged).
    """
    experiment = _experiment(est)
    params = est.get_params() if hasattr(est, "get_params") else {}
    history = _history(est)
    steps = experiment.get("steps", getattr(est, "n_steps_", history[-1]["step"] if history else 0))
    best = experiment.get("best_step", getattr(est, "best_step_", None))
    reason = experiment.get("stop_reason", getattr(est, "stop_reason_", None))
    return {
        "steps": int(steps),
        "max_steps": params.get("max_steps"),
        "best_step": None if best is None else int(best),
        "checks": len(history),
        "stopped_by": reason or "not recorded",
    }


def stopping_table(transforms: Mapping[str, Any], **columns: Any) -> pd.DataFrame:
    """:func:`stopping` for every transform, one row each (plus constant ``columns``)."""
    rows = [{"transform": name, **columns, **stopping(est)} for name, est in transforms.items()]
    return pd.DataFrame(rows)


def plot_fit_histories(histories: pd.DataFrame, rows: str | None = None) -> Any:
    """Loss curves: one column per recorded history key of :data:`HISTORY_PANELS`.

    ``histories`` is :func:`fit_histories`' table; ``rows`` names a column (e.g. the feature
    source) that gets one row of panels per value. The y-axes span the values after the
    first checks so that the start does not flatten the part that shows convergence.
    """
    import matplotlib.pyplot as plt

    panels = [(key, title) for key, title in HISTORY_PANELS if key in histories]
    if not panels:
        raise GlocalError("the fits recorded no loss history to plot")
    groups = list(dict.fromkeys(histories[rows])) if rows else [None]
    fig, axes = plt.subplots(
        len(groups),
        len(panels),
        figsize=(COLUMN_WIDTH, 2.3 * len(groups) + 0.6),
        squeeze=False,
        sharex=True,
    )
    for r, group in enumerate(groups):
        part = histories if group is None else histories[histories[rows] == group]
        for c, (key, title) in enumerate(panels):
            ax = axes[r, c]
            for name, line in part.groupby("transform", sort=False):
                kind = str(name)
                ax.plot(
                    line["step"],
                    line[key],
                    color=color(kind),
                    marker=marker(kind),
                    ms=3,
                    markevery=max(1, len(line) // 8),
                    lw=1.3,
                    label=label(kind),
                )
            later = part[part["step"] > part["step"].min() + 2 * _check_gap(part)][key].dropna()
            if len(later) >= 2:
                low, high = float(later.min()), float(later.max())
                pad = 0.08 * (high - low or abs(high) or 1.0)
                ax.set_ylim(low - pad, high + pad)
            if r == 0:
                ax.set_title(title, fontsize=9.5)
            if r == len(groups) - 1:
                ax.set_xlabel("optimiser step")
            if c == 0 and group is not None:
                ax.set_ylabel(str(group), fontsize=9)
            ax.grid(True, axis="both", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def _check_gap(part: pd.DataFrame) -> float:
    steps = np.sort(part["step"].unique())
    return float(np.median(np.diff(steps))) if len(steps) > 1 else 0.0


# --- sweeps with intervals (pages 02 and 08) ------------------------------------------------


def error_bars(table: pd.DataFrame, column: str) -> np.ndarray:
    """The (2, n) ``yerr`` array of matplotlib for ``column`` and its ``_low``/``_high``."""
    low = (table[column] - table[f"{column}_low"]).clip(lower=0)
    high = (table[f"{column}_high"] - table[column]).clip(lower=0)
    return np.nan_to_num(np.vstack([low.to_numpy(), high.to_numpy()]))
