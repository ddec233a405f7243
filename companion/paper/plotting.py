"""Figures for the book: one seaborn theme, the representations' colours, and the plots the
result pages share; figures as PNG + SVG and tables as CSV (atomic writes).

The theme (:func:`use_style`, seaborn's ``whitegrid`` with the book's sizes) is applied by
``cp.setup`` in every notebook. Figures are drawn with seaborn on tidy tables where it fits:
means with 95% intervals over the units of a table (:func:`estimate_plot`, the intervals by
the shared rules of :mod:`glocal.evaluation.intervals`), paired differences to a baseline
(:func:`paired_difference_plot`), the fits' loss curves (:func:`plot_fit_histories`); tables
that already hold their intervals are drawn with matplotlib (:func:`interval_plot`). This
module measures nothing: the tables come from :mod:`companion.paper.tables` and
:mod:`companion.paper.sweeps`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glocal.errors import GlocalError
from glocal.evaluation.intervals import mean_interval, wilson_interval
from glocal.io import atomic_path

#: One colour per representation, the same in every notebook (seaborn's colour-blind palette).
COLORS = {
    "original": "#949494",
    "zero-shot": "#949494",
    "naive": "#d55e00",
    "global": "#0173b2",
    "glocal": "#029e73",
    "official": "#ca9161",
    "human": "#cc78bc",
    "ceiling": "#cc78bc",
    "chance": "#000000",
}
#: One marker per representation, so that lines differ in more than colour.
MARKERS = {
    "original": "s",
    "zero-shot": "s",
    "naive": "v",
    "global": "D",
    "glocal": "o",
    "official": "P",
}
#: How representations are named in legends and axes.
LABELS = {
    "original": "original",
    "zero-shot": "zero-shot (original)",
    "naive": "naive",
    "global": "global",
    "glocal": "gLocal",
    "official": "official",
    "human": "human (VICE)",
}
#: Figures are drawn for the book's text column (about 7 inches at the page's scale).
COLUMN_WIDTH = 7.0
#: The book's sizes on top of seaborn's ``whitegrid`` theme.
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
    "grid.alpha": 0.5,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "legend.frameon": False,
    "errorbar.capsize": 3,
    "svg.hashsalt": "glocal",  # stable element ids: the same figure gives the same SVG
}


def use_style() -> None:
    """Apply the book's theme (seaborn ``whitegrid`` with :data:`STYLE`); ``cp.setup`` calls it."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", rc=STYLE)


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
) -> None:
    """Write ``table`` as ``results_dir/name.csv`` atomically.

    Returns nothing, so that a cell may end with this call without showing a path.
    """
    if not isinstance(table, pd.DataFrame):
        raise GlocalError(f"save_table: expected a pandas DataFrame, got {type(table).__name__}")
    target = Path(results_dir) / f"{_name(name)}.csv"
    with atomic_path(target) as tmp:
        table.to_csv(tmp, index=index)


def reference_line(ax: Any, y: float, name: str, text: str | None = None, **kwargs: Any) -> None:
    """A dashed horizontal line at ``y`` (chance, a ceiling, a baseline) with a legend label."""
    style = {"color": color(name), "ls": "--", "lw": 1.0, "label": text or label(name)}
    ax.axhline(y, **{**style, **kwargs})


@contextmanager
def seeded_jitter(seed: int = 0) -> Iterator[None]:
    """Seed NumPy's global generator for the block and restore it afterwards: seaborn's
    ``stripplot`` jitters its points with ``np.random.uniform``, so without this a figure's dots
    move whenever code run before it draws a different number of random values."""
    state = np.random.get_state()  # noqa: NPY002 - the legacy global state seaborn draws from
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


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
    name: str | None = None,
) -> None:
    """Display ``table`` as the book shows tables: no index column, integers as integers.

    ``columns`` renames columns for display; ``integer_columns`` are shown without decimals
    even when pandas stored them as floats (a count column with a missing value). With
    ``index=True`` the index becomes ordinary leading columns. With ``name`` the table is not
    shown in the cell but glued as ``tab_NAME``, for a markdown cell that gives it a number
    and a caption (``{glued-table} tab_NAME`` with a ``:name:``, like ``{glue:figure}``).
    Returns nothing (so that a cell ending in ``show(...)`` does not show the table twice).
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
    if name is None:
        display(HTML(html))
    else:
        from myst_nb import glue as _glue

        _glue(f"tab_{_name(name)}", HTML(html), display=False)


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


def glue_markdown(name: str, text: str) -> None:
    """Store Markdown ``text`` under ``name`` for a markdown cell's ``{glue:md} NAME`` directive
    (with ``:format: myst``), without showing it: text computed from the results that a page
    shows under its own heading (its closing notes), links and emphasis rendered."""
    from IPython.display import Markdown
    from myst_nb import glue as _glue

    _glue(name, Markdown(text), display=False)


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
    source) that gets one row of panels per value. Lines are drawn with seaborn, one colour and
    marker per transform. The y-axes span the values after the first checks so that the start
    does not flatten the part that shows convergence.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    panels = [(key, title) for key, title in HISTORY_PANELS if key in histories]
    if not panels:
        raise GlocalError("the fits recorded no loss history to plot")
    groups = list(dict.fromkeys(histories[rows])) if rows else [None]
    names = list(dict.fromkeys(histories["transform"]))
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
            sns.lineplot(
                data=part.dropna(subset=[key]),
                x="step",
                y=key,
                hue="transform",
                hue_order=names,
                palette=palette(names),
                style="transform",
                style_order=names,
                markers={n: marker(n) for n in names},
                dashes=False,
                markersize=4,
                markevery=max(1, part["step"].nunique() // 8),
                lw=1.3,
                legend=r == 0 and c == 0,
                ax=ax,
            )
            later = part[part["step"] > part["step"].min() + 2 * _check_gap(part)][key].dropna()
            if len(later) >= 2:
                low, high = float(later.min()), float(later.max())
                pad = 0.08 * (high - low or abs(high) or 1.0)
                ax.set_ylim(low - pad, high + pad)
            ax.set_title(title if r == 0 else "", fontsize=9.5)
            ax.set_xlabel("optimiser step" if r == len(groups) - 1 else "")
            ax.set_ylabel(str(group) if c == 0 and group is not None else "", fontsize=9)
            ax.grid(True, axis="both")
    legend = axes[0, 0].get_legend()
    handles = legend.legend_handles if legend is not None else []
    if legend is not None:
        legend.remove()
    fig.legend(
        handles,
        [label(n) for n in names],
        loc="lower center",
        ncol=len(names),
        bbox_to_anchor=(0.5, -0.02),
    )
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


def errorbar_kept_hollow(
    ax: Any,
    x: Any,
    y: Any,
    yerr: Any,
    moved: Any,
    fmt: str,
    color: str,
    label: str,
    ms: float = 5,
) -> None:
    """Points with error bars: a fit that moved is drawn filled, one that kept its start hollow.

    ``moved`` is a boolean per point. The filled markers go above ``errorbar``'s own (drawn
    hollow at zorder 2.1): drawn at the default zorder 2 they were hidden and every point
    looked hollow.
    """
    ax.errorbar(x, y, yerr=yerr, fmt=fmt, ms=ms, color=color, mfc="white", label=label)
    keep = np.asarray(moved, dtype=bool)
    ax.plot(np.asarray(x)[keep], np.asarray(y)[keep], fmt[0], ms=ms, color=color, zorder=3)


# --- estimates with intervals, paired differences (seaborn on tidy tables) --------------------


def _t_interval(values: Any) -> tuple[float, float]:
    _, low, high, _ = mean_interval(np.asarray(values, dtype=float))
    return low, high


def _wilson(values: Any) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return wilson_interval(float(values.mean()), len(values))


#: How :func:`estimate_plot` draws a 95% interval over the units of a table: ``"t"`` a
#: Student-t interval of the mean, ``"wilson"`` a Wilson interval of a proportion (units 0/1),
#: both by the rules of :mod:`glocal.evaluation.intervals`.
INTERVALS: dict[str, Callable[[Any], tuple[float, float]]] = {"t": _t_interval, "wilson": _wilson}


def palette(names: Iterable[str]) -> dict[str, str]:
    """``{name: colour}`` for seaborn's ``palette=`` (the representations' fixed colours)."""
    return {name: color(name) for name in names}


def _rename_handles(handles: Sequence[Any], names: Sequence[str]) -> None:
    """Give the legend's artists the names the legend shows.

    ``ax.legend(handles, names)`` changes only the legend's texts: a later
    ``ax.get_legend_handles_labels()`` or ``ax.legend()`` (a notebook that moves the legend,
    or gathers one legend for a whole figure) reads the artists' own labels again, the raw
    ``glocal`` instead of ``gLocal``.
    """
    for handle, name in zip(handles, names, strict=True):
        handle.set_label(name)


def relabel_legend(ax: Any, title: str | None = None, **kwargs: Any) -> None:
    """Show the legend of ``ax`` with display names (:func:`label`) and without a title.

    The artists are renamed too, so that a legend built again from ``ax`` (``ax.legend()``,
    ``ax.get_legend_handles_labels()``) shows the same names.
    """
    handles, names = ax.get_legend_handles_labels()
    if handles:
        shown = [label(n) for n in names]
        _rename_handles(handles, shown)
        ax.legend(handles, shown, title=title, **kwargs)


def estimate_plot(
    units: pd.DataFrame,
    x: str,
    y: str,
    hue: str = "representation",
    *,
    interval: str = "t",
    ax: Any = None,
    order: Sequence[Any] | None = None,
    hue_order: Sequence[str] | None = None,
    numeric_x: bool = False,
    log_x: bool = False,
    dodge: float | bool = True,
    join: bool = True,
    clusters: Sequence[str] | None = None,
    weights: str | None = None,
) -> Any:
    """Means of ``y`` per ``x`` and ``hue`` with a 95% interval over the units.

    ``units`` is a tidy table with one row per unit of the interval (a test triplet, an item,
    an episode, a class, a seed); ``interval`` names the rule of :data:`INTERVALS`. With
    ``clusters`` (the columns naming the units a row shares with others: the concepts of a
    triplet, a category) the interval is instead the cluster-robust interval of
    :func:`companion.paper.comparisons.summary` (``weights``: a column weighing the rows), the same
    interval as the pages' tables. ``x`` is categorical by default; ``numeric_x`` places it
    on a numeric (``log_x``: logarithmic) axis. Points of the ``hue`` values are shifted apart
    (``dodge``) so that their intervals do not hide one another, and the representations keep
    their colours and markers. Returns the axes.

    Raises
    ------
    GlocalError
        For an unknown ``interval`` or a column ``units`` lacks.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if interval not in INTERVALS:
        raise GlocalError(f"interval={interval!r}: choose from {sorted(INTERVALS)}")
    missing = [c for c in (x, y, hue, *(clusters or []), *([weights] if weights else []))
               if c not in units]  # fmt: skip
    if missing:
        raise GlocalError(f"estimate_plot: the table has no column(s) {missing}")
    if ax is None:
        _, ax = plt.subplots(figsize=(COLUMN_WIDTH, 3.2))
    names = list(hue_order) if hue_order is not None else list(dict.fromkeys(units[hue]))
    if clusters is not None:
        from companion.paper.comparisons import summary

        means = summary(units, y, [x], hue, clusters, weights)
        levels = list(order) if order is not None else list(dict.fromkeys(units[x]))
        draw_intervals(ax, means, x, hue, names, levels, numeric_x, log_x,
                     0.12 if dodge is True else float(dodge), join)  # fmt: skip
        relabel_legend(ax)
        return ax
    if len(names) < 2:
        dodge = False  # nothing to shift apart (and seaborn divides by the levels − 1)
    elif dodge is True:
        dodge = 0.08 if numeric_x else 0.12 * len(names)
    sns.pointplot(
        data=units,
        x=x,
        y=y,
        hue=hue,
        order=order,
        hue_order=names,
        estimator="mean",
        errorbar=INTERVALS[interval],
        palette=palette(names),
        markers=[marker(n) for n in names],
        linestyles="-" if join else "none",
        markersize=4.5,
        linewidth=1.4,
        capsize=0.08 if not numeric_x else 0.04,
        err_kws={"linewidth": 1.2},
        dodge=dodge,
        native_scale=numeric_x,
        log_scale=(True, False) if log_x else None,
        ax=ax,
    )
    relabel_legend(ax)
    return ax


def draw_intervals(
    ax: Any,
    means: pd.DataFrame,
    x: str,
    hue: str,
    names: Sequence[str],
    levels: Sequence[Any],
    numeric_x: bool = False,
    log_x: bool = False,
    dodge: float = 0.12,
    join: bool = False,
) -> None:
    """Points with error bars from a table that holds its intervals already: ``mean``,
    ``ci_low``, ``ci_high`` per ``x`` and ``hue`` (e.g.
    :func:`companion.paper.comparisons.summary`); categorical ``x`` at 0, 1, ... (``levels``),
    the ``names`` of ``hue`` shifted apart by ``dodge``, each in its colour and marker."""
    for i, name in enumerate(names):
        part = means[means[hue] == name]
        part = part.set_index(x).reindex(list(levels)).dropna(subset=["mean"]).reset_index()
        if part.empty:
            continue
        shift = (i - (len(names) - 1) / 2) * (dodge / max(len(names) - 1, 1))
        if numeric_x:
            xs = part[x].to_numpy(float) * (1 + shift) if log_x else part[x] + shift
        else:
            xs = np.array([levels.index(v) for v in part[x]]) + shift
        yerr = error_bars(part.rename(columns={"ci_low": "mean_low", "ci_high": "mean_high"}),
                          "mean")  # fmt: skip
        ax.errorbar(xs, part["mean"], yerr=yerr, fmt=marker(name) + ("-" if join else ""),
                    ms=4.5, lw=1.4, capsize=3, color=color(name), label=name)  # fmt: skip
    if log_x:
        ax.set_xscale("log")
    if not numeric_x:
        ax.set_xticks(range(len(levels)), [str(v) for v in levels])
        ax.set_xlim(-0.5, len(levels) - 0.5)


def paired_difference_plot(
    units: pd.DataFrame,
    x: str,
    y: str,
    unit: str | Sequence[str],
    baseline: str = "original",
    hue: str = "representation",
    clusters: Sequence[str] | None = None,
    weights: str | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`estimate_plot` of the unit-by-unit differences to ``baseline``
    (:func:`companion.paper.crossfit.unit_differences`), with a line at 0 (no difference).

    With ``clusters`` the intervals are cluster-robust over those columns' units (as
    :func:`companion.paper.comparisons.paired_summary`); ``weights`` names a column weighing the
    rows. Keyword arguments go to :func:`estimate_plot` (``ax``, ``numeric_x``, ``log_x``,
    ...); the legend says what is subtracted. Returns the axes.
    """
    from companion.paper.comparisons import unit_differences

    keys = list(dict.fromkeys([x, *([unit] if isinstance(unit, str) else unit),
                               *(clusters or [])]))  # fmt: skip
    diffs = unit_differences(units, y, keys, baseline, hue)
    if weights is not None:
        base = units[units[hue] == baseline].set_index(keys)[weights]
        diffs = diffs.join(base, on=keys)
    ax = estimate_plot(diffs, x, y, hue, interval="t", clusters=clusters, weights=weights,
                       **kwargs)  # fmt: skip
    ax.axhline(0.0, color="black", lw=0.8, zorder=0)
    handles, names = ax.get_legend_handles_labels()
    if handles:
        # estimate_plot renamed the artists to display names; LABELS maps both forms alike
        shown = [f"{label(n)} − {label(baseline)}" for n in names]
        _rename_handles(handles, shown)
        ax.legend(handles, shown)
    return ax


def interval_plot(
    table: pd.DataFrame,
    x: str,
    y: str,
    low: str,
    high: str,
    hue: str = "representation",
    *,
    ax: Any = None,
    dodge: float = 0.0,
    log_x: bool = False,
    join: bool = True,
) -> Any:
    """A table's estimates with the intervals it already holds (``low``, ``high`` columns).

    For tables whose intervals were computed elsewhere (e.g. Wilson intervals of
    ``alignment_table``, the sweeps of :mod:`companion.paper.sweeps`): one line of points per
    ``hue`` value over a numeric ``x``, shifted by ``dodge`` (a fraction of x, multiplicative
    on a log axis) so that the intervals stay visible. Returns the axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(COLUMN_WIDTH, 3.2))
    names = list(dict.fromkeys(table[hue]))
    for i, name in enumerate(names):
        part = table[table[hue] == name].sort_values(x)
        shift = (i - (len(names) - 1) / 2) * dodge
        xs = part[x] * (1 + shift) if log_x else part[x] + shift
        yerr = error_bars(part.rename(columns={low: f"{y}_low", high: f"{y}_high"}), y)
        ax.errorbar(
            xs,
            part[y],
            yerr=yerr,
            fmt=marker(name) + ("-" if join else ""),
            ms=4.5,
            lw=1.4,
            capsize=3,
            color=color(name),
            label=label(name),
        )
    if log_x:
        ax.set_xscale("log")
    return ax


def legend_entries(axes: Iterable[Any]) -> dict[str, Any]:
    """``{name: artist}`` of the legends of ``axes``, each name once (its first artist): the
    entries of one legend for a figure whose panels repeat the same names."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(name, handle)
    return entries


def grouped_errorbars(
    ax: Any,
    table: pd.DataFrame,
    levels: Sequence[Any],
    names: Sequence[str],
    value: str,
    low: str,
    high: str,
    x: str = "dataset",
    hue: str = "representation",
) -> None:
    """Estimates with error bars per categorical ``x`` (at 0, 1, ... in the order of
    ``levels``) and ``hue`` (the ``names``, side by side within 0.8 of each level, each in its
    colour and marker), from a table that holds the interval already (``low``, ``high``).
    Every (level, name) needs one row."""
    step = 0.8 / len(names)
    for i, name in enumerate(names):
        points = table[table[hue] == name].set_index(x).loc[list(levels)]
        xs = np.arange(len(levels)) + (i - (len(names) - 1) / 2) * step
        ax.errorbar(
            xs,
            points[value],
            yerr=[points[value] - points[low], points[high] - points[value]],
            fmt=marker(name),
            ms=6,
            lw=1.3,
            color=color(name),
            label=label(name),
        )


# --- page 2: the alpha trade-off ----------------------------------------------------------------

#: The second curve of page 2 (lambda chosen per alpha) in a colour apart from gLocal's.
PER_ALPHA_COLOR = "#56b4e9"


def alpha_tradeoff_figure(
    curves: pd.DataFrame, references: pd.DataFrame, k: int, shots: int, task: str
) -> Any:
    """Page 2's four panels over alpha: alignment, local structure, few-shot, anomaly AUROC.

    ``curves`` holds one row per (``lmbda_rule``, ``alpha``) with the measures of
    :func:`companion.paper.sweeps.summarize_units` (``m``, ``m_low``, ``m_high``) and
    ``kept start``; the ``fixed`` rule (lambda held at page 1's value) is the main curve,
    ``per-alpha`` (lambda chosen at every alpha) the second. ``references`` is indexed by
    representation and holds the ``naive`` and ``original`` rows, drawn as lines with their
    intervals as bands. A fit
    that kept its start is drawn hollow.
    """
    import matplotlib.pyplot as plt

    alphas = sorted(curves["alpha"].unique())
    position = {a: i for i, a in enumerate(alphas)}
    ticks = [f"{a:g}" + ("\n(global)" if a == 0 else "") for a in alphas]
    styles = {"fixed": (color("glocal"), "gLocal, λ fixed"),
              "per-alpha": (PER_ALPHA_COLOR, "gLocal, λ chosen per α")}  # fmt: skip
    panels = [
        ("alignment", "(a) alignment", "odd-one-out accuracy"),
        ("overlap", "(b) local structure", f"{k}-NN overlap with original"),
        ("few_shot", f"(c) {shots}-shot accuracy", f"accuracy ({task})"),
        ("auroc", "(d) anomaly detection", f"mean AUROC ({task})"),
    ]

    def draw(ax: Any, rule: str, column: str, fmt: str, text: str) -> None:
        line = curves[curves["lmbda_rule"] == rule].sort_values("alpha")
        if line.empty:
            return
        tint, name = styles[rule]
        x = line["alpha"].map(position).to_numpy()
        errorbar_kept_hollow(ax, x, line[column], error_bars(line, column),
                             line["kept start"] != "yes", fmt, tint, f"{name}{text}")  # fmt: skip

    def band(ax: Any, name: str, column: str, text: str, ls: str = "--") -> None:
        row = references.loc[name]
        ax.axhline(row[column], color=color(name), ls=ls, lw=1.2, label=text)
        ax.axhspan(row[f"{column}_low"], row[f"{column}_high"], color=color(name), alpha=0.12,
                   lw=0)  # fmt: skip

    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 7.4), sharex=True)
    for ax, (column, title, ylabel) in zip(axes.flat, panels, strict=True):
        for rule, fmt in (("per-alpha", "s:"), ("fixed", "o-")):
            if column == "overlap":
                draw(ax, rule, "overlap_things", fmt, ": held-out concepts")
                draw(ax, rule, "overlap_contrast", fmt[0] + "--", ": held-out contrast items")
            else:
                draw(ax, rule, column, fmt, "")
        if column == "overlap":
            band(ax, "naive", "overlap_things", "naive: held-out concepts")
            band(ax, "naive", "overlap_contrast", "naive: held-out contrast items", ls=":")
        else:
            band(ax, "naive", column, "naive")
            band(ax, "original", column, "original (zero-shot)", ls=":")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_xticks(range(len(alphas)), ticks)
    for ax in axes[1]:
        ax.set_xlabel("α (weight of the local term)")
    entries = legend_entries(axes.flat)  # one legend for all panels
    fig.legend(entries.values(), entries.keys(), loc="lower center", ncol=2,
               bbox_to_anchor=(0.5, -0.01), fontsize=8.5)  # fmt: skip
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


# --- page 6: anomaly detection ------------------------------------------------------------------


def anomaly_figure(per_class: pd.DataFrame, tasks: Sequence[str], margin: float) -> Any:
    """Page 6's two panels: (a) mean AUROC per task and protocol, (b) the paired differences
    to the original features, with 95% intervals over categories and the margin dotted.

    ``per_class`` holds one row per (fold, repeat, category, protocol, representation), as
    :func:`companion.paper.crossfit.anomaly_splits` returns it (``class`` renamed ``category``).
    """
    import matplotlib.pyplot as plt

    protocols = list(dict.fromkeys(per_class["protocol"]))

    def name(task: str, protocol: str) -> str:  # "fine\nnear": short enough to sit side by side
        return f"{task.removeprefix('things-')}\n{protocol}"

    where = per_class.assign(
        where=[name(t, p) for t, p in zip(per_class["task"], per_class["protocol"], strict=True)]
    )
    order = [name(t, p) for t in tasks for p in protocols if name(t, p) in set(where["where"])]
    fig, (ax_m, ax_d) = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.8))
    estimate_plot(where, "where", "auroc", ax=ax_m, order=order, join=False,
                  clusters=["category"])  # fmt: skip
    ax_m.set_ylabel("mean AUROC over classes")
    ax_m.set_title("(a) mean AUROC")
    paired_difference_plot(where, "where", "auroc", ["fold", "repeat", "category"], ax=ax_d,
                           order=order, join=False, clusters=["category"])  # fmt: skip
    for sign in (-1, 1):
        ax_d.axhline(sign * margin, color="grey", ls=":", lw=0.8)
    ax_d.set_ylabel("AUROC difference (transform − original)")
    ax_d.set_title("(b) paired, class by class")
    for ax in (ax_m, ax_d):
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1 if ax is ax_d else 3)
    fig.tight_layout()
    return fig


# --- page 10: other human similarity data -------------------------------------------------------


def judgement_alignment_figure(
    table: pd.DataFrame,
    sources: Sequence[str],
    kernels: Sequence[str],
    datasets: Sequence[str],
    representations: Sequence[str],
    method: str,
    ticks: Sequence[str],
    tick_style: Mapping[str, Any],
    many: bool,
    same_kernels: bool,
) -> Any:
    """Page 10's grouped panels: per feature source (rows, the ``source`` labels of ``table``)
    and kernel (columns), each data set's correlation with the human judgements (``rho``,
    ``ci_low``, ``ci_high``) per representation, over the band of its noise ceiling
    (``ceiling_low`` to ``ceiling_high``, where finite); one legend for all panels.

    ``ticks`` and ``tick_style`` label the data sets (``many``: more than fit on two-line
    ticks, so the panels are taller); ``same_kernels`` says that the one kernel shown stands
    for the Pearson kernel too.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(sources),
        len(kernels),
        figsize=(COLUMN_WIDTH if len(kernels) > 1 else 0.7 * COLUMN_WIDTH,
                 (3.4 if many else 2.8) * len(sources) + 0.9),
        sharey=True,
        squeeze=False,
    )  # fmt: skip
    for r, source in enumerate(sources):
        for c, kernel in enumerate(kernels):
            ax = axes[r, c]
            sub = table[(table["source"] == source) & (table["kernel"] == kernel)]
            ceiling = sub.drop_duplicates("dataset").set_index("dataset").loc[list(datasets)]
            for j, (low, high) in enumerate(
                zip(ceiling["ceiling_low"], ceiling["ceiling_high"], strict=True)
            ):
                if np.isfinite(low):
                    ax.fill_between(
                        [j - 0.45, j + 0.45],
                        low,
                        high,
                        color=color("ceiling"),
                        alpha=0.18,
                        lw=0,
                        label="noise ceiling (lower–upper)",
                    )
            grouped_errorbars(ax, sub, datasets, representations, "rho", "ci_low", "ci_high")
            low, high = ax.get_ylim()
            if low < 0 < high:
                ax.axhline(0.0, color="black", lw=0.6)
            ax.set_xticks(np.arange(len(datasets)), ticks, **tick_style)
            ax.set_xlim(-0.5, len(datasets) - 0.5)
            ax.grid(axis="x", visible=False)
            title = f"{kernel} kernel" + (" (= Pearson kernel)" if same_kernels else "")
            ax.set_title(title if len(sources) == 1 else f"{source}\n{title}", fontsize=9)
        axes[r, 0].set_ylabel(f"{method.capitalize()} correlation\nwith human judgements")
    entries = legend_entries(axes.flat)
    fig.legend(
        entries.values(),
        entries.keys(),
        loc="lower center",
        ncol=min(len(entries), 5 if len(kernels) > 1 else 3),
        bbox_to_anchor=(0.5, -0.02),
    )
    fig.tight_layout(rect=(0, (0.07 if len(kernels) > 1 else 0.12) if len(sources) == 1
                             else 0.03, 1, 1))  # fmt: skip
    return fig


def judgement_alpha_figure(
    table: pd.DataFrame,
    kernels: Sequence[str],
    datasets: Sequence[str],
    method: str,
    same_kernels: bool,
) -> Any:
    """Page 10's alpha curves: per kernel (panels), each data set's correlation with the human
    judgements (``rho``, ``ci_low``, ``ci_high``) at every alpha of a sweep table
    (:func:`companion.paper.judgements.sweep_table`; alpha 0 is the global transform), over a
    dotted line at the original features' correlation; one legend for all panels."""
    import matplotlib.pyplot as plt

    curve = table.dropna(subset=["alpha"])
    alphas = sorted(curve["alpha"].unique())
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(kernels), sharey=True, squeeze=False,
                             figsize=(COLUMN_WIDTH if len(kernels) > 1 else 0.7 * COLUMN_WIDTH,
                                      3.4))  # fmt: skip
    for ax, kernel in zip(axes[0], kernels, strict=False):
        for d, dataset in enumerate(datasets):
            here = (curve["kernel"] == kernel) & (curve["dataset"] == dataset)
            points = curve[here].sort_values("alpha")
            x = np.arange(len(points)) + (d - (len(datasets) - 1) / 2) * 0.06
            ax.errorbar(x, points["rho"],
                        yerr=[points["rho"] - points["ci_low"], points["ci_high"] - points["rho"]],
                        fmt="o-", ms=5, color=cmap(d % 10), label=dataset)  # fmt: skip
            original = table[(table["representation"] == "original")
                             & (table["kernel"] == kernel)
                             & (table["dataset"] == dataset)]["rho"].iloc[0]  # fmt: skip
            ax.axhline(original, color=cmap(d % 10), ls=":", lw=1.1)
        ax.set_xticks(np.arange(len(alphas)),
                      [f"{a:g}" + ("\n(global)" if a == 0 else "") for a in alphas])  # fmt: skip
        ax.set_xlabel("α (weight of the local term)")
        ax.set_title(f"{kernel} kernel" + (" (= Pearson kernel)" if same_kernels else ""))
    axes[0, 0].set_ylabel(f"{method.capitalize()} correlation\nwith human judgements")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 3),
               bbox_to_anchor=(0.5, -0.02), fontsize=8)  # fmt: skip
    fig.tight_layout(rect=(0, 0.08 + 0.03 * ((len(names) - 1) // 3), 1, 1))
    return fig


def vector_means_figure(means: pd.DataFrame, sources: Sequence[str],
                        representations: Sequence[str]) -> Any:  # fmt: skip
    """Page 10's kernel figure when the kernels agree: per feature source (rows, the
    ``source`` labels of ``means``), every item's mean over root mean square (``m``) in each
    representation, as jittered points (:func:`companion.paper.judgements.vector_means`)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(len(sources), 1, squeeze=False,
                             figsize=(0.7 * COLUMN_WIDTH, 2.8 * len(sources) + 0.3))  # fmt: skip
    for r, source in enumerate(sources):
        ax = axes[r, 0]
        with seeded_jitter():
            sns.stripplot(data=means[means["source"] == source], x="representation", y="m",
                          hue="representation", order=representations,
                          hue_order=representations,
                          palette={n: color(n) for n in representations}, size=2.2,
                          alpha=0.45, jitter=0.3, legend=False, ax=ax)  # fmt: skip
        ax.axhline(0.0, color="black", lw=0.7)
        ax.set_xticks(range(len(representations)), [label(n) for n in representations])
        ax.set_xlabel("")
        ax.set_ylabel("mean / RMS of an\nitem's vector (m)")
        if len(sources) > 1:
            ax.set_title(source, fontsize=9)
    fig.tight_layout()
    return fig


def kernel_difference_figure(
    table: pd.DataFrame,
    sources: Sequence[str],
    datasets: Sequence[str],
    representations: Sequence[str],
    ticks: Sequence[str],
    tick_style: Mapping[str, Any],
    many: bool,
    margin: float,
) -> Any:
    """Page 10's kernel figure when the kernels differ: per feature source (rows), each data
    set's Pearson-kernel minus cosine-kernel correlation per representation (``vs_cosine``,
    with its interval) over a grey band of +- ``margin``."""
    import matplotlib.pyplot as plt

    height = (3.0 if many else 2.6) * len(sources) + 0.8
    fig, axes = plt.subplots(len(sources), 1, figsize=(COLUMN_WIDTH, height), squeeze=False)
    for r, source in enumerate(sources):
        ax = axes[r, 0]
        grouped_errorbars(ax, table[table["source"] == source], datasets, representations,
                          "vs_cosine", "vs_cosine_low", "vs_cosine_high")  # fmt: skip
        ax.axhline(0.0, color="black", lw=0.7)
        ax.axhspan(-margin, margin, color="0.85", alpha=0.5, lw=0,
                   label=f"±{margin:g}: too small to matter")  # fmt: skip
        ax.set_xticks(np.arange(len(datasets)), ticks, **tick_style)
        ax.set_xlim(-0.5, len(datasets) - 0.5)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("Pearson kernel\n− cosine kernel")
        if len(sources) > 1:
            ax.set_title(source, fontsize=9)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.16 if len(sources) == 1 else 0.06, 1, 1))
    return fig


def few_shot_figure(class_rows: pd.DataFrame, shots: Sequence[int],
                    margin: float | None = None) -> Any:  # fmt: skip
    """Page 5's panels, one per task and classifier of ``class_rows`` (per-class few-shot rows
    with ``category`` and ``n_test``): accuracy over the number of shots per representation,
    with intervals over categories; with ``margin``, each representation's paired difference to
    the original features (paired on fold, repeat and category) between lines at +- margin."""
    import matplotlib.pyplot as plt

    panels = list(class_rows.groupby(["task", "classifier"], sort=False))
    differences = margin is not None
    fig, axes = plt.subplots(1, len(panels), figsize=(COLUMN_WIDTH, 3.1 if differences else 3.3),
                             squeeze=False, sharey=differences)  # fmt: skip
    handles: list[Any] = []
    names: list[str] = []
    for ax, ((task, classifier), part) in zip(axes[0], panels, strict=False):
        common = {"numeric_x": True, "log_x": len(shots) > 2, "ax": ax,
                  "clusters": ["category"], "weights": "n_test"}  # fmt: skip
        if margin is not None:
            paired_difference_plot(part, "shots", "accuracy", ["fold", "repeat", "category"],
                                   **common)  # fmt: skip
            for sign in (-1, 1):
                ax.axhline(sign * margin, color="grey", ls=":", lw=0.8)
        else:
            estimate_plot(part, "shots", "accuracy", **common)
        ax.set_xticks(shots, [str(s) for s in shots])
        ax.minorticks_off()
        ax.set_xlabel("examples per class")
        first = ax is axes[0][0]
        ylabel = "accuracy difference\n(transform − original)" if differences else "accuracy"
        ax.set_ylabel(ylabel if first else "")
        ax.set_title(f"{task} ({classifier})", fontsize=9.5)
        if differences:
            handles, names = ax.get_legend_handles_labels()
        ax.get_legend().remove()
    if differences:
        fig.legend(handles, names, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.01))
    else:
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, [label(n) for n in names], loc="lower center", ncol=4,
                   bbox_to_anchor=(0.5, -0.01))  # fmt: skip
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def sorted_similarity_figure(structure: Any, summary: pd.DataFrame, n_items: int) -> Any:
    """Page 4's similarity matrices sorted by category (three panels, white lines between
    the categories, the tall ones named on the left) and a fourth panel with the colour scale
    and each space's block contrast and RSA with the human embedding (``summary``'s columns
    ``space``, ``block_contrast``, ``rsa_with_human``)."""
    import matplotlib.pyplot as plt

    spans = structure.spans
    contrast_of = summary.set_index("space")["block_contrast"]
    rsa_of = summary.set_index("space")["rsa_with_human"]
    # Label the categories tall enough to read, no two labels closer than a line of text.
    gap, kept, last = 0.045 * n_items, [], -np.inf
    for row in spans.itertuples():
        middle_row = (row.start + row.stop - 1) / 2
        if row.stop - row.start >= 4 and middle_row - last >= gap:
            kept.append(row.Index)
            last = middle_row
    named = spans.loc[kept]
    middle = (named["start"] + named["stop"] - 1) / 2
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 6.7))
    fig.subplots_adjust(left=0.24, right=0.98, top=0.95, bottom=0.03, wspace=0.06, hspace=0.16)
    for ax, (name, matrix), letter in zip(axes.flat, structure.matrices.items(), "abc",
                                          strict=False):  # fmt: skip
        image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        for stop in spans["stop"].to_numpy()[:-1]:
            ax.axhline(stop - 0.5, color="white", lw=0.5)
            ax.axvline(stop - 0.5, color="white", lw=0.5)
        ax.set_title(f"({letter}) {label(name)}", fontsize=10)
        ax.set_xticks([])
        left = ax in axes[:, 0]
        ax.set_yticks(middle if left else [], named["category"] if left else [], fontsize=9)
        ax.grid(False)
    key = axes[1, 1]  # the fourth panel holds the colour scale and the numbers
    key.axis("off")
    bar = key.inset_axes([0.08, 0.78, 0.84, 0.07])
    scale = "similarity rank within the matrix\n(0 = least, 1 = most similar pair)"
    fig.colorbar(image, cax=bar, orientation="horizontal", label=scale)
    lines = [f"{'space':<13}{'block contrast':>15}{'RSA w. human':>14}"]
    lines += [f"{label(n):<13}{contrast_of[label(n)]:>15.2f}{rsa_of[label(n)]:>14.3f}"
              for n in structure.matrices]  # fmt: skip
    lines += ["", "95% intervals: the table above"]
    key.text(0.0, 0.45, "\n".join(lines), family="monospace", fontsize=8.5, va="top",
             transform=key.transAxes)  # fmt: skip
    return fig


def pca_figure(structure: Any, top: Sequence[str]) -> tuple[Any, pd.DataFrame]:
    """Page 4's first two principal components of each space (three panels), the items of the
    ``top`` categories in their colours and the rest grey, the legend in the fourth panel.
    Returns the figure and the plotted table (``structure.pca`` with the column ``shown``)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    colours = [c for i, c in enumerate(sns.color_palette("colorblind")) if i != 7]  # no grey
    pca = structure.pca.assign(
        shown=lambda t: t["category"].where(t["category"].isin(top), "other categories")
    )
    hue_palette = {**dict(zip(top, colours, strict=False)), "other categories": "lightgrey"}
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 6.8))
    for ax, name, letter in zip(axes.flat, structure.matrices, "abc", strict=False):
        part = pca[pca["space"] == name]
        sns.scatterplot(data=part.sort_values("shown", key=lambda c: c != "other categories"),
                        x="pc1", y="pc2", hue="shown", hue_order=[*top, "other categories"],
                        palette=hue_palette, s=14, linewidth=0, legend=letter == "a",
                        ax=ax)  # fmt: skip
        shares = part[["explained_pc1", "explained_pc2"]].iloc[0]
        ax.set_title(f"({letter}) {label(name)}")
        ax.set_xlabel(f"PC1 ({shares.iloc[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({shares.iloc[1]:.0%})")
        ax.grid(True, axis="both")
    handles, names = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].get_legend().remove()
    axes[1, 1].axis("off")
    axes[1, 1].legend(handles, names, loc="center", markerscale=1.6, fontsize=9.5,
                      title="THINGS category")  # fmt: skip
    fig.tight_layout()
    return fig, pca


def overlap_figure(items_table: pd.DataFrame, overlap: pd.DataFrame, sets: Sequence[str],
                   names: Sequence[str], ks: Sequence[int]) -> Any:  # fmt: skip
    """Page 3's panels, one per item set (``sets``, column ``items``): the share of each item's
    k nearest neighbours a transform (``names``) keeps, over k (``items_table``: one row per
    item, k and transform), with the share a random map keeps (``overlap``'s ``random`` and
    ``n_items``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sets), figsize=(COLUMN_WIDTH, 3.4), sharey=True,
                             squeeze=False)  # fmt: skip
    for ax, items in zip(axes[0], sets, strict=False):
        part = items_table[items_table["items"] == items]
        estimate_plot(part, "k", "overlap", "transform", numeric_x=True, log_x=True,
                      hue_order=list(names), ax=ax)  # fmt: skip
        mine = overlap[overlap["items"] == items]
        base = mine.groupby("k")["random"].first()
        ax.plot(base.index, base.values, color="black", ls=":", lw=1.2, label="random: k / (n − 1)")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_ylim(0, 1.0)
        ax.set_xlabel("k (nearest neighbours)")
        ax.set_ylabel("fraction of k-NN kept")
        ax.set_title(f"{items} (n = {int(mine['n_items'].iloc[0]):,})")
        ax.get_legend().remove()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, [label(n) for n in labels], loc="lower center", ncol=4,
               bbox_to_anchor=(0.5, -0.01))  # fmt: skip
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def spectra_figure(spectra: pd.DataFrame) -> Any:
    """Page 7's singular-value spectra, one panel per released transform (``model``,
    ``module``): sigma / beta over rank / p (``fraction``, ``over_beta``), the others in grey."""
    import textwrap

    import matplotlib.pyplot as plt
    import seaborn as sns

    groups = list(spectra.groupby(["model", "module"], sort=False))
    n_cols = 3
    n_rows = -(-len(groups) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(COLUMN_WIDTH, 2.3 * n_rows + 0.4),
                             sharex=True, sharey=True, squeeze=False)  # fmt: skip
    colours = sns.color_palette("colorblind", len(groups))
    for i, (ax, ((model, module), part)) in enumerate(zip(axes.flat, groups, strict=False)):
        for _, other in groups:  # every other spectrum in grey, for comparison
            ax.plot(other["fraction"], other["over_beta"], color="0.82", lw=0.8)
        ax.plot(part["fraction"], part["over_beta"], color=colours[i], lw=1.8)
        ax.axhline(1.0, color="black", lw=0.7, ls="--")
        # long names break at their underscores, so that neighbouring titles do not overlap
        title = "\n".join(textwrap.wrap(str(model).replace("_", "_ "), 26)).replace("_ ", "_")
        ax.set_title(f"{title}\n/ {module}", fontsize=8)
        ax.grid(True, axis="both", alpha=0.3)
    for ax in axes.flat[len(groups) :]:
        ax.axis("off")
    axes[0, 0].set_yscale("log")
    axes[0, 0].set_yticks([0.2, 0.5, 1, 2, 5], ["0.2", "0.5", "1", "2", "5"])
    axes[0, 0].minorticks_off()
    for ax in axes[-1]:
        ax.set_xlabel("rank / p")
    for ax in axes[:, 0]:
        ax.set_ylabel("σ / β")
    fig.tight_layout()
    return fig


def distance_bias_figure(shown: pd.DataFrame) -> Any:
    """Page 7's bars per released transform: its relative distance from a scaled identity
    (``rel_dist_scaled_identity``) and its root-mean-square bias entry
    (``bias_norm_per_sqrt_p``; no bias drawn as 0)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    order = shown.sort_values("rel_dist_scaled_identity")
    names = [f"{m} / {mod}" for m, mod in zip(order["model"], order["module"], strict=True)]
    bars = order.assign(transform=names).melt(
        id_vars="transform", value_vars=["rel_dist_scaled_identity", "bias_norm_per_sqrt_p"],
        var_name="measure",
    ).fillna({"value": 0.0})  # fmt: skip
    measures = {
        "rel_dist_scaled_identity": "‖W − βI‖_F / ‖W‖_F",
        "bias_norm_per_sqrt_p": "rms bias entry ‖b‖ / √p (0 = no bias)",
    }
    bars["measure"] = bars["measure"].map(measures)
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 0.42 * len(order) + 1.4))
    sns.barplot(data=bars, y="transform", x="value", hue="measure",
                palette=sns.color_palette("colorblind", 2), orient="h", ax=ax)  # fmt: skip
    ax.set_ylabel("")
    ax.set_xlabel("value (no unit)")
    ax.tick_params(axis="y", labelsize=8.5)
    ax.grid(axis="x")
    ax.grid(axis="y", visible=False)
    ax.legend(title=None, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    fig.tight_layout()
    return fig


def data_efficiency_figure(
    curve: pd.DataFrame,
    kinds: Sequence[str],
    panels: Sequence[tuple[str, str, str]],
    ceiling: float,
    ceiling_label: str,
) -> Any:
    """Page 8's four panels (``panels``: column, title, y label) over the number of training
    triplets, one line per transform kind (a fit that kept its start hollow), with the original
    features' value (and interval) and, for alignment, the zero-shot line and the ceiling."""
    import matplotlib.pyplot as plt

    original = curve[curve["representation"] == "original"].iloc[0]
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 6.2), sharex=True)
    for ax, (column, title, ylabel) in zip(axes.flat, panels, strict=False):
        for name in kinds:
            line = curve[curve["representation"] == name]
            kept = line["stopped_by"] == "no_improvement"
            errorbar_kept_hollow(ax, line["n_train"], line[column], error_bars(line, column),
                                 ~kept, marker(name) + "-", color(name), label(name))  # fmt: skip
        if column == "alignment":
            ax.axhline(original[column], color=color("original"), ls=":", lw=1.2,
                       label="zero-shot (original)")  # fmt: skip
            ax.axhline(ceiling, color=color("ceiling"), ls="--", lw=1.2,
                       label=f"ceiling ({ceiling_label})")  # fmt: skip
        elif column != "overlap_things":
            ax.axhline(original[column], color=color("original"), ls=":", lw=1.2,
                       label="original")  # fmt: skip
            ax.axhspan(original[f"{column}_low"], original[f"{column}_high"],
                       color=color("original"), alpha=0.12, lw=0)  # fmt: skip
        if column == "overlap_things":  # a share of neighbours: its whole range, 1 = all kept
            ax.set_ylim(0.0, 1.05)
        else:
            ensure_span(ax, 0.05 if column == "auroc" else 0.1)
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="x", which="major", alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("training triplets")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def simulation_figure(
    results: pd.DataFrame,
    metrics: Sequence[tuple[str, str]],
    scenarios: Sequence[str],
    transforms: Sequence[str],
    n_seeds: int,
) -> Any:
    """Page 9's four panels (``metrics``: metric, title), bars per transform and world (greys:
    worlds are not representations), with a t-interval over seeds and the seeds as dots when
    there are several; held-out accuracy also shows each world's generator and chance."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Patch

    worlds_palette = dict(zip(scenarios, ["#4d4d4d", "#b3b3b3", "#808080"], strict=False))
    order = [label(t) for t in transforms]
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 6.4), sharex=True)
    for ax, (metric, title) in zip(axes.flat, metrics, strict=False):
        part = results[results["metric"] == metric].assign(
            transform=lambda t: t["transform"].map(label)
        )
        sns.barplot(data=part, x="transform", y="value", hue="scenario", order=order,
                    hue_order=list(scenarios), palette=worlds_palette,
                    errorbar=INTERVALS["t"] if n_seeds > 1 else None, capsize=0.15,
                    err_kws={"linewidth": 1, "color": "black"}, legend=False, ax=ax)  # fmt: skip
        if n_seeds > 1:
            with seeded_jitter():
                sns.stripplot(data=part, x="transform", y="value", hue="scenario", order=order,
                              hue_order=list(scenarios), dodge=True,
                              palette={n: "black" for n in scenarios}, size=2.5, legend=False,
                              ax=ax)  # fmt: skip
        if metric == "heldout_accuracy":
            for scenario in scenarios:
                mine = (results["scenario"] == scenario) & (
                    results["metric"] == "generator_accuracy"
                )
                ax.axhline(results[mine]["value"].mean(), color=worlds_palette[scenario],
                           ls="--", lw=1)  # fmt: skip
            ax.axhline(1 / 3, color="grey", ls=":", lw=0.8)
        ax.grid(axis="x", visible=False)
        ax.set_ylim(0, 1.05)
        ax.set_title(title, fontsize=9.5)
        ax.set_xlabel("")
        ax.set_ylabel("")
    legend = [Patch(facecolor=worlds_palette[n], label=f"{n} world") for n in scenarios]
    fig.legend(handles=legend, loc="lower center", ncol=len(scenarios), bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def subclass_pca_figure(
    run: Any, transforms: Sequence[str], inside: np.ndarray
) -> tuple[Any, pd.DataFrame]:
    """Page 9's four panels: the first two principal components of the probe items ``inside``
    one category, per transform of ``run`` (None: the original features), coloured by
    subclass. Returns the figure and its points (transform, subclass, pc1, pc2)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from glocal.evaluation.structure import pca_2d

    world = run.world
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 6.6))
    points = []
    for ax, name in zip(axes.flat, transforms, strict=False):
        transform = run.fitted[name]
        Z = world.probe[inside] if transform is None else transform.transform(world.probe[inside])
        Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)  # the tasks use cosine similarity
        coords, explained = pca_2d(Z)
        sub = world.probe_subclass[inside]
        part = pd.DataFrame({"transform": name, "subclass": sub - sub.min(),
                             "pc1": coords[:, 0], "pc2": coords[:, 1]})  # fmt: skip
        sns.scatterplot(data=part, x="pc1", y="pc2", hue="subclass", palette="colorblind", s=16,
                        linewidth=0, legend=name == transforms[0], ax=ax)  # fmt: skip
        ax.set_title(f"{label(name)} (PC1 + PC2: {explained.sum():.0%} of variance)", fontsize=9.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.grid(False)
        points.append(part)
    handles, names = axes.flat[0].get_legend_handles_labels()
    axes.flat[0].get_legend().remove()
    fig.legend(handles, names, title="subclass (within category 0)", loc="lower center",
               ncol=len(names), bbox_to_anchor=(0.5, -0.01))  # fmt: skip
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig, pd.concat(points, ignore_index=True)
