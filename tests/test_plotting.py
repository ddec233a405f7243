"""Notebook outputs: PNG + SVG figures and CSV tables, written atomically and reproducibly."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from companion.paper import plotting  # noqa: E402
from glocal.errors import GlocalError  # noqa: E402


def _figure():
    plotting.use_style()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [0.4, 0.5, 0.6], color=plotting.color("glocal"), label="gLocal")
    plotting.reference_line(ax, 1 / 3, "chance")
    ax.legend()
    return fig


def test_save_figure_writes_png_and_svg_without_leftovers(tmp_path):
    fig = _figure()
    paths = plotting.save_figure(fig, tmp_path / "results", "curve")
    assert [p.name for p in paths] == ["curve.png", "curve.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:400]
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["curve.png", "curve.svg"]
    first = paths[1].read_bytes()
    plotting.save_figure(fig, tmp_path / "results", "curve")
    assert paths[1].read_bytes() == first  # no dates or random ids in the SVG
    plt.close(fig)


def test_save_table_round_trips(tmp_path):
    table = pd.DataFrame({"representation": ["naive", "glocal"], "accuracy": [0.5, 0.55]})
    # nothing returned: a cell ending in save_table shows no PosixPath(...)
    assert plotting.save_table(table, tmp_path, "alignment") is None
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "alignment.csv"), table)
    assert [p.name for p in tmp_path.iterdir()] == ["alignment.csv"]


def test_bad_names_and_tables_are_refused(tmp_path):
    with pytest.raises(GlocalError, match="plain file stem"):
        plotting.save_table(pd.DataFrame({"a": [1]}), tmp_path, "../escape")
    with pytest.raises(GlocalError, match="DataFrame"):
        plotting.save_table([1, 2], tmp_path, "list")  # type: ignore[arg-type]


def test_a_drawn_figure_has_the_books_sizes_not_seaborns():
    import seaborn as sns

    seaborn = sns.plotting_context("notebook")  # what seaborn's theme alone would draw
    plotting.use_style()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="gLocal")
    ax.set(title="title", xlabel="x")
    legend = ax.legend()
    fig.canvas.draw()
    drawn = {
        "axes.titlesize": ax.title.get_fontsize(),
        "axes.labelsize": ax.xaxis.label.get_fontsize(),
        "xtick.labelsize": ax.get_xticklabels()[0].get_fontsize(),
        "legend.fontsize": legend.get_texts()[0].get_fontsize(),
    }
    assert drawn == {name: plotting.STYLE[name] for name in drawn}
    assert all(drawn[name] != seaborn[name] for name in drawn)  # the book's, over seaborn's
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
    assert not legend.get_frame_on() and ax.yaxis.get_gridlines()[0].get_visible()
    assert not ax.xaxis.get_gridlines()[0].get_visible()  # grid on y only
    plt.close(fig)


def test_colours_and_labels():
    assert plotting.color("naive") != plotting.color("glocal")
    assert plotting.color("zero-shot") == plotting.color("original")
    assert plotting.label("glocal") == "gLocal" and plotting.label("other") == "other"


def test_ensure_span_widens_only_narrow_axes():
    fig, ax = plt.subplots()
    ax.set_ylim(0.96, 0.97)
    plotting.ensure_span(ax, 0.05)
    assert ax.get_ylim() == pytest.approx((0.94, 0.99))
    ax.set_ylim(0.0, 1.0)
    plotting.ensure_span(ax, 0.05)
    assert ax.get_ylim() == (0.0, 1.0)
    plt.close(fig)


# --- what the result pages show ---------------------------------------------------------------


def test_show_drops_the_index_and_keeps_integers(capsys):
    from IPython.core.interactiveshell import InteractiveShell  # noqa: F401 (IPython present)

    table = pd.DataFrame(
        {"name": ["a", "b"], "count": [8.0, 50000.0], "value": [0.12345, float("nan")]},
        index=[10, 11],
    )
    shown = []
    import IPython.display

    original = IPython.display.display
    IPython.display.display = lambda obj: shown.append(obj)
    try:
        plotting.show(table, integer_columns=["count"])
    finally:
        IPython.display.display = original
    html = shown[0].data
    assert "<th" in html and ">10<" not in html  # no index column
    assert ">8<" in html and ">50,000<" in html  # integers, not 8.00 / 50000.00
    assert ">0.123<" in html and ">–<" in html  # floats to 3 decimals, NaN as a dash
    assert 'class="num"' in html and "glocal-table" in html


def test_per_item_overlap_averages_to_neighbour_overlap(rng):
    from glocal.evaluation.neighbours import neighbour_overlap, per_item_overlap

    X = rng.normal(size=(60, 5))
    Y = X @ rng.normal(size=(5, 5)) + 0.3 * rng.normal(size=(60, 5))
    per_item = per_item_overlap(X, Y, 7)
    assert per_item.shape == (60,) and per_item.min() >= 0 and per_item.max() <= 1
    assert per_item.mean() == pytest.approx(neighbour_overlap(X, Y, [7])[7])


class _Fit:
    """A stand-in fitted transform: a history of checks every 10 steps and how it ended."""

    def __init__(self, objectives, reason="converged", best=None):
        history = [
            {"step": 10 * i, "loss": v + 0.05, "objective": v, "val_acc": 0.4 + 0.01 * i}
            for i, v in enumerate(objectives)
        ]
        steps = history[-1]["step"]
        self.metadata_ = {
            "experiment": {"history": history, "steps": steps, "best_step": best,
                           "stop_reason": reason}
        }  # fmt: skip
        self._params = {"max_steps": 2000}

    def get_params(self):
        return dict(self._params)


def test_stopping_reads_how_a_fit_ended():
    converged = _Fit([1.0, 0.8, 0.7, 0.7, 0.7, 0.7], best=20)
    row = plotting.stopping(converged)
    assert row == {"steps": 50, "max_steps": 2000, "best_step": 20, "checks": 6,
                   "stopped_by": "converged"}  # fmt: skip
    limit = _Fit([1.0, 0.9], reason="max_steps", best=10)
    assert plotting.stopping(limit)["stopped_by"] == "max_steps"
    table = plotting.stopping_table({"naive": converged, "glocal": limit}, source="s")
    assert list(table["transform"]) == ["naive", "glocal"] and set(table["source"]) == {"s"}


def test_fit_histories_and_their_plot():
    fits = {"naive": _Fit([1.0, 0.8, 0.7]), "glocal": _Fit([1.2, 1.0, 0.9])}
    histories = pd.concat(
        [plotting.fit_histories(fits, source="a"), plotting.fit_histories(fits, source="b")],
        ignore_index=True,
    )
    assert {"step", "loss", "objective", "val_acc", "transform", "source"} <= set(histories)
    assert len(histories) == 12
    fig = plotting.plot_fit_histories(histories, rows="source")
    assert len(fig.axes) == 6  # 2 sources x (training objective, monitored objective, val acc)
    assert fig.get_size_inches()[0] == pytest.approx(plotting.COLUMN_WIDTH)
    plt.close(fig)
    with pytest.raises(GlocalError, match="no loss history"):
        plotting.plot_fit_histories(pd.DataFrame({"step": [1], "transform": ["x"]}))


def test_glue_markdown_stores_markdown_for_the_page(monkeypatch):
    myst_nb = pytest.importorskip("myst_nb")
    stored = {}
    monkeypatch.setattr(
        myst_nb, "glue", lambda name, value, display: stored.update({name: (value, display)})
    )
    plotting.glue_markdown("notes", "- *holds* on **2** tasks")
    value, display = stored["notes"]
    assert display is False
    assert value._repr_markdown_() == "- *holds* on **2** tasks"


def test_glue_figure_saves_and_closes(tmp_path):
    pytest.importorskip("myst_nb")
    fig = _figure()
    assert plotting.glue_figure(fig, tmp_path, "curve") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "curve.svg"]
    assert not plt.fignum_exists(fig.number)


# --- seaborn helpers: intervals by the shared rules, paired differences ------------------------


def _units(rng):
    rows = []
    for x in ("a", "b"):
        for name, shift in (("original", 0.0), ("naive", -0.1), ("glocal", 0.05)):
            for unit in range(12):
                rows.append({"task": x, "representation": name, "episode": unit,
                             "accuracy": 0.5 + shift + 0.05 * rng.normal()})  # fmt: skip
    return pd.DataFrame(rows)


def _drawn_intervals(ax):
    """(x, low, high) of every vertical error bar seaborn drew, sorted by x."""
    import numpy as np

    bars = []
    for line in ax.lines:  # an error bar: caps and the bar, as segments between NaNs
        xs, ys = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        for seg in np.split(np.arange(len(xs)), np.flatnonzero(np.isnan(xs))):
            seg = seg[~np.isnan(xs[seg])]
            if len(seg) == 2 and xs[seg[0]] == xs[seg[1]] and ys[seg[0]] != ys[seg[1]]:
                bars.append((float(xs[seg[0]]), float(ys[seg].min()), float(ys[seg].max())))
    return sorted(bars)


def test_estimate_plot_draws_t_intervals_of_the_units(rng):
    import numpy as np

    from glocal.evaluation.intervals import mean_interval

    units = _units(rng)
    fig, ax = plt.subplots()
    plotting.estimate_plot(
        units, "task", "accuracy", hue_order=["original", "naive", "glocal"], ax=ax
    )
    drawn = _drawn_intervals(ax)
    expected = []
    for name in ("original", "naive", "glocal"):
        for task in ("a", "b"):
            values = units[(units["task"] == task) & (units["representation"] == name)]
            _, low, high, _ = mean_interval(values["accuracy"].to_numpy())
            expected.append((low, high))
    assert len(drawn) == 6
    got = [v for _, lo, hi in sorted(drawn, key=lambda b: b[1]) for v in (lo, hi)]
    assert got == pytest.approx([v for pair in sorted(expected) for v in pair])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["original", "naive", "gLocal"]
    # a legend built again from the axes (a notebook moving it) keeps the display names
    ax.legend(loc="upper left")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["original", "naive", "gLocal"]
    assert len({round(x, 6) for x, _, _ in drawn}) == 6  # dodged: no two bars at one x
    plt.close(fig)
    correct = pd.DataFrame({"x": "s", "representation": "glocal",
                            "correct": np.r_[np.ones(30), np.zeros(70)]})  # fmt: skip
    fig, ax = plt.subplots()
    plotting.estimate_plot(correct, "x", "correct", interval="wilson", ax=ax)
    ((_, low, high),) = _drawn_intervals(ax)
    from glocal.evaluation.intervals import wilson_interval

    assert (low, high) == pytest.approx(wilson_interval(0.3, 100))
    plt.close(fig)
    with pytest.raises(GlocalError, match="interval="):
        plotting.estimate_plot(units, "task", "accuracy", interval="bootstrap")


def test_paired_differences_subtract_unit_by_unit(rng):
    from companion.paper.comparisons import unit_differences

    units = _units(rng)
    diffs = unit_differences(units, "accuracy", ["task", "episode"])
    assert set(diffs["representation"]) == {"naive", "glocal"} and len(diffs) == 2 * 2 * 12
    row = diffs.iloc[5]
    pick = units.set_index(["task", "episode", "representation"])["accuracy"]
    assert row["accuracy"] == pytest.approx(
        pick[(row["task"], row["episode"], row["representation"])]
        - pick[(row["task"], row["episode"], "original")]
    )
    fig, ax = plt.subplots()
    plotting.paired_difference_plot(units, "task", "accuracy", "episode", ax=ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "naive − original", "gLocal − original",
    ]  # fmt: skip
    # what a figure-wide legend gathers from the axes (Figures 5.2 and 6.1 said "glocal")
    assert ax.get_legend_handles_labels()[1] == ["naive − original", "gLocal − original"]
    ax.legend(loc="lower left")
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "gLocal − original"
    plt.close(fig)
    with pytest.raises(GlocalError, match="appears twice"):
        unit_differences(pd.concat([units, units]), "accuracy", ["task", "episode"])
    with pytest.raises(GlocalError, match="no representation 'human'"):
        unit_differences(units, "accuracy", ["task", "episode"], baseline="human")


def test_interval_plot_draws_the_given_intervals():
    table = pd.DataFrame({"n": [10, 100], "representation": "glocal", "acc": [0.5, 0.6],
                          "lo": [0.45, 0.58], "hi": [0.52, 0.63]})  # fmt: skip
    fig, ax = plt.subplots()
    plotting.interval_plot(table, "n", "acc", "lo", "hi", log_x=True, ax=ax)
    segments = ax.collections[0].get_segments()
    assert [tuple(seg[:, 1]) for seg in segments] == [(0.45, 0.52), (0.58, 0.63)]
    assert ax.get_xscale() == "log"
    plt.close(fig)


def test_moved_fits_are_drawn_filled_above_the_hollow_markers():
    fig, ax = plt.subplots()
    plotting.errorbar_kept_hollow(ax, [0, 1, 2], [0.5, 0.6, 0.7], [[0.1] * 3, [0.1] * 3],
                                  [True, False, True], "o-", "#009e73", "gLocal")  # fmt: skip
    hollow, filled = ax.lines[0], ax.lines[-1]
    assert hollow.get_markerfacecolor() == "white" and len(hollow.get_xdata()) == 3
    assert list(filled.get_xdata()) == [0, 2] and filled.get_markerfacecolor() != "white"
    assert filled.get_zorder() > hollow.get_zorder()  # else the hollow markers cover them
    plt.close(fig)


def test_grouped_errorbars_place_each_name_in_its_slot_with_its_interval():
    # two data sets (given out of the table's order) x three representations; the bars of
    # a name sit at level + (i - 1) * 0.8 / 3 and reach from ci_low to ci_high
    rows = [("b", "original", 0.2), ("a", "original", 0.1), ("a", "naive", 0.3),
            ("b", "naive", 0.4), ("a", "glocal", 0.5), ("b", "glocal", 0.6)]  # fmt: skip
    table = pd.DataFrame(rows, columns=["dataset", "representation", "rho"])
    table = table.assign(ci_low=table["rho"] - 0.05, ci_high=table["rho"] + 0.1)
    fig, ax = plt.subplots()
    names = ["original", "naive", "glocal"]
    plotting.grouped_errorbars(ax, table, ["a", "b"], names, "rho", "ci_low", "ci_high")
    rho = {(d, r): v for d, r, v in rows}
    for i, (container, name) in enumerate(zip(ax.containers, names, strict=True)):
        line, _, (bars,) = container
        assert list(line.get_xdata()) == pytest.approx([(i - 1) * 0.8 / 3, 1 + (i - 1) * 0.8 / 3])
        assert list(line.get_ydata()) == pytest.approx([rho["a", name], rho["b", name]])
        ends = [(s[0][1], s[1][1]) for s in bars.get_segments()]
        assert ends == [pytest.approx((rho[d, name] - 0.05, rho[d, name] + 0.1)) for d in "ab"]
        assert container.get_label() == plotting.label(name)
    plt.close(fig)


def test_legend_entries_keep_each_name_once_with_its_first_artist():
    fig, axes = plt.subplots(1, 2)
    first = axes[0].plot([0, 1], [0, 1], label="gLocal")[0]
    axes[0].plot([0, 1], [1, 0], label="naive")
    axes[1].plot([0, 1], [0, 1], label="gLocal")
    axes[1].plot([0, 1], [0.5, 0.5], label="original")
    entries = plotting.legend_entries(axes.flat)
    assert list(entries) == ["gLocal", "naive", "original"]
    assert entries["gLocal"] is first
    plt.close(fig)


def test_jittered_points_do_not_depend_on_random_values_drawn_before():
    from companion.paper.plotting import vector_means_figure

    means = pd.DataFrame({"source": "s", "representation": np.repeat(["original", "glocal"], 30),
                          "items": "w", "m": np.linspace(-0.1, 0.1, 60)})  # fmt: skip
    offsets = []
    for drawn_before in (0, 7):
        np.random.uniform(size=drawn_before)  # noqa: NPY002 - code run before the figure
        state = np.random.get_state()  # noqa: NPY002
        fig = vector_means_figure(means, ["s"], ["original", "glocal"])
        after = np.random.get_state()  # noqa: NPY002
        assert after[0] == state[0] and np.array_equal(after[1], state[1])  # state restored
        offsets.append(np.concatenate([c.get_offsets()[:, 0] for c in fig.axes[0].collections]))
        plt.close(fig)
    np.testing.assert_array_equal(offsets[0], offsets[1])
    assert offsets[0].std() > 0  # the points are jittered at all
