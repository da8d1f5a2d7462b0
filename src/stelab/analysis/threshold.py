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

Uncertainty: a nonparametric bootstrap over trials within each n ("trials"). Resampling m_j
trials with replacement from the observed ones gives k*_j ~ Binomial(m_j, k_j / m_j) exactly, so
the replicates are drawn that way. The interval is the percentile interval of the replicate n50s.
Under separation every group has k_j in {0, m_j}, so that bootstrap reproduces the data in every
replicate and would give a zero-width interval; ``bootstrap="auto"`` then switches to the
parametric bootstrap k*_j ~ Binomial(m_j, F(a + b x_j)) from the penalized fit, and says so in
the ``bootstrap`` field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import expit, log_ndtr, ndtr

from stelab.analysis.intervals import contain_estimate
from stelab.errors import DataError

Link = Literal["logit", "probit"]
Penalty = Literal["firth", "none"]
Bootstrap = Literal["auto", "trials", "parametric"]

LINKS = ("logit", "probit")
PENALTIES = ("firth", "none")
BOOTSTRAPS = ("auto", "trials", "parametric")
# Config columns that must be constant within one threshold fit (n varies; trials/seed may).
SETTING_COLUMNS = (
    "d", "m", "activation", "teacher_balance", "distribution", "data_params", "normalization",
    "noise_kind", "noise_level", "steps", "ste", "ste_params", "weight_ste", "step_size", "init",
    "init_scale", "batch_size",
)
_ETA_CLIP = 30.0
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


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
        return _cdf(eta, self.link)

    def as_dict(self) -> dict[str, object]:
        """Scalar fields (and ``boot_n50``) as a flat dict, for a DataFrame row."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _cdf(eta: np.ndarray, link: str) -> np.ndarray:
    return expit(eta) if link == "logit" else ndtr(eta)


def _link_terms(eta: np.ndarray, k: np.ndarray, m: np.ndarray, link: str):
    """Per point: log-likelihood, score s = dl/deta, weight W and dlogW/deta."""
    if link == "logit":
        log_f = -np.logaddexp(0.0, -eta)  # log F
        log_1mf = -np.logaddexp(0.0, eta)  # log (1 - F)
        p = expit(eta)
        s = k - m * p
        w = m * p * (1.0 - p)
        dlogw = 1.0 - 2.0 * p
    else:
        log_f = log_ndtr(eta)
        log_1mf = log_ndtr(-eta)
        log_dens = -0.5 * eta * eta - _LOG_SQRT_2PI
        r_hi = np.exp(log_dens - log_f)  # f / F
        r_lo = np.exp(log_dens - log_1mf)  # f / (1 - F)
        s = k * r_hi - (m - k) * r_lo
        w = m * np.exp(2.0 * log_dens - log_f - log_1mf)
        dlogw = -2.0 * eta - r_hi + r_lo
    loglik = k * log_f + (m - k) * log_1mf
    return loglik, s, w, dlogw


def _objective_parts(beta, x, k, m, link, firth):
    eta = np.clip(beta[:, :1] + beta[:, 1:] * x, -_ETA_CLIP, _ETA_CLIP)
    loglik, s, w, dlogw = _link_terms(eta, k, m, link)
    i00, i01, i11 = w.sum(1), (w * x).sum(1), (w * x * x).sum(1)
    det = i00 * i11 - i01 * i01
    with np.errstate(divide="ignore", invalid="ignore"):
        obj = loglik.sum(1) + (0.5 * np.log(det) if firth else 0.0)
    return obj, s, w, dlogw, (i00, i01, i11, det)


def fit_binomial_curves(
    x: np.ndarray,
    k: np.ndarray,
    m: np.ndarray,
    link: Link = "logit",
    penalty: Penalty = "firth",
    max_iter: int = 200,
    tol: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit F(a + b x) to B binomial data sets at once (penalized maximum likelihood).

    Parameters
    ----------
    x : ndarray, shape (J,), float
        The covariate (here log n, centred).
    k : ndarray, shape (B, J), float
        Successes of each data set at each x.
    m : ndarray, shape (J,), float
        Trials at each x.
    link : {"logit", "probit"}
        F, the inverse link.
    penalty : {"firth", "none"}
        Firth's bias-reducing penalty (finite estimates for separated data) or none.
    max_iter, tol : int, float
        Newton iterations at most, and the step size at which a fit has converged.

    Returns
    -------
    beta : ndarray, shape (B, 2), float64
        Columns a (intercept) and b (slope).
    converged : ndarray, shape (B,), bool
        False for non-finite or singular fits.
    """
    if link not in LINKS:
        raise DataError(f"link: {link!r} is not known; allowed: {', '.join(LINKS)}")
    if penalty not in PENALTIES:
        raise DataError(f"penalty: {penalty!r} is not known; allowed: {', '.join(PENALTIES)}")
    firth = penalty == "firth"
    x = np.asarray(x, dtype=float)[None, :]
    k = np.atleast_2d(np.asarray(k, dtype=float))
    m = np.asarray(m, dtype=float)[None, :]
    n_sets = k.shape[0]
    beta = np.zeros((n_sets, 2))
    active = np.ones(n_sets, dtype=bool)
    converged = np.zeros(n_sets, dtype=bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        b, kk = beta[idx], k[idx]
        obj, s, w, dlogw, (i00, i01, i11, det) = _objective_parts(b, x, kk, m, link, firth)
        ok = np.isfinite(det) & (det > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv00, inv01, inv11 = i11 / det, -i01 / det, i00 / det
            resid = s
            if firth:
                hat = w * (inv00[:, None] + 2.0 * inv01[:, None] * x + inv11[:, None] * x * x)
                resid = s + 0.5 * hat * dlogw
            u0, u1 = resid.sum(1), (resid * x).sum(1)
            step = np.stack([inv00 * u0 + inv01 * u1, inv01 * u0 + inv11 * u1], axis=1)
        ok &= np.isfinite(step).all(1)
        # cap the step: scoring can overshoot badly far from the optimum
        size = np.abs(step).max(1)
        step *= np.minimum(1.0, 5.0 / np.maximum(size, 1e-300))[:, None]
        # step halving: accept the first fraction that does not lower the objective
        new = b + step
        frac = np.ones(idx.size)
        for _half in range(30):
            new_obj = _objective_parts(new, x, kk, m, link, firth)[0]
            worse = ~(new_obj >= obj - 1e-12 * np.abs(obj)) & ok
            if not worse.any():
                break
            frac[worse] *= 0.5
            new[worse] = b[worse] + frac[worse, None] * step[worse]
        beta[idx] = np.where(ok[:, None], new, b)
        done = ok & (np.abs(step * frac[:, None]).max(1) < tol)
        converged[idx[done]] = True
        active[idx[done | ~ok]] = False
    return beta, converged


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
    bootstrap : {"auto", "trials", "parametric"}
        "trials" resamples trials within each n, "parametric" redraws them from the fitted
        curve, "auto" is "trials" unless the data are separated (module docstring).

    Returns
    -------
    ThresholdFit
        ``n50`` (samples; nan with ``reason`` when the grid does not identify it), its CI
        ``ci_low``/``ci_high`` (percentile bounds of the replicate n50s, widened where needed
        to contain ``n50``; nan when not reported), the curve's
        ``intercept``/``slope`` (on log n, centred) and the bootstrap's bookkeeping.

    Raises
    ------
    DataError
        Mismatched or empty arrays, non-positive n, an unknown link, penalty or bootstrap.

    Examples
    --------
    >>> import numpy as np
    >>> n = np.repeat([50, 100, 200, 400], 20)
    >>> success = np.tile(np.arange(20), 4) < np.repeat([2, 8, 14, 19], 20)
    >>> fit = fit_threshold(n, success, n_boot=0)
    >>> 100 < fit.n50 < 200, fit.slope > 0
    (True, True)
    """
    grid, m, k = _grouped(n, success, confidence, bootstrap)
    logn = np.log(grid)
    centre = float(logn.mean())
    x = logn - centre
    separated = _separated(x, k, m)
    if bootstrap == "auto":
        bootstrap = "parametric" if separated else "trials"
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
        p_boot = k / m if bootstrap == "trials" else _cdf(a_c + b * x, link)
        boot = _bootstrap_n50(x, m, p_boot, centre, link, penalty, int(n_boot), confidence, seed)
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
    """fit_threshold's checks, then the grid of n with trials m and successes k at each."""
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
    return grid, m, k


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
    x: np.ndarray, m: np.ndarray, p_boot: np.ndarray, centre: float, link: str, penalty: str,
    n_boot: int, confidence: float, seed: int,
) -> _BootN50:
    """Redraw k*_j ~ Binomial(m_j, p_boot_j), refit, and take the percentile ends of n50*."""
    rng = np.random.default_rng(seed)
    kb = rng.binomial(m.astype(np.int64), p_boot, size=(n_boot, x.size))
    bb, cb = fit_binomial_curves(x, kb, m, link, penalty)
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
    ``by`` or ``vary`` must be constant within a group (else DataError). Each group gets its own
    seed (``seed`` + 1000 * group index + success index) so groups are independent.
    """
    by = [by] if isinstance(by, str) else list(by)
    successes = [success] if isinstance(success, str) else list(success)
    missing = [c for c in by if c not in rows]
    if missing:
        raise DataError(f"by: column {missing[0]!r} not in rows")
    records = []
    for g, (key, group) in enumerate(rows.groupby(by, sort=True)):
        key = key if isinstance(key, tuple) else (key,)
        for s_i, column in enumerate(successes):
            check_fixed_setting(group, vary=("n", *by, *vary))
            fit = fit_threshold(group["n"].to_numpy(), group[column].to_numpy(dtype=bool), link,
                                penalty, n_boot, confidence, seed + 1000 * g + s_i, bootstrap)
            records.append({**dict(zip(by, key, strict=True)), "success": column,
                            **fit.as_dict()})
    return pd.DataFrame(records)
