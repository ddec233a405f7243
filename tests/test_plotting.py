"""Notebook outputs: PNG + SVG figures and CSV tables, written atomically and reproducibly."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from companion import plotting  # noqa: E402
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
    path = plotting.save_table(table, tmp_path, "alignment")
    assert path == tmp_path / "alignment.csv"
    pd.testing.assert_frame_equal(pd.read_csv(path), table)
    assert [p.name for p in tmp_path.iterdir()] == ["alignment.csv"]


def test_bad_names_and_tables_are_refused(tmp_path):
    with pytest.raises(GlocalError, match="plain file stem"):
        plotting.save_table(pd.DataFrame({"a": [1]}), tmp_path, "../escape")
    with pytest.raises(GlocalError, match="DataFrame"):
        plotting.save_table([1, 2], tmp_path, "list")  # type: ignore[arg-type]


def test_style_colours_and_labels():
    plotting.use_style()
    assert matplotlib.rcParams["axes.spines.top"] is False
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
