"""Descriptive statistics of the raw data (shown next to the prediction, never used by it) and
the two preparations every part of diagnose shares: the mask of constant features and an exact
rescaling to unit scale.

The statistics: feature means and scales (mean offset |mu_i| / sd_i), skewness and excess
kurtosis per feature, the Kolmogorov-Smirnov distance to N(0, 1) of standardized projections on
random binary directions, and the covariance condition number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

__all__ = ["constant_features", "feature_statistics", "unit_scale"]


def unit_scale(X: np.ndarray) -> tuple[np.ndarray, float]:
    """X / s with s a power of two such that max |X / s| is in [0.5, 1): exact (no rounding),
    and it keeps squares and covariances finite for data at any scale (1e300 or 1e-300).
    Every statistic of the prediction is invariant under a positive global scale."""
    peak = float(np.abs(X).max())
    if peak == 0.0 or not math.isfinite(peak):
        return X, 1.0
    scale = math.ldexp(1.0, math.frexp(peak)[1])
    return X / scale, scale


def constant_features(X: np.ndarray) -> np.ndarray:
    """Boolean mask of the features that take a single value."""
    return np.all(X == X[0:1], axis=0)


def feature_statistics(
    X: np.ndarray, rng: np.random.Generator, projections: int
) -> dict[str, Any]:
    """The fields of :class:`~stelab.diagnosis.prediction.Diagnosis` that describe ``X`` (its
    feature geometry), and under ``features`` the per-feature values."""
    n, d = X.shape
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    live = ~constant_features(X)
    offset = np.abs(mu[live]) / sd[live]
    skew = scipy_stats.skew(X[:, live], axis=0) if live.any() else np.zeros(0)
    kurt = scipy_stats.kurtosis(X[:, live], axis=0) if live.any() else np.zeros(0)
    centred = X - mu
    ks = []
    for _ in range(projections):
        p = centred @ np.where(rng.random(d) < 0.5, -1.0, 1.0)
        s = p.std()
        ks.append(scipy_stats.kstest(p / s, "norm").statistic if s > 0 else 1.0)
    # the positive eigenvalues of the covariance C^T C / n are those of the Gram matrix
    # C C^T / n: the smaller of the two costs min(n, d)^3 (wide, short data stay cheap)
    gram = centred.T @ centred if d <= n else centred @ centred.T
    eig = np.linalg.eigvalsh(gram / n)
    positive = eig[eig > 1e-12 * max(eig.max(), 1e-300)]

    def agg(fn: Any, values: np.ndarray) -> float:
        return float(fn(values)) if values.size else 0.0

    return {
        "mean_offset": agg(np.mean, offset),
        "max_offset": agg(np.max, offset),
        "scale_min": agg(np.min, sd[live]),
        "scale_max": agg(np.max, sd[live]),
        "constant_features": int((~live).sum()),
        "skewness_mean_abs": agg(np.mean, np.abs(skew)),
        "skewness_max_abs": agg(np.max, np.abs(skew)),
        "excess_kurtosis_mean": agg(np.mean, kurt),
        "excess_kurtosis_max": agg(np.max, kurt),
        "projection_ks_mean": float(np.mean(ks)),
        "projection_ks_reference": 1.36 / math.sqrt(n),
        "covariance_condition": (
            float(positive.max() / positive.min()) if positive.size else math.inf
        ),
        "features": {"mean": mu.tolist(), "sd": sd.tolist(), "skewness": _full(skew, live),
                     "excess_kurtosis": _full(kurt, live)},
    }


def _full(values: np.ndarray, live: np.ndarray) -> list[float]:
    out = np.zeros(live.shape)
    out[live] = values
    return out.tolist()
