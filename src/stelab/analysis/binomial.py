"""Binomial success curves F(a + b x) fitted by (Firth-)penalized maximum likelihood,
vectorized over many data sets (the fit behind :mod:`stelab.analysis.threshold`).

    maximize  l(beta) + 0.5 log det I(beta)            (Firth / Jeffreys penalty, the default)
    l(beta)  = sum_j k_j log F(eta_j) + (m_j - k_j) log(1 - F(eta_j)),  eta_j = a + b x_j
    I(beta)  = X^T W X,   W_j = m_j f(eta_j)^2 / (F(eta_j) (1 - F(eta_j)))

with F the logistic ("logit") or standard normal ("probit") CDF and f = F'; solved by Fisher
scoring with step halving (the score is given in :mod:`stelab.analysis.threshold`).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy.special import expit, log_ndtr, ndtr

from stelab.errors import DataError

Link = Literal["logit", "probit"]
Penalty = Literal["firth", "none"]

LINKS = ("logit", "probit")
PENALTIES = ("firth", "none")
_ETA_CLIP = 30.0
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def cdf(eta: np.ndarray, link: str) -> np.ndarray:
    """F(eta): the logistic (``"logit"``) or standard normal (``"probit"``) CDF."""
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
    m : ndarray, shape (J,) or (B, J), float
        Trials at each x, shared by every data set or one row per data set (a point with
        m = 0 carries no information).
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
    n_sets = k.shape[0]
    m = np.broadcast_to(np.atleast_2d(np.asarray(m, dtype=float)), k.shape)
    beta = np.zeros((n_sets, 2))
    active = np.ones(n_sets, dtype=bool)
    converged = np.zeros(n_sets, dtype=bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        b, kk, mm = beta[idx], k[idx], m[idx]
        obj, s, w, dlogw, (i00, i01, i11, det) = _objective_parts(b, x, kk, mm, link, firth)
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
            new_obj = _objective_parts(new, x, kk, mm, link, firth)[0]
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
