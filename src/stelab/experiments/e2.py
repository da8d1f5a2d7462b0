"""E2 convergence: Hamming distance and loss vs iteration at several n/d, and ergodic vs
last-iterate success vs horizon T (from the recorded trajectories and ergodic checkpoints)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from stelab import analysis
from stelab.analysis import (
    at_checkpoints,
    success_by_steps,
    success_vs_horizon,
    trajectory_bands,
)
from stelab.config import Config
from stelab.errors import DataError
from stelab.experiments.profile import cell, sample_size, section
from stelab.experiments.registry import Experiment, Figures, Frames, SectionContext, Table
from stelab.render import plotting
from stelab.render.markdown import interval, pivot, table

SUCCESS = ("success_last", "success_ergodic")


def build_cells(profile: dict[str, Any]) -> list[Config]:
    """Every n/d at one d, recording Hamming and loss trajectories and ergodic checkpoints."""
    spec = section(profile, "e2")
    d = spec["d"]
    return [
        cell(
            profile,
            model={"d": d},
            train={"n": sample_size(d, ratio), "steps": spec["steps"]},
            run={"trials": spec["trials"]},
            record={
                "trajectory": True,
                "loss_trajectory": True,
                "checkpoints": spec["checkpoints"],
            },
        )
        for ratio in spec["n_over_d"]
    ]


def derive(tables: Frames, n_boot: int) -> Frames:
    """Ergodic vs last-iterate success vs horizon T, per n."""
    at_horizon = analysis.at_checkpoints(tables["e2"])
    return {
        "e2_success_vs_horizon": analysis.success_table(
            at_horizon, by=("n", "steps"), success=SUCCESS
        )
    }


def plot_trajectories(
    rows: pd.DataFrame,
    path: str | Path | None,
    columns: str | Sequence[str] = ("hamming_trajectory", "loss_trajectory"),
    by: str | Sequence[str] = "n",
    per_d: bool = True,
    quantiles: tuple[float, float] = (0.1, 0.9),
) -> Path | Figure:
    """Median (line) and quantile band across trials vs iteration t, one line per group and one
    panel per recorded trajectory column (Hamming as bit error H_t/d when ``per_d``)."""
    by = plotting.as_list(by)
    present = [c for c in plotting.as_list(columns) if c in rows]
    if not present:
        raise DataError(f"rows: none of {plotting.as_list(columns)} recorded; "
                        "set [record] trajectory")
    fig, axes = plotting.figure(len(present))
    for ax, column in zip(axes, present, strict=True):
        scaled = per_d and column == "hamming_trajectory"
        bands = trajectory_bands(rows, column, by, quantiles, per_d=scaled)
        groups = list(plotting.groups(bands, by))
        for color, (key, band) in zip(plotting.colors(len(groups)), groups, strict=True):
            ax.plot(band["t"], band["median"], color=color, label=plotting.group_label(by, key))
            ax.fill_between(band["t"], band["q_low"], band["q_high"], color=color, alpha=0.2,
                            lw=0)
        if column == "loss_trajectory":
            ax.set_yscale("symlog", linthresh=1e-4)
        ax.set_xlabel("iteration t")
        ax.set_ylabel("bit error H_t / d" if scaled else plotting.label(column))
        ax.set_title(f"{plotting.label(column)}: median and "
                     f"{quantiles[0]:.0%}-{quantiles[1]:.0%} band")
        plotting.legend(ax, 8)
    return plotting.save(fig, path)


def plot_success_vs_horizon(
    rows: pd.DataFrame,
    path: str | Path | None,
    by: str | Sequence[str] = (),
    mode: str = "auto",
) -> Path | Figure:
    """Ergodic vs last-iterate success against the horizon T (Wilson 95% bands).

    mode "checkpoints": ergodic and last iterate at the run's ergodic checkpoints
    (:func:`stelab.analysis.at_checkpoints`; last iterate only where trajectories were recorded);
    mode "steps": one run per T (column ``steps``), ergodic and last iterate;
    mode "trajectory": last and best iterate at every T' <= T from Hamming trajectories;
    "auto": "checkpoints" when recorded, else "steps" when ``steps`` takes several values, else
    "trajectory".
    """
    by = plotting.as_list(by)
    if mode == "auto":
        if "ergodic_hamming_at" in rows:
            mode = "checkpoints"
        elif "steps" in rows and rows["steps"].nunique() > 1:
            mode = "steps"
        else:
            mode = "trajectory"
    if mode == "checkpoints":
        expanded = at_checkpoints(rows)
        metrics = [m for m in ("success_last", "success_ergodic") if m in expanded]
        table = success_by_steps(expanded, by, tuple(metrics)).rename(columns={"steps": "T"})
    elif mode == "steps":
        table = success_by_steps(rows, by).rename(columns={"steps": "T"})
    elif mode == "trajectory":
        table = success_vs_horizon(rows, by=by)
    else:
        raise DataError(
            f"mode: {mode!r} is not known; allowed: auto, checkpoints, steps, trajectory")
    fig, axes = plotting.figure(1, width=7.2)
    ax = axes[0]
    groups = list(plotting.groups(table, by))
    styles = {"success_last": "-", "success_ergodic": "--", "success_best": ":"}
    for color, (key, group) in zip(plotting.colors(len(groups)), groups, strict=True):
        for metric, sub in group.groupby("metric"):
            sub = sub.sort_values("T")
            label = plotting.label(metric) + (f", {plotting.group_label(by, key)}" if by else "")
            ax.plot(sub["T"], sub["rate"], styles.get(metric, "-"), color=color, marker=".",
                    label=label)
            ax.fill_between(sub["T"], sub["ci_low"], sub["ci_high"], color=color, alpha=0.08,
                            lw=0)
    ax.set_xscale("log")
    horizons = np.sort(table["T"].unique())
    if horizons.size <= 12:
        ax.set_xticks(horizons, [f"{v:g}" for v in horizons])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("horizon T (iterations); line style = success notion, colour = group")
    ax.set_ylabel("success rate")
    source = {"steps": "separate runs per T", "checkpoints": "checkpoints of one run",
              "trajectory": "prefixes of recorded trajectories"}[mode]
    ax.set_title(f"success vs horizon ({source})")
    plotting.legend(ax, 7)
    return plotting.save(fig, path)


def figures(tables: Frames, derived: Frames, folder: Path) -> Figures:
    rows = tables["e2"]
    return {
        "e2_trajectories": plot_trajectories(rows, folder / "e2_trajectories.png", by="n"),
        "e2_success_vs_horizon": plot_success_vs_horizon(
            rows, folder / "e2_success_vs_horizon.png", by="n", mode="checkpoints"
        ),
    }


def report_section(ctx: SectionContext) -> str:
    derived = ctx.derived
    tab = derived["e2_success_vs_horizon"]
    parts = [
        "## E2 Convergence\n",
        "Hamming distance and loss vs iteration (median and 10–90% band), and ergodic vs "
        "last-iterate success vs horizon T. Where the ergodic rate is high but the "
        "last-iterate rate is not, the last iterate cycles although the time average is "
        "already right.\n",
        ctx.image("e2_trajectories", "Hamming distance and loss vs iteration"),
        ctx.image("e2_success_vs_horizon", "success vs horizon"),
    ]
    for metric, name in (("success_ergodic", "Ergodic"), ("success_last", "Last-iterate")):
        sub = tab[tab["metric"] == metric].sort_values(["steps", "n"])
        columns, rows = pivot(sub, ["steps"], "n",
                              lambda r: interval(r.rate, r.ci_low, r.ci_high, 2))
        parts += [f"{name} success rate [95% Wilson CI] by horizon T (rows) and n (columns):\n",
                  table(("T", *[f"n={int(c)}" for c in columns]), rows), ""]
    return "\n".join(parts)


EXPERIMENT = Experiment(
    name="e2",
    title="E2 convergence: Hamming distance and loss vs iteration",
    profile_table="e2",
    tables=(Table("e2", "E2 convergence: Hamming distance and loss vs iteration",
                  cells=build_cells),),
    derive=derive,
    provides=("e2_success_vs_horizon",),
    figures=figures,
    section=report_section,
)
