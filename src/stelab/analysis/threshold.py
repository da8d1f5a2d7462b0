"""Sample-complexity thresholds: P(success | n) = F(a + b log n) and n50 = exp(-a / b).

For one setting (one d, every other parameter fixed) the per-trial success indicators at the
grid values of n are grouped as k_j successes out of m_j trials at x_j = log n_j and fitted by

    maximize  l(beta) + 0.5 log det I(beta)            (Firth / Jeffreys penalty, the default)
    l(beta)  = sum_j k_j log F(eta_j) + (m_j - k_j) log(1 - F(eta_j)),  eta_j = a + b x_j
    I(beta)  = X^T W X,   W_j = m_j f(eta_j)^2 / (F(eta_j) (1 - F(eta_j)))

with F the logistic ("logit") or standard normal ("probit") CDF and f = F'. Without the penalty
the maximum-likelihood estimate does not exist under (quasi-)complete separation (every failure
at a smaller n than every success), which is common on coarse grids; the Jeffreys penalty keeps
the estimate finite and for the logit link is Firth's bias-reduced estimator. The score of the
penalized likelihood is

    U(beta) = sum_j x_j [ s_j + 0.5 h_j d(log W_j)/d eta_j ],   s_j = dl_j / d eta_j,
    h_j     = W_j x_j^T I^{-1} x_j   (hat values),

and it is solved by Fisher scoring beta <- beta + I^{-1} U with step halving on the penalized
likelihood, vectorized over bootstrap replicates.

Uncertainty: a nonparametric bootstrap, refitting each replicate data set; the interval is the
percentile interval of the replicate n50s. Three ways to draw the replicates (``bootstrap``):

* "clustered" (the default where each trial's trial index and run seed are known): the trials
  of one run share their random streams across every n (common random numbers,
  :mod:`stelab.seeds`), so a trial's successes at neighbouring n are dependent. The replicate
  resamples the units (run seed, trial index) with replacement within each run seed and takes
  every row of a drawn unit, at every n (:mod:`stelab.analysis.clustered`). Resampling trials
  independently at each n ignores that dependence: on the E1 grid at d = 16 (128 seeds) its
  s.d. of n50 was 0.72x the spread between runs with different seeds, the clustered one's 0.88x
  (bench/n50_seed_replication.py, docs/analysis.md). When every n has its own run seed, the
  clustered bootstrap is the per-n resampling below.
* "trials": trials resampled independently within each n: k*_j ~ Binomial(m_j, k_j / m_j)
  exactly, so the replicates are drawn that way. Right only when the trials at different n
  are independent (each n from its own run seed).
* "parametric": k*_j ~ Binomial(m_j, F(a + b x_j)) from the penalized fit (independent n).

Under separation every group has k_j in {0, m_j}, so both resampling bootstraps reproduce the
data in every replicate and would give a zero-width interval; ``bootstrap="auto"`` then switches
to the parametric bootstrap, and says so in the ``bootstrap`` field; otherwise "auto" is
"clustered" when the trials' units are given and "trials" when not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from stelab.analysis.binomial import Link, Penalty, cdf, fit_binomial_curves
from stelab.analysis.clustered import clustered_counts
from stelab.analysis.intervals import contain_estimate
from stelab.errors import DataError

Bootstrap = Literal["auto", "clustered", "trials", "parametric"]

BOOTSTRAPS = ("auto", "clustered", "trials", "parametric")
#: The row columns that identify a trial's random streams: (trial index, run seed).
UNIT_COLUMNS = ("trial", "seed")
# Config columns that must be constant within one threshold fit (n varies; trials/seed may).
SETTING_COLUMNS = (
    "d", "m", "activation", "teacher_balance", "distribution", "data_params", "normalization",
    "noise_kind", "noise_level", "steps", "ste", "ste_params", "weight_ste", "step_size", "init",
    "init_scale", "batch_size",
)


@dataclass
class ThresholdFit:
    """A fitted success curve P(success | n) = F(intercept + slope * log n) and its n50.

    ``n50`` is nan (with ``reason``) when it is not identified by the grid: no successes or no
    failures at all, a non-positive slope, a point estimate outside [min n, max n] (then
    ``n50_fit`` keeps the extrapolated value, for diagnostics only) or a failed fit.
    ``note`` flags a usable but special estimate (separated data). ``ci_low``/``ci_high`` are
    percentile bootstrap bounds, widened where needed to contain n50
    (:func:`~stelab.analysis.intervals.contain_estimate`), both in (0, inf) (nan without
    bootstrap, when n50 is not identified, or when more than the tail share of replicates has
    no n50). ``boot_n50`` holds the replicate n50s (nan for replicates without a positive,
    finite one), for the scaling-exponent bootstrap.

    Built by :func:`fit_threshold`. Units: ``n50``, its CI, ``n50_fit``, ``n_min`` and
    ``n_max`` in samples; ``slope`` per unit of log n; ``intercept`` on log n (not centred);
    ``boot_n50`` shape (n_boot,) float64 (empty without a bootstrap).
    """

    n50: float
    ci_low: float
    ci_high: float
    slope: float
    intercept: float
    link: str
    penalty: str
    confidence: float
    n_boot: int
    bootstrap: str
    n_boot_failed: int
    converged: bool
    boot_converged_share: float
    separated: bool
    identified: bool
    n50_fit: float
    n_min: float
    n_max: float
    n_points: int
    n_trials: int
    reason: str = ""
    note: str = ""
    boot_n50: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        """P(success) at sample size(s) n under the fitted curve."""
        eta = self.intercept + self.slope * np.log(np.asarray(n, dtype=float))
        return cdf(eta, self.link)

    def as_dict(self) -> dict[str, object]:
        """Scalar fields (and ``boot_n50``) as a flat dict, for a DataFrame row."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _separated(x: np.ndarray, k: np.ndarray, m: np.ndarray) -> bool:
    """Quasi-complete separation: every failure at an x <= every success's x (or reverse)."""
    has_fail, has_succ = k < m, k > 0
    if not has_fail.any() or not has_succ.any():
        return True
    up = x[has_fail].max() <= x[has_succ].min()
    down = x[has_succ].max() <= x[has_fail].min()
    return bool(up or down)


def fit_threshold(
    n: np.ndarray,
    success: np.ndarray,
    link: Link = "logit",
    penalty: Penalty = "firth",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    bootstrap: Bootstrap = "auto",
    *,
    cluster: np.ndarray | None = None,
    stratum: np.ndarray | None = None,
    cluster_seed: int | None = None,
) -> ThresholdFit:
    """Fit P(success | n) = F(a + b log n) to per-trial indicators; n50 = exp(-a/b) with a CI.

    Parameters
    ----------
    n : ndarray, shape (N,)
        Sample size of each trial (finite, > 0).
    success : ndarray, shape (N,), bool
        Whether each trial succeeded.
    link : {"logit", "probit"}
        F, the inverse link.
    penalty : {"firth", "none"}
        The likelihood penalty (:func:`fit_binomial_curves`).
    n_boot : int
        Bootstrap replicates for the CI (0 = none), drawn with
        ``numpy.random.default_rng(seed)``.
    confidence : float
        Two-sided coverage of the percentile CI, in (0, 1).
    seed : int
        Seed of the bootstrap.
    bootstrap : {"auto", "clustered", "trials", "parametric"}
        "clustered" resamples (run seed, trial) units jointly across every n (needs
        ``cluster``), "trials" resamples trials within each n, "parametric" redraws them from
        the fitted curve; "auto" is "parametric" for separated data, else "clustered" when
        ``cluster`` is given and "trials" when not (module docstring).
    cluster : ndarray, shape (N,), int, optional
        Each trial's trial index (its random streams, with its run seed), for the clustered
        bootstrap.
    stratum : ndarray, shape (N,), int, optional
        Each trial's run seed (default: one run); units are resampled within each.
    cluster_seed : int, optional
        Seed of the clustered draws (default ``seed``); fits given the same one draw shared
        units identically, so their replicates pair by index (:mod:`stelab.analysis.clustered`).

    Returns
    -------
    ThresholdFit
        ``n50`` (samples; nan with ``reason`` when the grid does not identify it), its CI
        ``ci_low``/``ci_high`` (percentile bounds of the replicate n50s, widened where needed
        to contain ``n50``; nan when not reported), the curve's
        ``intercept``/``slope`` (P = F(intercept + slope log n)) and the bootstrap's
        bookkeeping.

    Raises
    ------
    DataError
        Mismatched or empty arrays, non-positive n, an unknown link, penalty or bootstrap,
        "clustered" without ``cluster``, cluster or stratum values that are not integers >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> n = np.repeat([50, 100, 200, 400], 20)
    >>> success = np.tile(np.arange(20), 4) < np.repeat([2, 8, 14, 19], 20)
    >>> fit = fit_threshold(n, success, n_boot=0)
    >>> 100 < fit.n50 < 200, fit.slope > 0
    (True, True)
    """
    grid, m, k, point = _grouped(n, success, confidence, bootstrap)
    if bootstrap == "clustered" and cluster is None:
        raise DataError("cluster: the clustered bootstrap needs each trial's trial index "
                        "(and run seed as stratum); or use bootstrap='trials'")
    logn = np.log(grid)
    centre = float(logn.mean())
    x = logn - centre
    separated = _separated(x, k, m)
    if bootstrap == "auto":
        bootstrap = "parametric" if separated else ("trials" if cluster is None else "clustered")
    base = dict(
        link=link, penalty=penalty, confidence=confidence, n_boot=int(n_boot), bootstrap=bootstrap,
        n_min=float(grid[0]), n_max=float(grid[-1]), n_points=int(grid.size),
        n_trials=int(np.asarray(n).size), separated=separated,
    )
    if k.sum() == 0:
        return _empty(base, "no successes at any n: the grid does not reach the threshold "
                      "(n50 > max n)")
    if k.sum() == m.sum():
        return _empty(base, "all trials succeed at every n: the grid starts above the threshold "
                      "(n50 < min n)")
    if grid.size < 2:
        return _empty(base, "only one value of n: the slope is not identified")
    if penalty == "none" and base["separated"]:
        return _empty(base, "complete separation: the maximum-likelihood estimate does not "
                      "exist; use penalty='firth'")
    beta, conv = fit_binomial_curves(x, k[None, :], m, link, penalty)
    a_c, b = float(beta[0, 0]), float(beta[0, 1])
    fit_fields = dict(slope=b, intercept=a_c - b * centre, converged=bool(conv[0]))
    if not conv[0]:
        return _empty(base, "the fit did not converge", **fit_fields)
    if b <= 0:
        return _empty(base, "slope not positive: success does not increase with n", **fit_fields)
    try:
        n50_fit = math.exp(centre - a_c / b)
    except OverflowError:  # a slope near 0 puts n50 beyond any float
        n50_fit = math.inf
    note = ("separated data (no failure above a success in n): n50 is the penalized estimate "
            f"inside the gap; CI from the {bootstrap} bootstrap") if separated else ""
    reasons = []
    identified = grid[0] <= n50_fit <= grid[-1]
    if not identified:
        side = "below the smallest" if n50_fit < grid[0] else "above the largest"
        reasons.append(f"n50 extrapolated {side} n of the grid: not identified")
    boot = _BootN50(np.zeros(0), math.nan, math.nan, 0, math.nan, "")
    if n_boot > 0:
        if bootstrap == "clustered":
            units = (cluster, np.zeros(point.size, int) if stratum is None else stratum)
            kb, mb = clustered_counts(point, np.asarray(success, dtype=bool), *units, grid.size,
                                      int(n_boot), seed if cluster_seed is None else cluster_seed)
        else:
            p_boot = k / m if bootstrap == "trials" else cdf(a_c + b * x, link)
            rng = np.random.default_rng(seed)
            kb, mb = rng.binomial(m.astype(np.int64), p_boot, size=(int(n_boot), x.size)), m
        boot = _bootstrap_n50(x, kb, mb, centre, link, penalty, confidence)
        reasons += [boot.reason] if boot.reason else []
    ends = (boot.ci_low, boot.ci_high) if identified else (math.nan, math.nan)  # none if no n50
    ci_low, ci_high = contain_estimate(*ends, n50_fit)
    return ThresholdFit(
        n50=n50_fit if identified else math.nan, ci_low=ci_low, ci_high=ci_high,
        n_boot_failed=boot.n_failed, boot_converged_share=boot.converged_share,
        identified=identified, n50_fit=n50_fit, reason="; ".join(reasons), note=note,
        boot_n50=boot.values, **fit_fields, **base,
    )


def _grouped(n, success, confidence: float, bootstrap: str) -> tuple[np.ndarray, ...]:
    """fit_threshold's checks, then the grid of n with trials m and successes k at each, and
    each trial's index into the grid."""
    if bootstrap not in BOOTSTRAPS:
        raise DataError(f"bootstrap: {bootstrap!r} is not known; allowed: {', '.join(BOOTSTRAPS)}")
    n = np.asarray(n, dtype=float)
    success = np.asarray(success, dtype=bool)
    if n.shape != success.shape or n.ndim != 1:
        raise DataError("success: needs one indicator per trial, the same length as n")
    if n.size == 0:
        raise DataError("rows: no trials to fit a threshold to")
    if not (np.isfinite(n).all() and (n > 0).all()):
        raise DataError("n: sample sizes must be finite and positive")
    if not 0.0 < confidence < 1.0:
        raise DataError(f"confidence: {confidence} outside (0, 1)")
    grid, inverse = np.unique(n, return_inverse=True)
    m = np.bincount(inverse, minlength=grid.size).astype(float)
    k = np.bincount(inverse, weights=success.astype(float), minlength=grid.size)
    return grid, m, k, inverse.ravel()


def _empty(base: dict, reason: str, **extra) -> ThresholdFit:
    """A ThresholdFit without n50 (nan estimate and CI), saying why."""
    nan = math.nan
    fields = dict(n50=nan, ci_low=nan, ci_high=nan, slope=nan, intercept=nan, n_boot_failed=0,
                  converged=False, boot_converged_share=nan, identified=False, n50_fit=nan,
                  reason=reason)
    return ThresholdFit(**{**fields, **base, **extra})


@dataclass
class _BootN50:
    """The bootstrap of n50: replicate values, percentile ends, failures, why no CI."""

    values: np.ndarray
    ci_low: float
    ci_high: float
    n_failed: int
    converged_share: float
    reason: str


def _bootstrap_n50(
    x: np.ndarray, kb: np.ndarray, mb: np.ndarray, centre: float, link: str, penalty: str,
    confidence: float,
) -> _BootN50:
    """Refit the replicates (successes kb (B, J) of trials mb (J,) or (B, J)) and take the
    percentile ends of n50*."""
    n_boot = kb.shape[0]
    bb, cb = fit_binomial_curves(x, kb, mb, link, penalty)
    good = cb & (bb[:, 1] > 0)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        boot = np.where(good, np.exp(centre - bb[:, 0] / bb[:, 1]), math.nan)
    boot[~(np.isfinite(boot) & (boot > 0))] = math.nan  # exp over- or underflowed: no n50
    n_failed = int(np.isnan(boot).sum())
    tail = (1.0 - confidence) / 2.0
    if n_failed > tail * n_boot:
        return _BootN50(boot, math.nan, math.nan, n_failed, float(cb.mean()),
                        f"{n_failed}/{n_boot} bootstrap replicates have no n50: CI not reported")
    # a replicate without n50 counts as beyond either end (conservative)
    vals = np.sort(boot[~np.isnan(boot)])
    lo_rank = math.floor(tail * n_boot) - n_failed
    hi_rank = math.ceil((1.0 - tail) * n_boot) - 1
    ci_low = float(vals[max(lo_rank, 0)]) if lo_rank >= 0 else math.nan
    ci_high = float(vals[hi_rank]) if hi_rank < vals.size else math.nan
    return _BootN50(boot, ci_low, ci_high, n_failed, float(cb.mean()), "")


def check_fixed_setting(rows: pd.DataFrame, vary: tuple[str, ...] = ("n",)) -> None:
    """Raise DataError when a setting column other than ``vary`` takes several values."""
    for column in SETTING_COLUMNS:
        if column in rows and column not in vary and rows[column].nunique(dropna=False) > 1:
            values = sorted(map(str, rows[column].unique()))[:5]
            raise DataError(
                f"rows.{column}: several values {values} in one threshold fit; "
                f"group by {column!r} or filter the rows"
            )


def thresholds_by(
    rows: pd.DataFrame,
    by: str | list[str] | tuple[str, ...] = ("d",),
    success: str | list[str] | tuple[str, ...] = ("success_last", "success_ergodic"),
    link: Link = "logit",
    penalty: Penalty = "firth",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    bootstrap: Bootstrap = "auto",
    vary: tuple[str, ...] = (),
) -> pd.DataFrame:
    """One threshold fit per group of ``by`` and per success column.

    Returns one row per (group, success) with the group columns, ``success`` and every field of
    :class:`ThresholdFit` (``boot_n50`` as an array-valued column). Every setting column not in
    ``by`` or ``vary`` must be constant within a group (else DataError).

    Where the rows have ``trial`` and ``seed`` columns, "auto" uses the clustered bootstrap
    (the units are (seed, trial)). Its draws are seeded by ``seed`` and the run seed only, so a
    unit shared by several groups (same run seed and trial index, e.g. every d and n of one
    E1 run) is drawn identically in each: the replicates of different groups pair by index.
    The per-n draws ("trials", "parametric") use a seed per group (``seed`` + 1000 * group
    index + success index), so those groups are independent.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows: ``n``, the ``by`` columns and boolean success columns.
    by : str or sequence of str
        Grouping columns (one fit per group).
    success : str or sequence of str
        The success columns, one fit each.
    link, penalty, n_boot, confidence
        As for :func:`fit_threshold`.
    bootstrap : {"auto", "clustered", "trials", "parametric"}
        As for :func:`fit_threshold`; "clustered" needs the ``trial`` and ``seed`` columns.
    seed : int
        Base seed (above).
    vary : tuple of str
        Further setting columns allowed to vary within a group.

    Returns
    -------
    DataFrame
        One row per (group, success): the ``by`` columns, ``success`` and the
        :class:`ThresholdFit` fields (n50 and its CI in samples).

    Raises
    ------
    DataError
        A ``by`` column missing, a setting column not constant within a group, "clustered"
        without ``trial``/``seed`` columns, or the errors of :func:`fit_threshold`.
    """
    by = [by] if isinstance(by, str) else list(by)
    successes = [success] if isinstance(success, str) else list(success)
    missing = [c for c in by if c not in rows]
    if missing:
        raise DataError(f"by: column {missing[0]!r} not in rows")
    has_units = all(c in rows for c in UNIT_COLUMNS)
    if bootstrap == "clustered" and not has_units:
        raise DataError("rows.trial, rows.seed: the clustered bootstrap needs both columns; "
                        "or use bootstrap='trials'")
    records = []
    for g, (key, group) in enumerate(rows.groupby(by, sort=True)):
        key = key if isinstance(key, tuple) else (key,)
        for s_i, column in enumerate(successes):
            check_fixed_setting(group, vary=("n", *by, *vary))
            units = (dict(cluster=group["trial"].to_numpy(), stratum=group["seed"].to_numpy(),
                          cluster_seed=seed) if has_units else {})
            fit = fit_threshold(group["n"].to_numpy(), group[column].to_numpy(dtype=bool), link,
                                penalty, n_boot, confidence, seed + 1000 * g + s_i, bootstrap,
                                **units)
            records.append({**dict(zip(by, key, strict=True)), "success": column,
                            **fit.as_dict()})
    return pd.DataFrame(records)
