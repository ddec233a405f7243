"""Confidence intervals and the verdict an interval of a difference gives."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from glocal.errors import GlocalError

#: The verdicts of :func:`verdict`.
VERDICTS = ("holds", "opposite", "no effect", "not resolved", "n/a")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise GlocalError(f"confidence must lie in (0, 1), got {confidence}")


def wilson_interval(p: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed in ``n`` trials.

    Parameters
    ----------
    p : float
        The observed proportion, in [0, 1].
    n : int
        Number of trials (NaN bounds when 0).
    confidence : float, default=0.95
        Level of the interval.

    Returns
    -------
    tuple of float
        ``(low, high)``.
    """
    from scipy import stats

    _check_confidence(confidence)
    if n <= 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf((1.0 + confidence) / 2.0))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def mean_interval(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float, int]:
    """The mean of ``values`` and its Student-t interval; NaN values are left out.

    Returns
    -------
    tuple
        ``(mean, low, high, n)``: NaN bounds for fewer than two values, all NaN for none.
    """
    from scipy import stats

    _check_confidence(confidence)
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def paired_interval(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float, int]:
    """:func:`mean_interval` of the paired differences ``a − b`` (same units, same order)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise GlocalError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    return mean_interval(a - b, confidence)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    n_units: int,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, np.ndarray]:
    """Percentile bootstrap interval of ``statistic`` over resampled units.

    ``statistic(index)`` gets the indices of ``n_units`` units drawn with replacement and
    returns the statistic of that sample; NaN replicates are ignored by the quantiles.

    Returns
    -------
    tuple
        ``(low, high, replicates)``; NaN bounds when ``n_bootstrap`` is 0.
    """
    _check_confidence(confidence)
    if n_bootstrap < 0:
        raise GlocalError(f"n_bootstrap must be 0 or positive, got {n_bootstrap}")
    if n_units < 1:
        raise GlocalError(f"the bootstrap needs at least one unit, got {n_units}")
    rng = np.random.default_rng(seed)
    replicates = np.array(
        [statistic(rng.integers(0, n_units, size=n_units)) for _ in range(n_bootstrap)],
        dtype=float,
    )
    low, high = percentile_interval(replicates, confidence)
    return low, high, replicates


def percentile_interval(
    replicates: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float]:
    """The percentile interval of bootstrap ``replicates``; NaN replicates are left out.

    Also the interval of a *paired* bootstrap difference: pass the replicates of one statistic
    minus those of another computed on the same resamples (the same seed and number of units).

    Returns
    -------
    tuple of float
        ``(low, high)``; NaN bounds without a finite replicate.
    """
    _check_confidence(confidence)
    values = np.asarray(replicates, dtype=float).ravel()
    if not (~np.isnan(values)).any():
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def verdict(low: float, high: float, expected: str = "positive", margin: float = 0.0) -> str:
    """What an interval of a difference says about a claimed direction.

    ``"no effect"`` when the whole interval lies inside ``(−margin, margin)`` (only with a
    positive ``margin``: every value it admits is too small to matter, even when it excludes
    0); otherwise ``"holds"`` when the whole interval has the ``expected`` sign, ``"opposite"``
    when it has the other sign, ``"not resolved"`` when it contains 0, and ``"n/a"`` without
    an interval.
    """
    if expected not in ("positive", "negative"):
        raise GlocalError(f"expected must be 'positive' or 'negative', got {expected!r}")
    if not margin >= 0:
        raise GlocalError(f"margin must be 0 or positive, got {margin}")
    if any(map(math.isnan, (low, high))):
        return "n/a"
    if margin > 0 and -margin < low and high < margin:
        return "no effect"
    sign = 1 if expected == "positive" else -1
    if sign * low > 0 and sign * high > 0:
        return "holds"
    if sign * low < 0 and sign * high < 0:
        return "opposite"
    return "not resolved"


def sign_of(low: float, high: float) -> str:
    """Where an interval of a difference lies: ``"> 0"``, ``"< 0"``, ``"contains 0"``, ``"n/a"``."""
    if any(map(math.isnan, (low, high))):
        return "n/a"
    if low > 0:
        return "> 0"
    if high < 0:
        return "< 0"
    return "contains 0"
