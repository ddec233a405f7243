"""Paired comparisons of tidy tables: differences unit by unit, their interval and verdict.

A tidy table holds one row per unit (a test triplet, an episode, a class of a split, a seed)
and representation; representations seen on the same units are compared unit by unit, never
through their separate means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from glocal.errors import GlocalError
from glocal.evaluation.intervals import mean_interval, verdict

#: The differences too small to matter, per measure: one point of accuracy and 0.01 AUROC.
#: The paper's downstream gains are several points (its Figure 1b); a change below one point is
#: within the spread of a single task's re-runs, so an interval inside ±1 point reads as "no
#: effect" rather than as a gain or a loss. Correlations with human judgements (page 10's
#: kernels) use 0.01 as well: the paper reports them to two decimals.
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


def paired_summary(
    table: pd.DataFrame,
    value: str,
    units: Sequence[str],
    by: Sequence[str] = (),
    baseline: str = "original",
    expected: Mapping[str, str] | None = None,
    margin: float = 0.0,
) -> pd.DataFrame:
    """Each representation minus ``baseline``, unit by unit, with a t-interval and a verdict.

    ``table`` is tidy: one row per (unit, representation) with the measure in ``value``;
    ``units`` are the columns that identify a unit (e.g. fold, repeat); ``by`` the columns that
    keep comparisons apart (e.g. task, shots). ``expected`` maps a representation to the sign
    the claim expects (``"positive"`` by default); ``margin`` is the size below which a
    difference does not matter (see :func:`glocal.evaluation.intervals.verdict`). Returns one
    row per group and representation: ``mean``, ``ci_low``, ``ci_high``, ``width``, ``n``
    (units), ``expected`` and ``verdict``.
    """
    diffs = unit_differences(table, value, [*by, *units], baseline)
    rows = []
    for group, part in diffs.groupby([*by, "representation"], sort=False):
        *labels, name = group if isinstance(group, tuple) else (group,)
        mean, low, high, n = mean_interval(part[value].to_numpy())
        sign = (expected or {}).get(str(name), "positive")
        rows.append({
            **dict(zip(by, labels, strict=True)), "representation": name, "mean": mean,
            "ci_low": low, "ci_high": high, "width": high - low, "n": n, "expected": sign,
            "verdict": verdict(low, high, sign, margin),
        })  # fmt: skip
    return pd.DataFrame(rows)
