"""Paired comparisons of tidy tables: differences unit by unit, their interval and verdict.

A tidy table holds one row per unit (a test triplet, an episode, a class of a split, a seed)
and representation; representations seen on the same units are compared unit by unit, never
through their separate means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from glocal.errors import GlocalError
from glocal.evaluation.intervals import cluster_interval, mean_interval, verdict

#: The differences too small to matter, per measure, where a profile sets none of its own (the
#: profiles' ``margins``, notebooks/profiles/defaults.json, hold the values the pages quote,
#: with their reason): one point of accuracy, 0.01 AUROC, 0.01 in a correlation.
MARGINS = {"accuracy": 0.01, "auroc": 0.01, "correlation": 0.01}


def unit_differences(
    table: pd.DataFrame,
    value: str,
    keys: Sequence[str],
    baseline: str = "original",
    hue: str = "representation",
) -> pd.DataFrame:
    """Each ``hue`` value minus ``baseline``, unit by unit.

    ``table`` is tidy: one row per unit (identified by the ``keys`` columns) and ``hue`` value,
    the measure in ``value``. Returns the tidy table of differences: the ``keys`` columns,
    ``hue`` and ``value``, one row per unit and compared representation (units the baseline
    lacks are left out).

    Raises
    ------
    GlocalError
        When a column is missing, ``baseline`` is not among the ``hue`` values, or a unit
        appears twice.
    """
    keys = list(keys)
    missing = sorted({*keys, value, hue} - set(table.columns))
    if missing:
        raise GlocalError(f"unit_differences: the table lacks the column(s) {missing}")
    if baseline not in set(table[hue]):
        raise GlocalError(f"unit_differences: no {hue} {baseline!r} to subtract")
    if table.duplicated([*keys, hue]).any():
        raise GlocalError(f"unit_differences: a ({', '.join(keys)}, {hue}) appears twice")
    wide = table.pivot(index=keys, columns=hue, values=value)
    names = [n for n in dict.fromkeys(table[hue]) if n != baseline]
    frames = [(wide[n] - wide[baseline]).rename(value).reset_index().assign(**{hue: n})
              for n in names]  # fmt: skip
    return pd.concat(frames, ignore_index=True).dropna(subset=[value])


def interval_of(
    values: np.ndarray,
    members: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)``: a 95% interval of the (``weights``-weighted) mean of
    ``values``, over the units in ``members`` (the cluster-robust interval of
    :func:`glocal.evaluation.intervals.cluster_interval`; ``n`` counts units) or, without
    them, the t-interval over the rows (``n`` counts rows)."""
    if members is None:
        if weights is not None:
            raise GlocalError("interval_of: weights need members (the units of the interval)")
        return mean_interval(values)
    result = cluster_interval(values, members, weights=weights)
    return result.estimate, result.ci_low, result.ci_high, result.n_units


def summary(
    table: pd.DataFrame,
    value: str,
    by: Sequence[str] = (),
    hue: str = "representation",
    clusters: Sequence[str] | None = None,
    weights: str | None = None,
) -> pd.DataFrame:
    """The mean of ``value`` per group of ``by`` and ``hue``, with a 95% interval over the
    units named by ``clusters`` (see :func:`interval_of`). One row per group: the ``by`` and
    ``hue`` columns, ``mean``, ``ci_low``, ``ci_high``, ``n`` and ``unit``."""
    rows = []
    for group, part in table.groupby([*by, hue], sort=False):
        labels = group if isinstance(group, tuple) else (group,)
        mean, low, high, n = interval_of(
            part[value].to_numpy(float),
            None if clusters is None else part[list(clusters)].to_numpy(),
            None if weights is None else part[weights].to_numpy(float),
        )  # fmt: skip
        rows.append({**dict(zip([*by, hue], labels, strict=True)), "mean": mean, "ci_low": low,
                     "ci_high": high, "n": n, "unit": _unit_name(clusters)})  # fmt: skip
    return pd.DataFrame(rows)


#: How a table names the units an interval resamples, by the columns that hold them.
UNIT_NAMES = {("i", "j", "k"): "concepts", ("category",): "categories", ("item",): "items"}


def _unit_name(clusters: Sequence[str] | None) -> str:
    if clusters is None:
        return "rows"
    return UNIT_NAMES.get(tuple(clusters), " × ".join(dict.fromkeys(clusters)))


def paired_summary(
    table: pd.DataFrame,
    value: str,
    units: Sequence[str],
    by: Sequence[str] = (),
    baseline: str = "original",
    expected: Mapping[str, str] | None = None,
    margin: float = 0.0,
    clusters: Sequence[str] | None = None,
    weights: str | None = None,
    control: str | None = None,
) -> pd.DataFrame:
    """Each representation minus ``baseline``, unit by unit, with an interval and a verdict.

    ``table`` is tidy: one row per (unit, representation) with the measure in ``value``;
    ``units`` are the columns that identify a unit (e.g. fold, repeat); ``by`` the columns that
    keep comparisons apart (e.g. task, shots). The interval is over ``clusters``, the columns
    whose values are the units the claim generalises over (THINGS concepts of a triplet,
    categories: a paired cluster-robust interval, :func:`interval_of`), or, without them, the
    t-interval over ``units``; ``weights`` names a column that weighs each row (e.g. the test
    items behind a class's accuracy). ``expected`` maps a representation to the sign the claim
    expects (``"positive"`` by default); ``margin`` is the size below which a difference does
    not matter; ``control`` names the positive control (e.g. ``"naive"``): when its own
    difference in the same group lies inside the margin too, a difference inside the margin
    reads *insensitive*, not *no effect* (:func:`glocal.evaluation.intervals.verdict`). Returns
    one row per group and representation: ``mean``, ``ci_low``, ``ci_high``, ``width``, ``n``
    (units), ``unit``, ``expected``, ``control_low``, ``control_high`` and ``verdict``.
    """
    keys = list(dict.fromkeys([*by, *units, *(clusters or [])]))
    extra = [weights] if weights is not None else []
    diffs = unit_differences(table, value, keys, baseline)
    if weights is not None:  # the baseline's weights: the compared rows share them
        base = table[table["representation"] == baseline].set_index(keys)[weights]
        diffs = diffs.join(base, on=keys)
    summary_rows = summary(diffs, value, by, "representation", clusters, *extra)
    if clusters is None:
        summary_rows["unit"] = " × ".join(units) + " (rows)"
    rows = []
    for row in summary_rows.to_dict("records"):
        sign = (expected or {}).get(str(row["representation"]), "positive")
        ctrl = None
        if control is not None and row["representation"] != control:
            same = summary_rows[summary_rows["representation"] == control]
            for column in by:
                same = same[same[column] == row[column]]
            if len(same):
                ctrl = (float(same["ci_low"].iloc[0]), float(same["ci_high"].iloc[0]))
        rows.append({
            **row, "width": row["ci_high"] - row["ci_low"], "expected": sign,
            "control_low": ctrl[0] if ctrl else np.nan,
            "control_high": ctrl[1] if ctrl else np.nan,
            "verdict": verdict(row["ci_low"], row["ci_high"], sign, margin, control=ctrl),
        })  # fmt: skip
    columns = [*by, "representation", "mean", "ci_low", "ci_high", "width", "n", "unit",
               "expected", "control_low", "control_high", "verdict"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def claim(
    difference: pd.DataFrame,
    name: str,
    prefix: str = "",
    by: str = "task",
    others: pd.DataFrame | None = None,
    other_label: str = "",
) -> tuple[str, str]:
    """The sentence and the verdict of a page's claim, from :func:`paired_summary`'s rows.

    One clause per row of ``name`` (``"things-coarse +0.032 [+0.024, +0.039] over 27
    categories, holds"``),
    labelled by ``by``; the verdict is the rows' common verdict, ``mixed`` when they differ,
    ``n/a`` without rows. ``others`` holds rows of the same comparison at other settings (e.g.
    other numbers of shots; ``other_label`` names the column that tells them apart): those whose
    verdict differs from the claim's row of the same ``by`` value are named after it, so that
    the claim does not read as more general than its evidence. Every page builds its claims
    here, so that the intro's table reads the same rule everywhere.
    """
    part = difference[difference["representation"] == name]
    text = "; ".join(
        f"{getattr(r, by)} {r.mean:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] over {r.n} "
        f"{r.unit}, {r.verdict}"
        for r in part.itertuples()
    )
    verdicts = list(part["verdict"])
    overall = (verdicts[0] if len(set(verdicts)) == 1 else "mixed") if verdicts else "n/a"
    text = f"{prefix}: {text}" if prefix else text
    if others is not None and len(others):
        here = dict(zip(part[by], part["verdict"], strict=True))
        mine = others[others["representation"] == name]
        mine = mine[[v != here.get(k) for k, v in zip(mine[by], mine["verdict"], strict=True)]]
        if len(mine):
            text += " (elsewhere: " + "; ".join(
                (f"{getattr(r, other_label)} {other_label} " if other_label else "")
                + f"{getattr(r, by)} {r.verdict}" for r in mine.itertuples()
            ) + ")"  # fmt: skip
    return text, overall
