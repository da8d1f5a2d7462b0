"""Every figure of the report, drawn from the stored tables (and the derived tables, which are
themselves computed from the stored tables): ``stelab plot DIR`` calls :func:`draw_figures`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from stelab import plots
from stelab.report.derive import SUCCESS, with_case

Figures = dict[str, Path]


def _e1(rows: pd.DataFrame, derived: dict[str, pd.DataFrame], folder: Path) -> Figures:
    rows = with_case(rows)
    out: Figures = {}
    for case, group in rows.groupby("case"):
        out[f"e1_heatmap_{case}"] = plots.plot_success_heatmap(
            group, folder / f"e1_heatmap_{case}.png", success=SUCCESS
        )
        for success in SUCCESS:
            out[f"e1_curves_{case}_{success}"] = plots.plot_success_curves(
                group, folder / f"e1_curves_{case}_{success}.png", success=success, by="d"
            )
        thresholds = derived["e1_thresholds"]
        thresholds = thresholds[thresholds["case"] == case].drop(columns="case")
        out[f"e1_n50_{case}"] = plots.plot_n50_scaling(
            group, folder / f"e1_n50_{case}.png", success=SUCCESS, thresholds=thresholds
        )
    return out


def _e1_horizon(rows: pd.DataFrame, derived: dict[str, pd.DataFrame], folder: Path) -> Figures:
    return {
        "e1_horizon_n50": plots.plot_threshold_vs_horizon(
            derived["e1_horizon_thresholds"], folder / "e1_horizon_n50.png", by="step_size"
        )
    }


def _e2(rows: pd.DataFrame, derived: dict[str, pd.DataFrame], folder: Path) -> Figures:
    return {
        "e2_trajectories": plots.plot_trajectories(rows, folder / "e2_trajectories.png", by="n"),
        "e2_success_vs_horizon": plots.plot_success_vs_horizon(
            rows, folder / "e2_success_vs_horizon.png", by="n", mode="checkpoints"
        ),
    }


def _e3(rows: pd.DataFrame, derived: dict[str, pd.DataFrame], folder: Path) -> Figures:
    return {
        "e3_paths": plots.plot_recurrence_paths(rows, folder / "e3_paths.png"),
        "e3_returns_vs_T": plots.plot_returns_vs_horizon(rows, folder / "e3_returns_vs_T.png"),
        "e3_return_times": plots.plot_return_time_histogram(rows, folder / "e3_return_times.png"),
        "e3_excursions": plots.plot_return_time_histogram(
            rows, folder / "e3_excursions.png", kind="excursion"
        ),
        "e3_occupation": plots.plot_occupation_vs_noise(rows, folder / "e3_occupation.png"),
    }


def _e4(rows: pd.DataFrame, derived: dict[str, pd.DataFrame], folder: Path) -> Figures:
    return {
        f"e4_{success}": plots.plot_e4_heatmap(rows, folder / f"e4_{success}.png", success=success)
        for success in SUCCESS
    }


def _e5(rows: pd.DataFrame, derived: dict[str, pd.DataFrame], folder: Path) -> Figures:
    return {"e5_accuracy": plots.plot_digits_accuracy(rows, folder / "e5_accuracy.png")}


DRAWERS: dict[str, Callable[[pd.DataFrame, dict[str, pd.DataFrame], Path], Figures]] = {
    "e1": _e1,
    "e1_horizon": _e1_horizon,
    "e2": _e2,
    "e3": _e3,
    "e4": _e4,
    "e5": _e5,
}


def draw_figures(
    tables: dict[str, pd.DataFrame], derived: dict[str, pd.DataFrame], folder: Path
) -> Figures:
    """Draw the figures of every table present; return name -> PNG path."""
    figures: Figures = {}
    for name, draw in DRAWERS.items():
        if name in tables:
            figures.update(draw(tables[name], derived, folder))
    return figures
