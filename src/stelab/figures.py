"""The report's figures as matplotlib figures, for a notebook: ``stelab.figures``.

Each function takes per-trial rows (a DataFrame: :func:`stelab.load`, ``run_experiment`` or
``run_sweep`` output) and returns a ``matplotlib.figure.Figure`` drawn by the *same* function
that draws the report's PNG (the experiment modules named below, called without a path), so a
notebook and the report agree. Keyword options are those of that function. Save a figure with
``fig.savefig(path)``; in Jupyter a figure is shown when it is the value of a cell.

The statistics behind them are public in :mod:`stelab.analysis` (``thresholds_by``,
``scaling_by``, ``local_exponents``, ``success_table``, ``return_growth``, ...).
"""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
from matplotlib.figure import Figure

from stelab.experiments import e2, e3, e4
from stelab.experiments.e1_plots import (
    plot_n50_scaling,
    plot_success_curves,
    plot_success_heatmap,
)

__all__ = [
    "n50_scaling", "occupation_vs_noise", "recurrence_paths", "return_time_histogram",
    "returns_vs_horizon", "success_curves", "success_grid", "success_heatmap",
    "success_vs_horizon", "trajectory_bands",
]


def _figure(drawn: object) -> Figure:
    """The figure a plot function returns when called with ``path=None``."""
    return cast(Figure, drawn)


def success_heatmap(rows: pd.DataFrame, **options: Any) -> Figure:
    """Success rate over the (d, n) grid, one panel per success notion (E1's heatmap).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``d``, ``n`` and the boolean success columns.
    **options
        ``success`` (a column or several), ``x``, ``y``: see
        :func:`stelab.experiments.e1_plots.plot_success_heatmap`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _figure(plot_success_heatmap(rows, None, **options))


def success_curves(rows: pd.DataFrame, **options: Any) -> Figure:
    """Success rate vs n (Wilson 95% bars) per group, with the fitted curve
    P = F(a + b log n) and n50 (E1's curves).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``n``, the success column and the grouping columns; every other
        setting must be fixed within a group (DataError otherwise).
    **options
        ``success`` (default ``"success_last"``), ``by`` (default ``"d"``), ``link``
        (``"logit"`` or ``"probit"``): see :func:`stelab.experiments.e1_plots.plot_success_curves`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _figure(plot_success_curves(rows, None, **options))


def n50_scaling(rows: pd.DataFrame, **options: Any) -> Figure:
    """n50 vs d (log-log) with bootstrap 95% CIs, the fitted power law n50 = C d^alpha per
    success notion and the d^2, d^4 shapes through the smallest-d point (E1's scaling figure).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``d``, ``n`` and the success columns.
    **options
        ``success``, ``thresholds`` (a :func:`stelab.analysis.thresholds_by` table, to avoid
        refitting), ``n_boot``, ``seed``, ``references``: see
        :func:`stelab.experiments.e1_plots.plot_n50_scaling`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _figure(plot_n50_scaling(rows, None, **options))


def trajectory_bands(rows: pd.DataFrame, **options: Any) -> Figure:
    """Median and quantile band across trials of recorded trajectories vs iteration t (E2).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``hamming_trajectory`` (``[record] trajectory = true``) and, for
        the loss panel, ``loss_trajectory``.
    **options
        ``columns``, ``by`` (default ``"n"``), ``per_d``, ``quantiles``: see
        :func:`stelab.experiments.e2.plot_trajectories`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _figure(e2.plot_trajectories(rows, None, **options))


def success_vs_horizon(rows: pd.DataFrame, **options: Any) -> Figure:
    """Ergodic vs last-iterate success against the horizon T, Wilson 95% bands (E2).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with checkpoints, several ``steps`` or recorded trajectories.
    **options
        ``by``, ``mode``: see :func:`stelab.experiments.e2.plot_success_vs_horizon`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _figure(e2.plot_success_vs_horizon(rows, None, **options))


def recurrence_paths(rows: pd.DataFrame, **options: Any) -> Figure:
    """Sample paths of the Hamming distance H_t, one panel per value of ``by`` (E3).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``hamming_trajectory`` and the ``by`` column.
    **options
        ``by`` (default ``"noise_level"``), ``n_paths``: see
        :func:`stelab.experiments.e3.plot_recurrence_paths`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _figure(e3.plot_recurrence_paths(rows, None, **options))


def returns_vs_horizon(rows: pd.DataFrame, **options: Any) -> Figure:
    """Mean number of returns to H = 0 up to T, with a 95% t band across trials, vs T (E3).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``hamming_trajectory``.
    **options
        ``by`` (default ``"noise_level"``): see
        :func:`stelab.experiments.e3.plot_returns_vs_horizon`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _figure(e3.plot_returns_vs_horizon(rows, None, **options))


def return_time_histogram(rows: pd.DataFrame, **options: Any) -> Figure:
    """Histogram of pooled return times (or excursion or sojourn lengths) per group (E3).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``hamming_trajectory``.
    **options
        ``by``, ``kind`` (``"return_time"``, ``"excursion"``, ``"sojourn"``): see
        :func:`stelab.experiments.e3.plot_return_time_histogram`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _figure(e3.plot_return_time_histogram(rows, None, **options))


def occupation_vs_noise(rows: pd.DataFrame, **options: Any) -> Figure:
    """Mean share of iterations at w* (95% t CI) vs the label-noise level (E3).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``occupation`` and ``noise_level``.
    **options
        ``x``, ``value``, ``by``: see :func:`stelab.experiments.e3.plot_occupation_vs_noise`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _figure(e3.plot_occupation_vs_noise(rows, None, **options))


def success_grid(rows: pd.DataFrame, **options: Any) -> Figure:
    """Success rate (Wilson 95% interval) for each (distribution, normalization), one panel per
    teacher balance (E4's heatmap).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with the ``row``, ``col``, ``panel`` and ``success`` columns.
    **options
        ``success``, ``row``, ``col``, ``panel``: see
        :func:`stelab.experiments.e4.plot_e4_heatmap`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _figure(e4.plot_e4_heatmap(rows, None, **options))
