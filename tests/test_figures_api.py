"""stelab.figures: the report's figure functions, returned as matplotlib figures for a notebook;
the same drawing as the report's PNG (byte-equal when saved at the report's resolution)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from stelab import figures
from stelab.errors import DataError
from stelab.experiments import e3
from stelab.experiments.e1_plots import plot_success_curves
from stelab.loading import load
from stelab.render.plotting import DPI

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick():
    return load(ROOT / "results" / "quick")


def _e1_case(quick) -> object:
    rows = quick.table("e1")
    return rows[(rows.m == 1) & (rows.ste == "identity") & (rows.d <= 64)]


def test_figure_is_the_report_drawing(quick, tmp_path: Path) -> None:
    rows = _e1_case(quick)
    fig = figures.success_curves(rows, success="success_ergodic", by="d")
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "notebook.png", dpi=DPI)
    plot_success_curves(rows, tmp_path / "report.png", success="success_ergodic", by="d")
    assert (tmp_path / "notebook.png").read_bytes() == (tmp_path / "report.png").read_bytes()


def test_recurrence_figure_is_the_report_drawing(quick, tmp_path: Path) -> None:
    rows = quick.table("e3")
    figures.returns_vs_horizon(rows).savefig(tmp_path / "notebook.png", dpi=DPI)
    e3.plot_returns_vs_horizon(rows, tmp_path / "report.png")
    assert (tmp_path / "notebook.png").read_bytes() == (tmp_path / "report.png").read_bytes()


def test_every_figure_returns_a_figure(quick) -> None:
    e1 = _e1_case(quick)
    e3_rows = quick.table("e3")
    drawn = [
        figures.success_heatmap(e1),
        figures.n50_scaling(e1, n_boot=20),
        figures.trajectory_bands(quick.table("e2")),
        figures.success_vs_horizon(quick.table("e2"), by="n"),
        figures.recurrence_paths(e3_rows),
        figures.return_time_histogram(e3_rows, kind="excursion"),
        figures.occupation_vs_noise(e3_rows),
        figures.success_grid(quick.table("e4")),
    ]
    assert all(isinstance(fig, Figure) and fig.axes for fig in drawn)


def test_missing_column_is_one_line() -> None:
    with pytest.raises(DataError, match=r"rows\.d: column missing"):
        figures.success_heatmap(pd.DataFrame({"n": [1], "success_last": [True]}))
