"""Grouped summary tables: success rates with Wilson intervals, means with bootstrap CIs (each
interval inside its quantity's range; too few values give no interval)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd

from stelab.analysis.intervals import contain_estimate
from stelab.analysis.proportions import wilson_interval
from stelab.analysis.trajectories import group_keys, per_horizon
from stelab.errors import DataError

SUCCESS_COLUMNS = ("success_last", "success_ergodic", "success_best", "absorbed")


def as_list(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """A column name or a sequence of them, as a list."""
    return [value] if isinstance(value, str) else list(value)


def success_table(
    rows: pd.DataFrame,
    by: str | list[str] | tuple[str, ...] = (),
    success: str | list[str] | tuple[str, ...] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Long table: one row per (group of ``by``, success column) with successes, trials, rate
    and the Wilson interval (see :func:`stelab.analysis.proportions.wilson_interval`).

    ``success`` default: every column of SUCCESS_COLUMNS present in ``rows``. Column ``metric``
    names the success column. For E4 use by=["distribution", "normalization",
    "teacher_balance"]; for success vs horizon over separate runs add "steps" to ``by``.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with boolean success columns.
    by : str or sequence of str
        Grouping columns of ``rows`` (none: one group).
    success : str, sequence of str or None
        The success columns (None: those of SUCCESS_COLUMNS present).
    confidence : float
        Two-sided coverage of the intervals, in (0, 1).

    Returns
    -------
    DataFrame
        The ``by`` columns, metric, successes, trials (int), rate and ci_low, ci_high (in
        [0, 1], containing the rate).

    Raises
    ------
    DataError
        A success column or a ``by`` column missing from ``rows``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"d": [8, 8, 8, 16], "success_last": [True, True, False, False]})
    >>> success_table(rows, by="d")[["d", "successes", "trials", "rate"]]
        d  successes  trials      rate
    0   8          2       3  0.666667
    1  16          0       1  0.000000
    """
    by = as_list(by)
    metrics = [c for c in SUCCESS_COLUMNS if c in rows] if success is None else as_list(success)
    for column in metrics:
        if column not in rows:
            raise DataError(f"rows.{column}: column missing")
    records = []
    for key, group in group_keys(rows, by):
        for metric in metrics:
            values = group[metric].to_numpy(dtype=bool)
            k, n = int(values.sum()), int(values.size)
            low, high = wilson_interval(k, n, confidence)
            records.append({**dict(zip(by, key, strict=True)), "metric": metric, "successes": k,
                            "trials": n, "rate": k / n if n else math.nan, "ci_low": low,
                            "ci_high": high})
    return pd.DataFrame(records)


def success_by_steps(
    rows: pd.DataFrame,
    by: str | list[str] | tuple[str, ...] = (),
    success: tuple[str, ...] = ("success_last", "success_ergodic"),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Ergodic vs last-iterate success against the horizon T, from runs with several ``steps``.

    (The ergodic average at an earlier horizon needs the running sum of q, which rows do not
    store, so each horizon is its own run.) Same columns as :func:`success_table`.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows of runs with several ``steps`` (a ``steps`` column).
    by : str or sequence of str
        Grouping columns of ``rows`` (none: one group).
    success : tuple of str
        The success columns compared.
    confidence : float
        Two-sided coverage of the intervals, in (0, 1).

    Returns
    -------
    DataFrame
        :func:`success_table` grouped by ``by`` and ``steps``.
    """
    return success_table(rows, [*as_list(by), "steps"], success, confidence)


def success_vs_horizon(
    rows: pd.DataFrame,
    horizons: np.ndarray | list[int] | None = None,
    by: str | list[str] | tuple[str, ...] = ("n",),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Last-iterate and best-iterate success at horizons T' <= T from Hamming trajectories.

    Columns: the ``by`` columns, T, metric (success_last | success_best), successes, trials,
    rate, ci_low, ci_high (Wilson).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``hamming_trajectory`` (arrays of H_t, t = 0..T).
    horizons : array_like of int or None
        The horizons T' (steps; default :func:`~stelab.analysis.trajectories.horizon_grid`).
    by : str or sequence of str
        Grouping columns of ``rows`` (none: one group).
    confidence : float
        Two-sided coverage of the intervals, in (0, 1).

    Returns
    -------
    DataFrame
        One row per (group, T', metric); rate and its Wilson interval in [0, 1].

    Raises
    ------
    DataError
        No recorded trajectories, a ``by`` column missing, or a horizon outside 1..T.
    """
    by = as_list(by)
    long = per_horizon(rows, horizons, by)
    records = []
    for key, group in group_keys(long, [*by, "T"]):
        for metric in ("success_last", "success_best"):
            k, n = int(group[metric].sum()), len(group)
            low, high = wilson_interval(k, n, confidence)
            records.append({**dict(zip([*by, "T"], key, strict=True)), "metric": metric,
                            "successes": k, "trials": n, "rate": k / n, "ci_low": low,
                            "ci_high": high})
    return pd.DataFrame(records)


#: the fewest values a mean gets an interval from; below it the ends are nan ("too few"). With
#: k values not even the sample's whole range [min, max] covers the median of a continuous law
#: with 95% probability while 1 - 2^(1 - k) < 0.95, i.e. k < 6
MIN_SAMPLE = 6
_BOOT_CHUNK = 4_000_000  # resampled values held at once by the bootstrap


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    per_chunk = max(1, _BOOT_CHUNK // values.size)
    return np.concatenate([
        values[rng.integers(0, values.size, size=(min(per_chunk, n_boot - i), values.size))]
        .mean(1) for i in range(0, n_boot, per_chunk)
    ])


def mean_ci(
    values: np.ndarray,
    confidence: float = 0.95,
    method: Literal["bootstrap", "t"] = "bootstrap",
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high) of the finite ``values`` with a ``confidence`` interval of the mean.

    ``"bootstrap"`` (default): the percentile interval of ``n_boot`` bootstrap means (seeded by
    ``seed``, so a table is reproducible), widened where needed to contain the mean. Every
    bootstrap mean lies between the smallest and the largest value, so the interval stays
    inside the range of any bounded or count quantity (a Hamming distance, a rate in [0, 1],
    an accuracy). ``"t"``: mean +- t_{k-1} s / sqrt(k), which can leave a bounded range: only
    for unbounded quantities.

    Returns (nan, nan, nan) without a finite value, and nan ends with fewer than
    :data:`MIN_SAMPLE` values: too few for any interval (callers print that instead).

    Parameters
    ----------
    values : array_like, shape (k,), float
        The values (non-finite ones are left out).
    confidence : float
        Two-sided coverage, in (0, 1).
    method : {"bootstrap", "t"}
        The interval (above).
    n_boot : int
        Bootstrap replicates.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    (float, float, float)
        mean, low, high, in the units of ``values``.

    Raises
    ------
    DataError
        An unknown ``method``.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if values.size < MIN_SAMPLE:
        return (mean, math.nan, math.nan)
    if method == "t":
        from scipy.stats import t as student_t  # scipy.stats costs ~0.5 s to import

        half = float(student_t.ppf(0.5 + confidence / 2, values.size - 1)
                     * values.std(ddof=1) / math.sqrt(values.size))
        return (mean, mean - half, mean + half)
    if method == "bootstrap":
        means = _bootstrap_means(values, int(n_boot), np.random.default_rng(seed))
        tail = 100 * (1 - confidence) / 2
        low, high = np.percentile(means, [tail, 100 - tail])
        lo_v, hi_v = float(values.min()), float(values.max())
        # the percentiles of means in [min, max] stay there; float rounding of a mean of equal
        # values could step a hair outside, and the point estimate must be inside
        return (mean, *contain_estimate(max(float(low), lo_v), min(float(high), hi_v), mean))
    raise DataError(f"method: {method!r} is not known; allowed: bootstrap, t")


def mean_ci_by(
    rows: pd.DataFrame,
    value: str,
    by: str | list[str] | tuple[str, ...] = ("noise_level",),
    confidence: float = 0.95,
    method: Literal["bootstrap", "t"] = "bootstrap",
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean of ``value`` per group with a CI across trials (e.g. occupation vs noise level), by
    :func:`mean_ci` (bootstrap: inside the value's range; nan ends for fewer than
    :data:`MIN_SAMPLE` trials).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows.
    value : str
        The numeric column averaged.
    by : str or sequence of str
        Grouping columns of ``rows`` (none: one group).
    confidence : float
        Two-sided coverage of the intervals, in (0, 1).
    method, n_boot : str, int
        As for :func:`mean_ci`.
    seed : int
        Seed of group 0; group g uses ``seed + g``.

    Returns
    -------
    DataFrame
        The ``by`` columns, trials (int), mean, sd (ddof = 1; nan for one trial), ci_low,
        ci_high, in the units of ``value``.

    Raises
    ------
    DataError
        ``value`` or a ``by`` column missing from ``rows``, or an unknown ``method``.
    """
    by = as_list(by)
    if value not in rows:
        raise DataError(f"rows.{value}: column missing")
    records = []
    for g, (key, group) in enumerate(group_keys(rows, by)):
        values = group[value].to_numpy(dtype=float)
        mean, low, high = mean_ci(values, confidence, method, n_boot, seed + g)
        records.append({**dict(zip(by, key, strict=True)), "trials": int(values.size),
                        "mean": mean, "sd": float(values.std(ddof=1)) if values.size > 1
                        else math.nan, "ci_low": low, "ci_high": high})
    return pd.DataFrame(records)
