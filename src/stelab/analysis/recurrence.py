"""Recurrence of the optimum under label noise, from Hamming trajectories H_0..H_T.

Per trial (iterates t = 1..T, as in :mod:`stelab.outcomes`):

* excursion  : a completed run of H > 0 between two visits of H = 0 (length L steps)
* return time: L + 1, the steps from the last visit before an excursion to the next visit
* sojourn    : a run of H = 0
* n_returns  : number of completed excursions (= entries into 0 after the first hit)
* occupation : share of t in 1..T with H_t = 0

The last excursion of a trial that ends away from 0 is censored (not completed) and is not in
the distributions; ``censored`` counts it, so long excursions are under-represented when T is
short. Growth of returns with T: per trial the least-squares slope of the cumulative count
R(t) over a window of t (returns per step), averaged over trials with a Student-t CI; a late
window rate whose CI excludes 0 means the returns keep happening (neither absorbed nor lost).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stelab.analysis.proportions import wilson_interval
from stelab.analysis.tables import as_list, mean_ci
from stelab.analysis.trajectories import group_keys, horizon_stats, per_horizon, trajectories
from stelab.errors import DataError
from stelab.outcomes import zero_visit_runs

KINDS = ("return_time", "excursion", "sojourn")


def trial_recurrence(h: np.ndarray) -> dict[str, object]:
    """Recurrence statistics of one trajectory h = (H_0, ..., H_T).

    Returns a dict with arrays ``excursions``, ``return_times``, ``sojourns`` and scalars
    ``n_returns``, ``n_visits`` (steps at 0), ``occupation``, ``first_hit_step`` (-1 if none),
    ``censored`` (1 if the trial ends in an excursion after having visited 0), ``T``.

    Parameters
    ----------
    h : ndarray, shape (T + 1,), int
        Hamming distances H_t, t = 0..T, T >= 1.

    Returns
    -------
    dict of str to object
        As above; lengths in steps (int arrays), occupation a float in [0, 1].

    Raises
    ------
    DataError
        ``h`` not 1-d or T < 1.

    Examples
    --------
    >>> r = trial_recurrence(np.array([3, 0, 0, 2, 1, 0, 4]))
    >>> r["n_returns"], r["occupation"], r["first_hit_step"], r["censored"]
    (1, 0.5, 1, 1)
    """
    h = np.asarray(h)
    if h.ndim != 1 or h.size < 2:
        raise DataError("hamming_trajectory: needs a 1-d array H_0..H_T with T >= 1")
    excursions, sojourns = zero_visit_runs(h)
    at = h[1:] == 0
    visits = int(at.sum())
    return {
        "T": int(h.size - 1),
        "excursions": excursions,
        "return_times": excursions + 1,
        "sojourns": sojourns,
        "n_returns": int(excursions.size),
        "n_visits": visits,
        "occupation": visits / at.size,
        "first_hit_step": int(np.argmax(at)) + 1 if visits else -1,
        "censored": int(visits > 0 and not at[-1]),
    }


def recurrence_table(
    rows: pd.DataFrame,
    keep: tuple[str, ...] = ("d", "n", "steps", "noise_kind", "noise_level", "trial"),
) -> pd.DataFrame:
    """One row per trial row: the ``keep`` columns present plus n_returns, n_visits, occupation,
    first_hit_step, censored, mean/median return time, mean/max excursion (nan if none).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``hamming_trajectory`` (arrays H_0..H_T, int).
    keep : tuple of str
        Columns copied from ``rows`` where present.

    Returns
    -------
    DataFrame
        One row per trial row; times and lengths in steps.

    Raises
    ------
    DataError
        No recorded trajectory, a trajectory shorter than two values, or a ``by`` column
        missing.
    """
    records = []
    for h in trajectories(rows):
        s = trial_recurrence(h)
        rt, ex = s["return_times"], s["excursions"]
        records.append({
            "T": s["T"], "n_returns": s["n_returns"], "n_visits": s["n_visits"],
            "occupation": s["occupation"], "first_hit_step": s["first_hit_step"],
            "censored": s["censored"],
            "mean_return_time": float(rt.mean()) if rt.size else math.nan,
            "median_return_time": float(np.median(rt)) if rt.size else math.nan,
            "mean_excursion": float(ex.mean()) if ex.size else math.nan,
            "max_excursion": int(ex.max()) if ex.size else 0,
        })
    table = pd.DataFrame(records, index=rows.index)
    front = rows[[c for c in keep if c in rows]]
    return pd.concat([front, table], axis=1)


def return_time_distribution(
    rows: pd.DataFrame, by: str | list[str] | tuple[str, ...] = ("noise_level",)
) -> pd.DataFrame:
    """Pooled lengths, long format: the ``by`` columns, trial (if present), row, kind
    (return_time | excursion | sojourn), length.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``hamming_trajectory`` (arrays H_0..H_T, int).
    by : str or sequence of str
        Grouping columns.

    Returns
    -------
    DataFrame
        One row per completed return time, excursion or sojourn; ``length`` in steps.

    Raises
    ------
    DataError
        No recorded trajectory, a trajectory shorter than two values, or a ``by`` column
        missing.
    """
    by = as_list(by)
    for column in by:
        if column not in rows:
            raise DataError(f"by: column {column!r} not in rows")
    kinds, lengths, owners = [], [], []
    for pos, h in enumerate(trajectories(rows)):
        s = trial_recurrence(h)
        for kind, key in zip(KINDS, ("return_times", "excursions", "sojourns"), strict=True):
            kinds.append(np.full(s[key].size, kind))
            lengths.append(s[key])
            owners.append(np.full(s[key].size, pos))
    pos = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    table = pd.DataFrame({col: rows[col].to_numpy()[pos] for col in [*by, "trial"] if col in rows})
    table["row"] = rows.index.to_numpy()[pos]
    table["kind"] = np.concatenate(kinds) if kinds else np.zeros(0, dtype=str)
    table["length"] = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    return table


def return_time_summary(
    rows: pd.DataFrame,
    by: str | list[str] | tuple[str, ...] = ("noise_level",),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per group and kind: count, trials_with_any, mean (with a bootstrap CI over the per-trial
    means, so correlated lengths within a trial are not counted as independent), median, q90,
    max.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``hamming_trajectory`` (arrays H_0..H_T, int).
    by : str or sequence of str
        Grouping columns.
    confidence : float
        Two-sided coverage of the intervals, in (0, 1).

    Returns
    -------
    DataFrame
        One row per (group, kind); lengths in steps.

    Raises
    ------
    DataError
        No recorded trajectory, a trajectory shorter than two values, or a ``by`` column
        missing.
    """
    by = as_list(by)
    dist = return_time_distribution(rows, by)
    trials_per_group = {k: len(g) for k, g in group_keys(rows, by)}
    records = []
    for key, _group in group_keys(rows, by):
        sub = dist
        for col, value in zip(by, key, strict=True):
            sub = sub[sub[col] == value]
        for kind in KINDS:
            lengths = sub[sub["kind"] == kind]
            per_trial = lengths.groupby("row")["length"].mean().to_numpy(dtype=float)
            mean, low, high = mean_ci(per_trial, confidence)
            vals = lengths["length"].to_numpy(dtype=float)
            records.append({
                **dict(zip(by, key, strict=True)), "kind": kind, "count": int(vals.size),
                "trials": trials_per_group[key], "trials_with_any": int(per_trial.size),
                "mean_of_trial_means": mean, "ci_low": low, "ci_high": high,
                "pooled_mean": float(vals.mean()) if vals.size else math.nan,
                "median": float(np.median(vals)) if vals.size else math.nan,
                "q90": float(np.quantile(vals, 0.9)) if vals.size else math.nan,
                "max": float(vals.max()) if vals.size else math.nan,
            })
    return pd.DataFrame(records)


def returns_vs_horizon(
    rows: pd.DataFrame,
    horizons: np.ndarray | list[int] | None = None,
    by: str | list[str] | tuple[str, ...] = ("noise_level",),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Mean number of returns (and occupation) up to each horizon T, with bootstrap CIs across
    trials (inside the range of each).

    Columns: the ``by`` columns, T, trials, returns_mean, returns_ci_low, returns_ci_high,
    occupation_mean, occupation_ci_low, occupation_ci_high, share_hit (best-iterate success).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``hamming_trajectory`` (arrays H_0..H_T, int).
    horizons : array_like of int or None
        The horizons T' (steps; default
        :func:`~stelab.analysis.trajectories.horizon_grid` of the longest trajectory).
    by : str or sequence of str
        Grouping columns.
    confidence : float
        Two-sided coverage of the intervals, in (0, 1).

    Returns
    -------
    DataFrame
        The columns above, one row per (group, T'); occupation and share_hit in [0, 1].

    Raises
    ------
    DataError
        No recorded trajectory, a ``by`` column missing, or a horizon outside 1..T.
    """
    by = as_list(by)
    long = per_horizon(rows, horizons, by)
    records = []
    for key, group in group_keys(long, [*by, "T"]):
        r_mean, r_lo, r_hi = mean_ci(group["n_returns"].to_numpy(dtype=float), confidence)
        o_mean, o_lo, o_hi = mean_ci(group["occupation"].to_numpy(dtype=float), confidence)
        records.append({**dict(zip([*by, "T"], key, strict=True)), "trials": len(group),
                        "returns_mean": r_mean, "returns_ci_low": r_lo, "returns_ci_high": r_hi,
                        "occupation_mean": o_mean, "occupation_ci_low": o_lo,
                        "occupation_ci_high": o_hi,
                        "share_hit": float(group["success_best"].mean())})
    return pd.DataFrame(records)


def _window_slopes(counts: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Least-squares slope of counts[:, t-1] on t over t = lo..hi (per row)."""
    t = np.arange(lo, hi + 1, dtype=float)
    y = counts[:, lo - 1 : hi].astype(float)
    tc = t - t.mean()
    denom = float(tc @ tc)
    if denom == 0:
        return np.full(counts.shape[0], math.nan)
    return (y - y.mean(1, keepdims=True)) @ tc / denom


def return_growth(
    rows: pd.DataFrame,
    by: str | list[str] | tuple[str, ...] = ("noise_level",),
    window: float = 0.5,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Do returns keep happening as T grows? Per group: the rate of returns (slope of R(t))
    in the early part (t <= (1 - window) T) and in the late window (the last ``window`` share of
    the steps), each averaged over trials with a bootstrap CI, and the share of trials with at
    least one return in the late window (Wilson CI). ``keeps_returning`` = the late rate's CI
    is above 0.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``hamming_trajectory`` (arrays H_0..H_T, int).
    by : str or sequence of str
        Grouping columns.
    window : float
        The late share of the steps, in (0, 1).
    confidence : float
        Two-sided coverage of the intervals, in (0, 1).

    Returns
    -------
    DataFrame
        One row per group; rates in returns per step.

    Raises
    ------
    DataError
        ``window`` outside (0, 1), trajectories of several lengths in one group, or the
        trajectory and ``by`` errors of :func:`recurrence_table`.
    """
    by = as_list(by)
    if not 0.0 < window < 1.0:
        raise DataError(f"window: {window} outside (0, 1)")
    records = []
    for key, group in group_keys(rows, by):
        paths = trajectories(group)
        lengths = {p.size - 1 for p in paths}
        if len(lengths) > 1:
            raise DataError("rows.steps: trajectories of several lengths in one group; add "
                            "'steps' to by")
        T = lengths.pop()
        counts = horizon_stats(np.stack(paths), np.arange(1, T + 1))["n_returns"]
        split = max(1, int(round((1.0 - window) * T)))
        late = _window_slopes(counts, split, T) if T - split >= 1 else np.full(len(paths), np.nan)
        early = _window_slopes(counts, 1, split) if split >= 2 else np.full(len(paths), np.nan)
        late_mean, late_lo, late_hi = mean_ci(late, confidence)
        early_mean, early_lo, early_hi = mean_ci(early, confidence)
        in_late = counts[:, -1] - counts[:, split - 1] > 0
        k = int(in_late.sum())
        share_lo, share_hi = wilson_interval(k, in_late.size, confidence)
        final_mean, final_lo, final_hi = mean_ci(counts[:, -1], confidence)
        records.append({
            **dict(zip(by, key, strict=True)), "trials": len(paths), "T": T,
            "late_from_step": split, "returns_mean": final_mean, "returns_ci_low": final_lo,
            "returns_ci_high": final_hi, "early_rate": early_mean, "early_rate_ci_low": early_lo,
            "early_rate_ci_high": early_hi, "late_rate": late_mean, "late_rate_ci_low": late_lo,
            "late_rate_ci_high": late_hi, "share_returning_late": k / in_late.size,
            "share_ci_low": share_lo, "share_ci_high": share_hi,
            "keeps_returning": bool(np.isfinite(late_lo) and late_lo > 0),
        })
    return pd.DataFrame(records)
