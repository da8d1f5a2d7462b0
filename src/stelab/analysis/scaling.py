"""How the threshold n50 grows with d: power law, d, d log d, and the shapes d^2, d^2 log d, d^4.

Models, all fitted by least squares in log space over the d whose n50 is identified (and
d >= ``d_min`` where given):

    "power"    :  log n50 = log C + alpha log d                (2 parameters)
    "d^k"      :  log n50 = log C + k log d, k fixed           (1 parameter; "d" is "d^1")
    "d^klogd"  :  log n50 = log C + k log d + log log d        (1 parameter; "dlogd" is "d^1logd")

e.g. "d", "dlogd", "d^2", "d^2logd", "d^4", "d^1.5". ``alpha`` is the exponent: fitted for
"power", k for "d^k", nan for the log shapes (no single exponent).

Uncertainty by a two-level bootstrap: each replicate draws, for every d independently, one of
that d's bootstrap n50 replicates (from :func:`~stelab.analysis.threshold.thresholds_by`) and
refits; the percentile interval of the refitted alpha (or C) is reported, widened where needed
to contain the point estimate (lo = min(lo, est), hi = max(hi, est); the replicates need not
centre on the estimate, e.g. when a d's n50 bootstrap is parametric). A weighted
least-squares fit with weights 1 / Var(log n50_d) (bootstrap variances) and its delta-method
standard error is reported alongside for the power law.

Goodness of fit: RSS = sum_d (log n50_d - fitted)^2 and, with Gaussian errors in log space,
AIC = N log(RSS / N) + 2 (k + 1) and AICc = AIC + 2 (k + 1)(k + 2) / (N - k - 2), with k the
number of curve parameters (the +1 counts the error variance). The points are weighted equally.
Lack of fit, with the bootstrap variances taken as known: chi2 = min over the curve's parameters
of sum_d (log n50_d - fitted_d)^2 / Var(log n50_d) (the weighted least-squares fit, whose slope
is ``wls_alpha``) against chi2_{N - k}; the matching criterion is AIC_w = chi2 + 2 k (``aic_w``,
``aicc_w`` = AIC_w + 2 k (k + 1) / (N - k - 1); the log-likelihood's constant dropped), which
:func:`compare_scaling_models` also compares (``delta_aic_w``). A small lack-of-fit
p-value means the model's shape does not fit within the sampling noise of the thresholds (then
the bootstrap CI of alpha, which reflects only that noise, is too narrow as a statement about the
"true exponent"; see :func:`~stelab.analysis.exponents.local_exponents` for how the slope
drifts with d).

The bounds d^2 and d^4 (C1, C2 of the paper) are upper bounds:
:func:`~stelab.analysis.exponents.reference_curve` draws their *shape* through an anchor point
and :func:`~stelab.analysis.exponents.reference_ratios` tabulates n50 / d^k.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stelab.analysis.intervals import contain_estimate
from stelab.errors import DataError

_SHAPE = re.compile(r"^d(?:\^(\d+(?:\.\d+)?))?(logd)?$")
_ALLOWED = "power, d^<k> or d^<k>logd (e.g. d, dlogd, d^2, d^2logd)"
#: The candidate laws of the pooled comparison (issue 21): a d^alpha, a d, a d ln d, a d^2,
#: a d^2 ln d.
LAW_MODELS = ("power", "d", "dlogd", "d^2", "d^2logd")


@dataclass
class ScalingFit:
    """A fitted model n50(d) = C g(d); ``alpha`` is the exponent (fixed for the d^k shapes).

    Built by :func:`fit_scaling`. ``C`` and its CI are in samples; ``alpha`` and the
    ``wls_alpha`` slope are dimensionless; ``rss_log`` is on log n50; ``aic_w``/``aicc_w`` are
    the AIC with the bootstrap variances known (module docstring); ``boot_alpha``/``boot_C``
    hold the bootstrap replicates (shape (n_boot,), float64; empty without a bootstrap);
    ``reason`` says what was left out or not reported.
    """

    model: str
    alpha: float
    alpha_ci_low: float
    alpha_ci_high: float
    C: float
    C_ci_low: float
    C_ci_high: float
    rss_log: float
    aic: float
    aicc: float
    n_params: int
    n_points: int
    d_min: float
    d_max: float
    wls_alpha: float
    wls_alpha_se: float
    lack_of_fit_chi2: float
    lack_of_fit_p: float
    confidence: float
    n_boot: int
    aic_w: float = math.nan
    aicc_w: float = math.nan
    reason: str = ""
    boot_alpha: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    boot_C: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def predict(self, d: np.ndarray | float) -> np.ndarray:
        """n50 predicted at dimension(s) d."""
        return self.C * shape_values(np.asarray(d, dtype=float), self.model, self.alpha)

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def parse_shape(model: str) -> tuple[float, bool]:
    """(k, with log d) of a fixed shape "d^k" / "d^klogd" ("d" is k = 1; DataError otherwise).

    Examples
    --------
    >>> parse_shape("d^2logd"), parse_shape("d"), parse_shape("dlogd")
    ((2.0, True), (1.0, False), (1.0, True))
    """
    match = _SHAPE.match(model) if isinstance(model, str) else None
    if not match:
        raise DataError(f"model: {model!r} is not known; allowed: {_ALLOWED}")
    return float(match.group(1) or 1.0), bool(match.group(2))


def shape_values(d: np.ndarray, model: str, alpha: float = math.nan) -> np.ndarray:
    """g(d) of a model: d^alpha ("power"), d^k ("d^k", "d") or d^k log d ("d^klogd", "dlogd")."""
    d = np.asarray(d, dtype=float)
    if model == "power":
        return d**alpha
    k, with_log = parse_shape(model)
    return d**k * np.log(d) if with_log else d**k


def _fixed_exponent(model: str) -> float:
    """k of "d^k"; nan for "power" and the log shapes (no single exponent)."""
    if model == "power":
        return math.nan
    k, with_log = parse_shape(model)
    return math.nan if with_log else k


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of the finite ``values`` ((nan, nan) without one)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return (float(low), float(high))


def usable_thresholds(thresholds: pd.DataFrame, d_column: str) -> pd.DataFrame:
    """The rows with an identified n50 and d > 1, sorted by d (DataError: not one notion's
    thresholds_by output)."""
    for column in (d_column, "n50"):
        if column not in thresholds:
            raise DataError(f"thresholds.{column}: column missing (use thresholds_by output)")
    if "success" in thresholds and thresholds["success"].nunique() > 1:
        raise DataError("thresholds.success: several success notions; filter to one or use "
                        "scaling_by")
    if thresholds[d_column].duplicated().any():
        raise DataError(f"thresholds.{d_column}: repeated values; one threshold per d is needed")
    ok = np.isfinite(thresholds["n50"].to_numpy(dtype=float)) & (thresholds[d_column] > 1)
    return thresholds[ok].sort_values(d_column)


def fit_scaling(
    thresholds: pd.DataFrame,
    model: str = "power",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    d_column: str = "d",
    d_min: float | None = None,
) -> ScalingFit:
    """Fit n50(d) = C g(d) (see the module docstring) to one success notion's thresholds.

    Parameters
    ----------
    thresholds : pandas.DataFrame
        One row per d: columns ``d`` (or ``d_column``), ``n50`` (samples) and, for the CI,
        ``boot_n50`` (arrays of replicate n50s, :func:`fit_threshold`). Rows with nan n50
        (not identified) are left out and the fit says so in ``reason``.
    model : str
        The shape g(d): ``"power"`` (d^alpha, alpha fitted), ``"d^k"`` (k fixed, e.g.
        ``"d"``, ``"d^2"``) or ``"d^klogd"`` (d^k log d, e.g. ``"dlogd"``, ``"d^2logd"``)
        (module docstring, :func:`shape_values`).
    n_boot : int
        Bootstrap replicates for the CIs of alpha and C.
    confidence : float
        Two-sided coverage of the CIs, in (0, 1).
    seed : int
        Seed of the bootstrap.
    d_column : str
        The column holding d.
    d_min : float, optional
        Fit only the d >= d_min (default: every d).

    Returns
    -------
    ScalingFit
        ``alpha`` (the exponent, with ``alpha_ci_low``/``alpha_ci_high``), ``C`` (samples,
        with its CI; both CIs contain their estimate), the fit's residual sum of squares on
        log n50, AIC/AICc, a weighted least-squares slope with its standard error, a
        lack-of-fit test and the weighted AIC_w/AICc_w.

    Raises
    ------
    DataError
        An unknown model, a non-finite ``d_min`` or an unusable thresholds table.
    """
    shape_values(np.ones(1) * 2.0, model, 1.0)  # validates the model name
    usable = usable_thresholds(thresholds, d_column)
    pool = len(thresholds)
    if d_min is not None:
        if not math.isfinite(float(d_min)):
            raise DataError(f"d_min: {d_min} is not a finite dimension")
        pool = int((thresholds[d_column] >= d_min).sum())
        usable = usable[usable[d_column] >= d_min]
    n_params = 2 if model == "power" else 1
    left_out = pool - len(usable)
    reasons = [f"{left_out} d value(s) without identified n50 left out"] if left_out else []
    d = usable[d_column].to_numpy(dtype=float)
    y = np.log(usable["n50"].to_numpy(dtype=float))
    nan = math.nan
    common = dict(model=model, n_params=n_params, n_points=int(d.size), confidence=confidence,
                  n_boot=int(n_boot), d_min=float(d.min()) if d.size else nan,
                  d_max=float(d.max()) if d.size else nan)
    if d.size < n_params or (model == "power" and np.unique(d).size < 2):
        reasons.append(f"{d.size} identified point(s): too few for model {model!r}")
        return ScalingFit(alpha=_fixed_exponent(model), alpha_ci_low=nan, alpha_ci_high=nan,
                          C=nan, C_ci_low=nan, C_ci_high=nan, rss_log=nan, aic=nan, aicc=nan,
                          wls_alpha=nan, wls_alpha_se=nan, lack_of_fit_chi2=nan,
                          lack_of_fit_p=nan, reason="; ".join(reasons), **common)
    log_c, alpha = _solve(y[None, :], d, model)
    log_c, alpha = float(log_c[0]), float(alpha[0])
    fitted = log_c + np.log(shape_values(d, model, alpha))
    rss, aic, aicc = _goodness(y, fitted, n_params, reasons)
    pools = _log_replicates(usable)
    if n_boot > 0 and len(pools) == d.size and all(p.size > 1 for p in pools):
        boot = _bootstrap_scaling(d, y, pools, model, n_boot, confidence, seed)
        a_lo, a_hi = contain_estimate(boot["alpha_ci_low"], boot.pop("alpha_ci_high"), alpha)
        c_lo, c_hi = contain_estimate(boot["C_ci_low"], boot.pop("C_ci_high"), math.exp(log_c))
        boot.update(alpha_ci_low=a_lo, alpha_ci_high=a_hi, C_ci_low=c_lo, C_ci_high=c_hi)
    else:
        reasons.append("no bootstrap replicates of n50 (n_boot = 0 or missing): CI not reported")
        boot = dict(alpha_ci_low=nan, alpha_ci_high=nan, C_ci_low=nan, C_ci_high=nan,
                    wls_alpha=nan, wls_alpha_se=nan, lack_of_fit_chi2=nan, lack_of_fit_p=nan)
    return ScalingFit(alpha=alpha, C=math.exp(log_c), rss_log=rss, aic=aic, aicc=aicc,
                      reason="; ".join(reasons), **boot, **common)


def _solve(
    yv: np.ndarray, d: np.ndarray, model: str, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """log C (B,) and alpha (B,) of the (weighted) least-squares fit to rows of log n50 values
    yv (B, N); weights (N,) default to equal."""
    w = np.ones(d.size) / d.size if weights is None else weights / weights.sum()
    if model == "power":
        x = np.log(d)
        xm = w @ x
        xc = x - xm
        alpha = (yv - (yv @ w)[:, None]) @ (w * xc) / (w @ xc**2)
        return yv @ w - alpha * xm, alpha
    offset = np.log(shape_values(d, model))
    return (yv - offset) @ w, np.full(yv.shape[0], _fixed_exponent(model))


def _goodness(
    y: np.ndarray, fitted: np.ndarray, n_params: int, reasons: list[str]
) -> tuple[float, float, float]:
    """RSS on log n50, AIC and AICc (module docstring); appends why AIC is nan to reasons."""
    rss = float(((y - fitted) ** 2).sum())
    n_pts = y.size
    if n_pts > n_params and rss > 1e-12 * n_pts:
        aic = n_pts * math.log(rss / n_pts) + 2 * (n_params + 1)
    else:
        aic = math.nan
        reasons.append("no residual degrees of freedom (or an exact fit): AIC not defined")
    denom = n_pts - n_params - 2
    aicc = aic + 2 * (n_params + 1) * (n_params + 2) / denom if denom > 0 else math.nan
    return rss, aic, aicc


def _log_replicates(usable: pd.DataFrame) -> list[np.ndarray]:
    """Per d, the logs of its positive finite bootstrap n50 replicates (none without the column)."""
    pools = []
    if "boot_n50" in usable:
        for reps in usable["boot_n50"]:
            reps = np.asarray(reps, dtype=float)
            pools.append(np.log(reps[np.isfinite(reps) & (reps > 0)]))
    return pools


def _bootstrap_scaling(
    d: np.ndarray, y: np.ndarray, pools: list[np.ndarray], model: str,
    n_boot: int, confidence: float, seed: int,
) -> dict[str, object]:
    """Two-level bootstrap of the fit (percentile ends, not yet widened), the weighted
    least-squares slope and the lack-of-fit test: ScalingFit fields by name."""
    nan = math.nan
    n_params = 2 if model == "power" else 1
    n_pts = d.size
    out = dict(alpha_ci_low=nan, alpha_ci_high=nan, wls_alpha=nan, wls_alpha_se=nan,
               lack_of_fit_chi2=nan, lack_of_fit_p=nan, aic_w=nan, aicc_w=nan)
    var = np.array([p.var(ddof=1) for p in pools])
    if (var > 0).all():
        lc_w, al_w = _solve(y[None, :], d, model, 1.0 / var)
        lof = float((((y - lc_w[0] - np.log(shape_values(d, model, al_w[0]))) ** 2) / var).sum())
        denom = n_pts - n_params - 1
        out.update(aic_w=lof + 2 * n_params,
                   aicc_w=lof + 2 * n_params + (2 * n_params * (n_params + 1) / denom
                                                if denom > 0 else nan))
    if (var > 0).all() and n_pts > n_params:
        from scipy.stats import chi2  # scipy.stats costs ~0.5 s to import: when needed

        out.update(lack_of_fit_chi2=lof, lack_of_fit_p=float(chi2.sf(lof, n_pts - n_params)))
    rng = np.random.default_rng(seed)
    yb = np.stack([p[rng.integers(0, p.size, size=int(n_boot))] for p in pools], axis=1)
    lc_b, al_b = _solve(yb, d, model)
    out.update(boot_alpha=al_b, boot_C=np.exp(lc_b))
    if model == "power":
        out["alpha_ci_low"], out["alpha_ci_high"] = percentile_interval(al_b, confidence)
    out["C_ci_low"], out["C_ci_high"] = percentile_interval(np.exp(lc_b), confidence)
    if model == "power" and (var > 0).all():
        w = 1.0 / var
        x = np.log(d)
        xw = (w * x).sum() / w.sum()
        out.update(wls_alpha=float(al_w[0]),
                   wls_alpha_se=float(math.sqrt(1.0 / (w * (x - xw) ** 2).sum())))
    return out


def compare_scaling_models(
    thresholds: pd.DataFrame,
    models: tuple[str, ...] = ("power", "dlogd", "d^2", "d^4"),
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    d_column: str = "d",
    d_min: float | None = None,
) -> pd.DataFrame:
    """One row per model (fit fields without replicate arrays), with delta_aic = AIC - min AIC
    and delta_aic_w = AIC_w - min AIC_w (the weighted criterion, module docstring).

    Fixed-exponent shapes such as d^2 and d^4 are included as fits of the constant only: they
    test the *shape* of the bounds, not the bounds themselves. Every model is fitted to the same
    thresholds (those with d >= ``d_min``); :data:`LAW_MODELS` are the candidate laws and
    :func:`~stelab.analysis.laws.law_verdicts` turns the table into verdicts.

    Parameters
    ----------
    thresholds : DataFrame
        One success notion's thresholds (:func:`fit_scaling`).
    models : tuple of str
        The shapes compared (:func:`shape_values`).
    n_boot : int
        Bootstrap replicates for the CIs (0: none).
    confidence : float
        Two-sided coverage of the CIs, in (0, 1).
    d_column : str
        The column holding d.
    seed : int
        Seed of every model's bootstrap.
    d_min : float, optional
        Pool only the d >= d_min (default: every d).

    Returns
    -------
    DataFrame
        One row per model: the :class:`ScalingFit` fields but ``boot_alpha``/``boot_C``,
        ``delta_aic`` and ``delta_aic_w`` (nan where their AIC is).

    Raises
    ------
    DataError
        An unknown model or an unusable thresholds table (:func:`fit_scaling`).
    """
    records = []
    for model in models:
        fit = fit_scaling(thresholds, model, n_boot, confidence, seed, d_column, d_min)
        rec = fit.as_dict()
        rec.pop("boot_alpha")
        rec.pop("boot_C")
        records.append(rec)
    table = pd.DataFrame(records)
    for column in ("aic", "aic_w"):
        best = table[column].min() if table[column].notna().any() else math.nan
        table["delta_" + column] = table[column] - best
    return table


def scaling_by(
    thresholds: pd.DataFrame,
    by: str | list[str] | tuple[str, ...] = ("success",),
    model: str = "power",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    d_column: str = "d",
    d_min: float | None = None,
) -> pd.DataFrame:
    """:func:`fit_scaling` per group of ``by`` (e.g. per success notion); one row per group.

    Parameters
    ----------
    thresholds : DataFrame
        :func:`~stelab.analysis.threshold.thresholds_by` output.
    by : str or sequence of str
        Grouping columns (dropped before each fit).
    model : str
        The shape (:func:`fit_scaling`).
    n_boot : int
        Bootstrap replicates for the CIs (0: none).
    confidence : float
        Two-sided coverage of the CIs, in (0, 1).
    d_column : str
        The column holding d.
    seed : int
        Seed of group 0; group g uses ``seed + g``.
    d_min : float, optional
        Fit only the d >= d_min (default: every d).

    Returns
    -------
    DataFrame
        The ``by`` columns and every :class:`ScalingFit` field (replicates as array cells).

    Raises
    ------
    DataError
        As :func:`fit_scaling`.
    """
    by = [by] if isinstance(by, str) else list(by)
    records = []
    for g, (key, group) in enumerate(thresholds.groupby(by, sort=True)):
        key = key if isinstance(key, tuple) else (key,)
        fit = fit_scaling(group.drop(columns=by), model, n_boot, confidence, seed + g, d_column,
                          d_min)
        records.append({**dict(zip(by, key, strict=True)), **fit.as_dict()})
    return pd.DataFrame(records)
