"""Local exponents of n50(d) between neighbouring d, and the reference shapes d^2, d^4, d log d.

The global fits (:mod:`stelab.analysis.scaling`) assume one exponent over the whole range;
:func:`local_exponents` shows how the slope of log n50 on log d drifts, and
:func:`reference_curve` / :func:`reference_ratios` compare n50 with the *shapes* of the paper's
upper bounds (their constants are unknown).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stelab.analysis.intervals import contain_estimate
from stelab.analysis.scaling import percentile_interval, shape_values, usable_thresholds
from stelab.errors import DataError


def local_exponents(
    thresholds: pd.DataFrame,
    confidence: float = 0.95,
    d_column: str = "d",
    n_boot: int | None = None,
) -> pd.DataFrame:
    """Slope of log n50 between consecutive identified d: (log n50_j+1 - log n50_j) /
    (log d_j+1 - log d_j), with a percentile CI from the bootstrap replicates of both ends
    paired by replicate index, widened where needed to contain the local exponent. With the
    clustered bootstrap of :func:`~stelab.analysis.threshold.thresholds_by`, replicate b of
    both ends resamples the same (run seed, trial) units, so a dependence between the two d
    through shared random streams is kept; ends from different run seeds (or a per-n
    bootstrap) are independent fits, and pairing by index is pairing at random. A drifting
    local exponent means no single power law describes the range.

    Parameters
    ----------
    thresholds : DataFrame
        :func:`~stelab.analysis.threshold.thresholds_by` output: columns d, n50, boot_n50 (for
        the CI), and ``success``; with several success notions the slopes are given per notion
        (a ``success`` column first, notions in sorted order).
    confidence : float
        Level of the percentile CI.
    d_column : str
        The dimension column.
    n_boot : int or None
        Paired replicates used for the CI: the first ``n_boot`` (None: all there are; 0: no CI).

    Returns
    -------
    DataFrame
        One row per neighbouring pair: d_low, d_high, local_alpha, ci_low, ci_high and
        ci_width = ci_high - ci_low (nan without a CI).
    """
    if "success" in thresholds and thresholds["success"].nunique() > 1:
        parts = [
            local_exponents(group.drop(columns="success"), confidence, d_column, n_boot)
            .assign(success=notion)
            for notion, group in thresholds.groupby("success", sort=True)
        ]
        table = pd.concat(parts, ignore_index=True)
        return table[["success", *[c for c in table if c != "success"]]]
    usable = usable_thresholds(thresholds, d_column)
    records = []
    for (_, lo), (_, hi) in zip(usable.iloc[:-1].iterrows(), usable.iloc[1:].iterrows(),
                                strict=True):
        span = math.log(hi[d_column] / lo[d_column])
        slope = math.log(hi["n50"] / lo["n50"]) / span
        low = high = math.nan
        if "boot_n50" in usable:
            a, b = np.asarray(lo["boot_n50"], float), np.asarray(hi["boot_n50"], float)
            size = min(a.size, b.size) if n_boot is None else min(a.size, b.size, int(n_boot))
            if size > 1:
                with np.errstate(divide="ignore", invalid="ignore"):
                    low, high = contain_estimate(
                        *percentile_interval(np.log(b[:size] / a[:size]) / span, confidence), slope)
        records.append({"d_low": lo[d_column], "d_high": hi[d_column], "local_alpha": slope,
                        "ci_low": low, "ci_high": high, "ci_width": high - low})
    return pd.DataFrame(records)


def reference_curve(
    d: np.ndarray, shape: str, anchor_d: float, anchor_n: float
) -> np.ndarray:
    """The curve C g(d) through (anchor_d, anchor_n) for a shape "d^k" or "dlogd".

    Only the shape is meaningful: the paper's d^2 / d^4 are upper bounds with unknown constants.

    Parameters
    ----------
    d : ndarray, shape (N,), float
        Dimensions (> 1 for ``"dlogd"``).
    shape : str
        ``"d^k"`` or ``"dlogd"``.
    anchor_d, anchor_n : float
        The point (d, samples) the curve passes through.

    Returns
    -------
    ndarray, shape (N,), float64
        Samples.

    Raises
    ------
    DataError
        An unknown shape.

    Examples
    --------
    >>> reference_curve(np.array([4.0, 8.0]), "d^2", 4.0, 100.0)
    array([100., 400.])
    """
    g = shape_values(np.asarray(d, dtype=float), shape)
    return anchor_n * g / shape_values(np.array([anchor_d], dtype=float), shape)[0]


def reference_ratios(
    thresholds: pd.DataFrame,
    shapes: tuple[str, ...] = ("d^2", "d^4", "dlogd"),
    d_column: str = "d",
) -> pd.DataFrame:
    """n50 / g(d) with its CI for each shape: columns ``ratio_<shape>``, ``..._low``, ``..._high``.

    A ratio that falls with d means n50 grows more slowly than that shape.

    Parameters
    ----------
    thresholds : DataFrame
        Columns d (or ``d_column``), n50 and, when present, ci_low, ci_high (samples).
    shapes : tuple of str
        Shapes g(d) (:func:`shape_values`).
    d_column : str
        The column holding d.

    Returns
    -------
    DataFrame
        d, success (when present), n50, its CI and, per shape, ``ratio_<shape>`` with
        ``_low``/``_high`` (samples / g(d); "^" dropped from the name, e.g. ``ratio_d2``).

    Raises
    ------
    DataError
        A missing d or n50 column, or an unknown shape.
    """
    for column in (d_column, "n50"):
        if column not in thresholds:
            raise DataError(f"thresholds.{column}: column missing (use thresholds_by output)")
    keep = [c for c in (d_column, "success", "n50", "ci_low", "ci_high") if c in thresholds]
    table = thresholds[keep].copy()
    d = table[d_column].to_numpy(dtype=float)
    for shape in shapes:
        g = shape_values(d, shape)
        name = "ratio_" + shape.replace("^", "")
        table[name] = table["n50"] / g
        for col in ("ci_low", "ci_high"):
            if col in table:
                table[f"{name}_{col.split('_')[1]}"] = table[col] / g
    return table


#: The columns :func:`threshold_ratios` adds, by shape: alpha50 = n50 / d, n50 / (d ln d).
RATIO_COLUMNS = {"d": "alpha50", "dlogd": "n50_per_dlogd"}


def threshold_ratios(thresholds: pd.DataFrame, d_column: str = "d") -> pd.DataFrame:
    """The thresholds with alpha50 = n50 / d and n50 / (d ln d), each with its CI.

    Statistical-physics papers report the threshold as alpha50 = n50 / d (samples per
    dimension). g(d) > 0 is fixed for a row, so the CI ends transform like the estimate:
    [ci_low / g(d), ci_high / g(d)], and nan (not identified) stays nan.

    Parameters
    ----------
    thresholds : DataFrame
        :func:`~stelab.analysis.threshold.thresholds_by` output (columns d or ``d_column``,
        n50 and, when present, ci_low, ci_high, in samples; d > 1 for the d ln d ratio, else
        nan).
    d_column : str
        The column holding d.

    Returns
    -------
    DataFrame
        A copy with ``alpha50``, ``alpha50_ci_low``, ``alpha50_ci_high`` (samples per
        dimension) and ``n50_per_dlogd`` with ``_ci_low``/``_ci_high``, float64.

    Raises
    ------
    DataError
        A missing d or n50 column.

    Examples
    --------
    >>> t = threshold_ratios(pd.DataFrame({"d": [16], "n50": [32.0], "ci_low": [24.0],
    ...                                    "ci_high": [40.0]}))
    >>> t[["alpha50", "alpha50_ci_low", "alpha50_ci_high"]].iloc[0].tolist()
    [2.0, 1.5, 2.5]
    """
    for column in (d_column, "n50"):
        if column not in thresholds:
            raise DataError(f"thresholds.{column}: column missing (use thresholds_by output)")
    out = thresholds.copy()
    d = out[d_column].to_numpy(dtype=float)
    for shape, name in RATIO_COLUMNS.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            g = shape_values(d, shape)
        g = np.where(np.isfinite(g) & (g > 0), g, np.nan)
        out[name] = out["n50"].to_numpy(dtype=float) / g
        for end in ("ci_low", "ci_high"):
            if end in out:
                out[f"{name}_{end}"] = out[end].to_numpy(dtype=float) / g
    return out
