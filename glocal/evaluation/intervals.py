"""Confidence intervals and the verdict an interval of a difference gives.

Intervals over the unit of generalisation: :func:`cluster_bootstrap` resamples the units
(THINGS concepts, classes) that rows of results share, e.g. the three concepts of a test
triplet, instead of treating the rows as independent (as :func:`wilson_interval` and
:func:`mean_interval` do). ``benchmarks/bench_intervals.py`` checks the coverage of both kinds
on worlds whose population value is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, overload

import numpy as np

from glocal.errors import GlocalError

#: The verdicts of :func:`verdict`.
VERDICTS = ("holds", "opposite", "no effect", "insensitive", "not resolved", "n/a")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise GlocalError(f"confidence must lie in (0, 1), got {confidence}")


def wilson_interval(p: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed in ``n`` trials.

    SciPy's ``binomtest(k, n).proportion_ci(confidence, method="wilson")`` with ``k = p·n``.

    Parameters
    ----------
    p : float
        The observed proportion, in [0, 1]: a count of successes divided by ``n``.
    n : int
        Number of trials (NaN bounds when 0).
    confidence : float, default=0.95
        Level of the interval.

    Returns
    -------
    tuple of float
        ``(low, high)``.

    Raises
    ------
    GlocalError
        For a ``p`` outside [0, 1] or one that is not a whole number of successes out of ``n``
        (the interval of a mean of non-binary values is :func:`mean_interval`'s).
    """
    from scipy import stats

    _check_confidence(confidence)
    if n <= 0:
        return math.nan, math.nan
    if not 0.0 <= p <= 1.0:
        raise GlocalError(f"wilson_interval: p must be a proportion in [0, 1], got {p}")
    k = round(p * n)
    if abs(p * n - k) > 1e-6 * max(1.0, n):
        raise GlocalError(
            f"wilson_interval: p={p} is not a count out of n={n} (p·n = {p * n}); the Wilson "
            "interval is for the proportion of successes of binary trials, use mean_interval "
            "for a mean of other values"
        )
    interval = stats.binomtest(int(k), int(n)).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def mean_interval(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float, int]:
    """The mean of ``values`` and its Student-t interval; NaN values are left out.

    SciPy's ``stats.t.interval`` with n − 1 degrees of freedom around the mean, scaled by the
    standard error; values that are all equal have a zero-width interval (SciPy: NaN).

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
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    if sem == 0.0:
        return mean, mean, mean, n
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return mean, float(low), float(high), n


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


#: How :func:`cluster_interval` makes its interval.
CLUSTER_METHODS = ("analytic", "bootstrap")
#: Most weights (replicates × distinct rows) the bootstrap holds at once.
_MAX_BLOCK = 1 << 22


@dataclass(frozen=True)
class ClusterInterval:
    """A mean over rows with an interval over the units the rows share.

    Returned by :func:`cluster_interval` (and :func:`cluster_difference`).

    Attributes
    ----------
    estimate : float
        The plain mean of the finite values (every row weighted 1).
    ci_low, ci_high : float
        The interval (NaN when it cannot be formed: fewer units than two per stratum, or no
        replicate).
    n_units : int
        Number of units (over all strata).
    n_rows : int
        Number of rows with a finite value.
    confidence : float
        Level of the interval.
    method : {"analytic", "bootstrap"}
        How the interval was made (see :func:`cluster_interval`).
    se : float
        Standard error of the estimate: the cluster-robust one (``"analytic"``) or the
        standard deviation of the replicates (``"bootstrap"``).
    df : int
        Degrees of freedom of the t quantile of ``"analytic"``: units minus strata.
    replicates : ndarray of shape (n_bootstrap,)
        The weighted mean of every bootstrap replicate, NaN where no row had weight; empty
        for ``"analytic"``.
    seed : int
        The bootstrap's seed: results of equal seed, units and ``n_bootstrap`` were computed
        on the same resamples, so their replicates pair (:func:`cluster_difference`).
    units : ndarray of shape (n_units,)
        The units' labels, stratum by stratum.
    unit_strata : ndarray of shape (n_units,) or None
        The stratum of each unit (None without strata).
    """

    estimate: float
    ci_low: float
    ci_high: float
    n_units: int
    n_rows: int
    confidence: float
    method: str = "analytic"
    se: float = math.nan
    df: int = 0
    replicates: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    seed: int = 0
    units: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    unit_strata: np.ndarray | None = field(default=None, repr=False)

    @property
    def width(self) -> float:
        """``ci_high − ci_low``."""
        return self.ci_high - self.ci_low


def _labels(array: Any, n: int, where: str) -> np.ndarray:
    labels = np.asarray(array)
    if labels.dtype.kind not in "iuUSO" or labels.ndim not in (1, 2) or 0 in labels.shape:
        raise GlocalError(
            f"{where}: expected integer or string labels of shape (n,) or (n, m), got "
            f"{labels.dtype} {labels.shape}"
        )
    if len(labels) != n:
        raise GlocalError(f"{where}: has {len(labels)} rows but values has {n}; give one per row")
    if labels.dtype.kind == "O" and any(x is None or x != x for x in labels.ravel()):
        raise GlocalError(f"{where}: labels must not be None or NaN")
    return labels


def _unit_codes(
    members: np.ndarray, strata: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Each row's unit indices (n, m) and stratum index (n,), the units' labels and strata,
    and the number of units per stratum. Units are numbered stratum by stratum (with strata a
    unit is a (stratum, label) pair)."""
    labels, inverse = np.unique(members, return_inverse=True)
    codes = inverse.reshape(members.shape)
    if strata is None:
        return codes, np.zeros(len(codes), dtype=np.int64), labels, None, np.array([len(labels)])
    names, stratum = np.unique(strata, return_inverse=True)
    stratum = stratum.ravel()
    keys, inverse = np.unique(stratum[:, None] * len(labels) + codes, return_inverse=True)
    unit_stratum = keys // len(labels)
    return (inverse.reshape(codes.shape), stratum, labels[keys % len(labels)],
            names[unit_stratum], np.bincount(unit_stratum, minlength=len(names)))  # fmt: skip


def _draw_counts(
    rng: np.random.Generator, sizes: np.ndarray, n_units: int, n_replicates: int
) -> np.ndarray:
    """How often each unit is drawn in each of ``n_replicates`` replicates (in order): each
    stratum draws as many of its units as it has, with replacement."""
    counts = np.empty((n_replicates, n_units))
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    highs = np.repeat(sizes, sizes)
    for r in range(n_replicates):
        if len(sizes) == 1:
            draw = rng.integers(0, n_units, size=n_units)
        else:
            draw = starts + rng.integers(0, highs)
        counts[r] = np.bincount(draw, minlength=n_units)
    return counts


def _bootstrap_replicates(
    table: np.ndarray, finite: np.ndarray, codes: np.ndarray, sizes: np.ndarray,
    n_bootstrap: int, seed: int,
) -> np.ndarray:  # fmt: skip
    """(n_bootstrap, k) weighted means: a row weighs the product of its units' counts."""
    groups, row_group = np.unique(codes, axis=0, return_inverse=True)
    row_group = row_group.ravel()  # rows with the same units share every weight: sum first
    filled = np.where(finite, table, 0.0)
    sums = np.stack([np.bincount(row_group, filled[:, i], len(groups))
                     for i in range(table.shape[1])], axis=1)  # fmt: skip
    counts = np.stack([np.bincount(row_group, finite[:, i].astype(float), len(groups))
                       for i in range(table.shape[1])], axis=1)  # fmt: skip
    n_units = int(sizes.sum())
    rng = np.random.default_rng(seed)
    replicates = np.empty((n_bootstrap, table.shape[1]))
    block = max(1, _MAX_BLOCK // len(groups))
    for start in range(0, n_bootstrap, block):
        drawn = _draw_counts(rng, sizes, n_units, min(block, n_bootstrap - start))
        weights = drawn[:, groups[:, 0]]
        for j in range(1, groups.shape[1]):
            weights *= drawn[:, groups[:, j]]
        total = weights @ counts
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates[start : start + len(drawn)] = np.where(
                total > 0, (weights @ sums) / np.where(total > 0, total, 1.0), np.nan
            )
    return replicates


def _sharing(codes: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """For each size k of a set of units rows can share: (sign, rows, index), where ``index``
    numbers the k-sets of units and ``rows`` the row each entry comes from.

    Inclusion–exclusion: Σ_u S_u² − Σ_{u<v} S_uv² + Σ_{u<v<w} S_uvw² − ... (S_A: the sum of
    e over the rows that contain the units A) counts a pair of rows that shares j units
    j − C(j, 2) + C(j, 3) − ... = 1 time, and pairs that share none 0 times."""
    units = np.sort(codes, axis=1)
    m = units.shape[1]
    if m > 1:  # a unit listed twice in a row is one unit of that row
        units[:, 1:][units[:, 1:] == units[:, :-1]] = -1
        units = np.sort(units, axis=1)
    base = int(units.max()) + 1
    parts = []
    for size in range(1, m + 1):
        chosen, rows = [], []
        for columns in combinations(range(m), size):
            part = units[:, list(columns)]
            valid = (part >= 0).all(axis=1)
            chosen.append(part[valid])
            rows.append(np.flatnonzero(valid))
        keys = np.concatenate(chosen)
        if base**size < 2**62:
            packed = keys[:, 0].astype(np.int64)
            for j in range(1, size):
                packed = packed * base + keys[:, j]
            index = np.unique(packed, return_inverse=True)[1]
        else:
            index = np.unique(keys, axis=0, return_inverse=True)[1]
        parts.append((1 if size % 2 else -1, np.concatenate(rows), index.ravel()))
    return parts


def _linearised_ratio(table: np.ndarray, weights: Any, method: str) -> np.ndarray:
    """Each column ``v`` as ``R + w (v − R) / mean(w)`` (over its finite rows), ``R`` the
    weighted mean: the plain mean of the result is ``R`` and its residuals are those of the
    linearised ratio estimator, so the analytic variance applies unchanged."""
    if method != "analytic":
        raise GlocalError(f"weights need method='analytic', got method={method!r}")
    w = np.asarray(weights)
    if w.dtype.kind not in "biuf" or w.shape != (len(table),):
        raise GlocalError(
            f"weights: expected one number per row ({len(table)}), got {w.dtype} {w.shape}"
        )
    w = w.astype(np.float64)
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise GlocalError("weights: every weight must be a finite positive number")
    out = np.full_like(table, np.nan)
    for i in range(table.shape[1]):
        rows = ~np.isnan(table[:, i])
        if rows.any():
            ratio = float((w[rows] * table[rows, i]).sum() / w[rows].sum())
            out[rows, i] = ratio + w[rows] * (table[rows, i] - ratio) / w[rows].mean()
    return out


def _analytic(
    values: np.ndarray,
    codes: np.ndarray,
    stratum: np.ndarray,
    confidence: float,
    sharing: list[tuple[int, np.ndarray, np.ndarray]] | None = None,
) -> tuple[float, float, float, int]:
    """(low, high, se, df) of the mean of ``values`` from the cluster-robust variance.

    Per stratum g: ``V_g = Σ e_t e_s / (1 − P_g)`` over the ordered pairs of its rows that
    share a unit, ``e`` the values minus the stratum's mean and ``P_g`` the share of all
    ordered pairs of its rows that share a unit. Centring on the estimated mean removes about
    that share of the variance; with one unit per row and equal clusters ``1 / (1 − P)`` is
    CR1's ``U / (U − 1)``. The mean's variance is ``Σ_g V_g / n²``."""
    from scipy import stats

    n = len(values)
    strata, stratum = np.unique(stratum, return_inverse=True)
    n_strata = len(strata)
    rows_per = np.bincount(stratum, minlength=n_strata).astype(np.float64)
    residuals = values - (np.bincount(stratum, values, n_strata) / rows_per)[stratum]
    df = len(np.unique(codes)) - n_strata
    mean = float(values.mean())
    if df < 1:
        return math.nan, math.nan, math.nan, max(df, 0)
    shared: np.ndarray = np.zeros(n_strata)
    first: np.ndarray = np.zeros(n_strata)
    pairs: np.ndarray = np.zeros(n_strata)
    for size, (sign, rows, index) in enumerate(sharing or _sharing(codes)):
        key_stratum = np.zeros(int(index.max()) + 1, dtype=np.int64)
        key_stratum[index] = stratum[rows]
        sums = np.bincount(index, residuals[rows])
        term = np.bincount(key_stratum, sums * sums, n_strata)
        counts = np.bincount(index).astype(np.float64)
        shared += sign * term
        pairs += sign * np.bincount(key_stratum, counts * counts, n_strata)
        if size == 0:
            first = term
    # possible in principle (rows anti-correlated within units): count a pair once per unit
    variance = np.where(shared < 0, first, shared)
    kept = 1.0 - pairs / rows_per**2
    # a stratum of one unit is always drawn whole: it adds nothing (as in the bootstrap)
    base = int(codes.max()) + 1
    units_per = np.bincount(np.unique(stratum[:, None] * base + codes) // base, minlength=n_strata)
    single = units_per == 1
    if (kept[~single] <= 0).any():  # every pair of a stratum's rows shares a unit
        return math.nan, math.nan, math.nan, df
    se = math.sqrt(float((variance[~single] / kept[~single]).sum())) / n
    if se == 0.0:
        return mean, mean, 0.0, df
    low, high = stats.t.interval(confidence, df, loc=mean, scale=se)
    return float(low), float(high), se, df


@overload
def cluster_interval(
    values: Mapping[str, Any],
    members: Any,
    *,
    strata: Any = None,
    weights: Any = None,
    method: str = "analytic",
    confidence: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, ClusterInterval]: ...


@overload
def cluster_interval(
    values: Sequence[float] | np.ndarray,
    members: Any,
    *,
    strata: Any = None,
    weights: Any = None,
    method: str = "analytic",
    confidence: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> ClusterInterval: ...


def cluster_interval(
    values: Mapping[str, Any] | Sequence[float] | np.ndarray,
    members: Any,
    *,
    strata: Any = None,
    weights: Any = None,
    method: str = "analytic",
    confidence: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> ClusterInterval | dict[str, ClusterInterval]:
    """The mean of per-row values with an interval over the units the rows share.

    Rows (test triplets, (episode, class) pairs, (split, class) pairs, ...) are not
    independent when they share units (concepts, classes): the unit of generalisation is the
    unit, and the interval is over units. For a *paired* difference pass the per-row
    difference of two representations' values on the same rows.

    Two methods:

    * ``"analytic"`` (default): the cluster-robust variance of the mean,
      ``Σ e_t e_s / ((1 − P) n²)`` over the ordered pairs of rows (t, s) that share at least
      one unit (``e`` the values minus their (stratum's) mean; computed by inclusion–exclusion
      over the units rows share, in O(n log n)); ``P`` is the share of all ordered pairs of
      rows that share a unit, the part of the variance that centring on the estimated mean
      removes (per stratum). The interval is Student-t with ``U − S`` degrees of freedom (U
      units, S strata). With one unit per row and equal clusters this is the usual
      cluster-robust CR1 interval (``1 / (1 − P) = U / (U − 1)``); with several units per row
      (the three concepts of a triplet) it is its multiway form, which counts each pair of
      rows once however many units they share.
    * ``"bootstrap"``: each replicate draws the units with replacement (unit u drawn
      ``c_u`` times) and weights each row by the product of its units' multiplicities (a
      triplet whose concepts were drawn 2, 1 and 0 times weighs 0; 2, 1, 1 times, 2); the
      replicate is the weighted mean, the interval their percentiles. With several units per
      row this *overstates* the variance: a pair of rows sharing j units is counted about
      2^j − 1 times (a row with itself 7 times for triplets), so the interval is too wide
      when row-level noise matters (see ``benchmarks/results/intervals.md``). It is exact in
      kind for one unit per row, and it returns replicates.

    Parameters
    ----------
    values : array-like of shape (n,), or mapping of name to such arrays
        One number per row: a score, or a paired difference of two scores. A mapping gives
        one result per name (the bootstrap draws them on the same resamples, in one pass).
        NaN values are left out (the row has no value); infinite ones are an error.
    members : array-like of shape (n,) or (n, m)
        The unit(s) of each row, as integer or string labels: one per row (a class, a
        concept) or m per row (the 3 concepts of a triplet; all columns are units of one
        kind). A label listed twice in a row is one unit of it (``"analytic"``) or counts
        twice (``"bootstrap"``: weight ``c_u²``).
    weights : array-like of shape (n,) or None, default=None
        A positive weight per row (e.g. the test items behind a class's accuracy): the
        estimate is then the weighted mean ``Σ w v / Σ w`` (the accuracy over all test items
        when ``v`` holds per-class accuracies), and the analytic variance is that of the
        linearised ratio, i.e. of the rows ``w (v − estimate) / mean(w)``. Only with
        ``"analytic"``.
    strata : array-like of shape (n,) or None, default=None
        A stratum per row (e.g. the fold when each fold has its own units). A unit is then a
        (stratum, label) pair; the bootstrap resamples each stratum's units within it, and
        the analytic variance centres each stratum on its own mean. None: one pool.
    method : {"analytic", "bootstrap"}, default="analytic"
        How the interval is made (above).
    confidence : float, default=0.95
        Level of the interval.
    n_bootstrap : int, default=2000
        Replicates of ``"bootstrap"`` (0: no interval); ignored by ``"analytic"``.
    seed : int, default=0
        Seeds the bootstrap. Replicate r draws ``rng.integers(0, U, size=U)`` (U units, no
        strata) from ``np.random.default_rng(seed)``, replicate after replicate, so that two
        calls with the same seed and units share their resamples.

    Returns
    -------
    ClusterInterval or dict of str to ClusterInterval
        One result, or one per name of a mapping.

    Raises
    ------
    GlocalError
        For values that are not 1-D arrays of finite-or-NaN numbers, members or strata with
        another number of rows or that are not labels, no finite value, an unknown method, a
        bad ``n_bootstrap`` or ``confidence``.

    Notes
    -----
    *Units.* The units of a result are those of its rows with a finite value (for the
    bootstrap of a mapping: of the rows with a finite value in any array, so that all share
    their resamples). Rows whose units are all drawn 0 times drop out of a bootstrap
    replicate, as in any cluster bootstrap; a replicate in which every row weighs 0
    (possible with a handful of units) is NaN and the percentiles ignore it. The analytic
    variance could in principle come out negative (rows anti-correlated within units); it
    then counts each pair of rows once per shared unit (its first, positive term).

    *Folds × classes.* When the same classes are scored in every fold (cross-fitted
    transforms, each tested on its fold's held-out concepts of the same categories), pass
    the class as the member and no ``strata``: a class carries its rows from every fold and
    the interval is over classes. When each fold (or split) has units of its own, pass the
    fold as ``strata``. Folds are not resampled: five fits are too few units for an
    interval, so the interval is conditional on the fits.

    *Cost.* Analytic: a few sorts of the rows (50,000 triplets: about 0.1 s). Bootstrap: rows
    with the same units are summed first (one row per unit for ``m = 1``) and replicates are
    processed in blocks of at most ``2**22`` weights; 50,000 triplets of 371 concepts take a
    few seconds for 2000 replicates and a few tens of MB.

    Examples
    --------
    >>> correct = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    >>> triplets = np.array([[0, 1, 2], [0, 1, 3], [1, 2, 3], [0, 2, 3], [2, 3, 4], [1, 3, 4]])
    >>> result = cluster_interval(correct, triplets)
    >>> result.estimate, result.n_units, result.df
    (0.6666666666666666, 5, 4)
    """
    _check_confidence(confidence)
    if method not in CLUSTER_METHODS:
        raise GlocalError(f"method must be one of {CLUSTER_METHODS}, got {method!r}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or (
        n_bootstrap < 0
    ):  # fmt: skip
        raise GlocalError(f"n_bootstrap must be 0 or a positive integer, got {n_bootstrap!r}")
    named = isinstance(values, Mapping)
    columns = dict(values) if isinstance(values, Mapping) else {"": values}
    if not columns:
        raise GlocalError("values: the mapping is empty; give at least one array of values")
    arrays = []
    for name, column in columns.items():
        where = f"values[{name!r}]" if named else "values"
        array = np.asarray(column)
        if array.dtype.kind not in "biuf" or array.ndim != 1:
            raise GlocalError(
                f"{where}: expected a 1-D array of numbers (one per row), got {array.dtype} "
                f"{array.shape}"
            )
        array = array.astype(np.float64)
        if np.isinf(array).any():
            raise GlocalError(f"{where}: {int(np.isinf(array).sum())} values are infinite")
        arrays.append(array)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise GlocalError(
            f"values: the arrays have lengths {[len(a) for a in arrays]}; give one value per "
            "row in each"
        )
    table = np.stack(arrays, axis=1)
    if weights is not None:
        table = _linearised_ratio(table, weights, method)
    member_labels = _labels(members, n, "members").reshape(n, -1)
    stratum_labels = None if strata is None else _labels(strata, n, "strata")
    if stratum_labels is not None and stratum_labels.ndim != 1:
        raise GlocalError(f"strata: expected one label per row, got shape {stratum_labels.shape}")
    finite = ~np.isnan(table)
    keep = finite.any(axis=1)
    if not keep.any():
        raise GlocalError("values: no finite value; nothing to average")
    codes, stratum, units, unit_strata, sizes = _unit_codes(
        member_labels[keep], None if stratum_labels is None else stratum_labels[keep]
    )
    table, finite = table[keep], finite[keep]
    if method == "bootstrap":
        replicates = _bootstrap_replicates(table, finite, codes, sizes, n_bootstrap, seed)
    sharing = _sharing(codes) if method == "analytic" and finite.all() else None
    results = {}
    for i, name in enumerate(columns):
        rows = finite[:, i]
        if not rows.any():
            results[name] = ClusterInterval(math.nan, math.nan, math.nan, 0, 0, confidence,
                                            method, seed=seed)  # fmt: skip
            continue
        estimate = float(table[rows, i].mean())
        if method == "analytic":
            low, high, se, df = _analytic(table[rows, i], codes[rows], stratum[rows], confidence,
                                          sharing)  # fmt: skip
            used = np.unique(codes[rows])
            results[name] = ClusterInterval(
                estimate, low, high, len(used), int(rows.sum()), confidence, method, se, df,
                seed=seed, units=units[used],
                unit_strata=None if unit_strata is None else unit_strata[used],
            )  # fmt: skip
        else:
            column = replicates[:, i].copy()
            low, high = percentile_interval(column, confidence) if len(column) else (
                math.nan, math.nan)  # fmt: skip
            spread = float(np.nanstd(column, ddof=1)) if (~np.isnan(column)).sum() > 1 else (
                math.nan)  # fmt: skip
            results[name] = ClusterInterval(
                estimate, low, high, len(units), int(rows.sum()), confidence, method, spread,
                replicates=column, seed=seed, units=units, unit_strata=unit_strata,
            )  # fmt: skip
    return results if named else results[""]


def cluster_difference(
    a: ClusterInterval, b: ClusterInterval, confidence: float | None = None
) -> ClusterInterval:
    """``a − b`` with the paired percentile interval of their bootstrap replicates.

    ``a`` and ``b`` must come from :func:`cluster_interval` with ``method="bootstrap"`` on the
    same units, seed and ``n_bootstrap`` (e.g. one mapping of two representations' values),
    so that replicate r of both was computed on the same resample. For the same rows without
    NaN this equals bootstrapping the per-row differences. (An analytic interval of a
    difference: pass the per-row differences to :func:`cluster_interval`.)

    Raises
    ------
    GlocalError
        When the two results are not bootstrap results drawn on the same resamples.
    """
    same = (
        a.method == b.method == "bootstrap"
        and a.seed == b.seed
        and len(a.replicates) == len(b.replicates)
        and np.array_equal(a.units, b.units)
        and (
            (a.unit_strata is None and b.unit_strata is None)
            or (
                a.unit_strata is not None
                and b.unit_strata is not None
                and np.array_equal(a.unit_strata, b.unit_strata)
            )
        )
    )
    if not same:
        raise GlocalError(
            "cluster_difference: the two results were not bootstrapped on the same resamples "
            f"({a.method}, {a.n_units} units, seed {a.seed}, {len(a.replicates)} replicates vs "
            f"{b.method}, {b.n_units} units, seed {b.seed}, {len(b.replicates)}); bootstrap "
            "both in one cluster_interval(..., method='bootstrap') call (a mapping of values), "
            "or pass the per-row differences"
        )
    level = a.confidence if confidence is None else confidence
    replicates = a.replicates - b.replicates
    low, high = percentile_interval(replicates, level) if len(replicates) else (
        math.nan, math.nan)  # fmt: skip
    spread = float(np.nanstd(replicates, ddof=1)) if (~np.isnan(replicates)).sum() > 1 else (
        math.nan)  # fmt: skip
    return ClusterInterval(
        estimate=a.estimate - b.estimate, ci_low=low, ci_high=high, n_units=a.n_units,
        n_rows=min(a.n_rows, b.n_rows), confidence=level, method="bootstrap", se=spread,
        replicates=replicates, seed=a.seed, units=a.units, unit_strata=a.unit_strata,
    )  # fmt: skip


def verdict(
    low: float,
    high: float,
    expected: str = "positive",
    margin: float = 0.0,
    control: tuple[float, float] | None = None,
) -> str:
    """What an interval of a difference says about a claimed direction.

    ``"no effect"`` when the whole interval lies inside ``(−margin, margin)`` (only with a
    positive ``margin``: every value it admits is too small to matter, even when it excludes
    0); otherwise ``"holds"`` when the whole interval has the ``expected`` sign, ``"opposite"``
    when it has the other sign, ``"not resolved"`` when it contains 0, and ``"n/a"`` without
    an interval.

    ``control`` is the interval ``(low, high)`` of the test's *positive control*: the same
    measure's difference for a change known to matter (e.g. naive − original, whose damage to
    local structure is shown elsewhere). When the control's interval also lies inside
    ``(−margin, margin)``, the test cannot tell a change that matters from none, and a result
    that would read ``"no effect"`` reads ``"insensitive"``. A control without an interval
    (NaN bounds) or None leaves the verdict as it is.
    """
    if expected not in ("positive", "negative"):
        raise GlocalError(f"expected must be 'positive' or 'negative', got {expected!r}")
    if not margin >= 0:
        raise GlocalError(f"margin must be 0 or positive, got {margin}")
    if control is not None:
        if len(control) != 2 or (
            not any(map(math.isnan, control)) and not control[0] <= control[1]
        ):
            raise GlocalError(
                f"control must be the (low, high) interval of the positive control's "
                f"difference, got {control!r}"
            )
    if any(map(math.isnan, (low, high))):
        return "n/a"
    if margin > 0 and -margin < low and high < margin:
        if control is not None and -margin < control[0] and control[1] < margin:
            return "insensitive"
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
