"""E3 recurrence (claim C3): flip label noise p; Hamming trajectories, returns to w* vs T,
return-time and excursion distributions, occupation vs p (p = 0 shows absorption)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stelab import analysis
from stelab.analysis import mean_ci_by, return_time_distribution, returns_vs_horizon, trajectories
from stelab.config import Config
from stelab.experiments.profile import cell, sample_size, section
from stelab.experiments.registry import Experiment, Figures, Frames, SectionContext, Table
from stelab.render import plotting
from stelab.render.markdown import fmt, interval, table


def build_cells(profile: dict[str, Any]) -> list[Config]:
    """One cell per noise level p (flip noise; p = 0 is noiseless), recording trajectories."""
    spec = section(profile, "e3")
    d = spec["d"]
    return [
        cell(
            profile,
            model={"d": d},
            noise={"kind": "flip" if p > 0 else "none", "level": p},
            train={"n": sample_size(d, spec["n_over_d"]), "steps": spec["steps"]},
            run={"trials": spec["trials"]},
            record={"trajectory": True},
        )
        for p in spec["noise_levels"]
    ]


def derive(tables: Frames, n_boot: int) -> Frames:
    """Recurrence statistics per noise level."""
    rows = tables["e3"]
    return {
        "e3_growth": analysis.return_growth(rows, by="noise_level"),
        "e3_occupation": analysis.mean_ci_by(rows, "occupation", by="noise_level"),
        "e3_absorbed": analysis.success_table(
            rows,
            by="noise_level",
            success=("absorbed", "success_last", "success_ergodic", "success_best"),
        ),
        "e3_return_times": analysis.return_time_summary(rows, by="noise_level"),
    }


def plot_recurrence_paths(
    rows: pd.DataFrame,
    path: str | Path | None,
    by: str = "noise_level",
    n_paths: int = 3,
) -> Path | Figure:
    """Sample paths of H_t (the first ``n_paths`` trials), one panel per value of ``by``."""
    plotting.need(rows, by, "hamming_trajectory")
    groups = list(plotting.groups(rows, [by]))
    fig, axes = plotting.figure(len(groups), width=10.0, height=2.6, max_cols=1)
    for ax, (key, group) in zip(axes, groups, strict=True):
        order = group.sort_values("trial") if "trial" in group else group
        paths = trajectories(order.head(n_paths))
        for color, h in zip(plotting.colors(n_paths), paths, strict=False):
            ax.plot(np.arange(h.size), h, color=color, lw=0.8, drawstyle="steps-post")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlabel("iteration t")
        ax.set_ylabel("Hamming distance H_t")
        ax.set_title(f"{plotting.label(by)} = {key[0]:g}: {min(n_paths, len(group))} sample paths")
    return plotting.save(fig, path)


def plot_returns_vs_horizon(
    rows: pd.DataFrame,
    path: str | Path | None,
    by: str | Sequence[str] = "noise_level",
) -> Path | Figure:
    """Mean number of returns to H = 0 up to T (95% t band across trials) vs T."""
    by = plotting.as_list(by)
    table = returns_vs_horizon(rows, by=by)
    fig, axes = plotting.figure(1, width=7.2)
    ax = axes[0]
    groups = list(plotting.groups(table, by))
    for color, (key, sub) in zip(plotting.colors(len(groups)), groups, strict=True):
        ax.plot(sub["T"], sub["returns_mean"], color=color, marker=".",
                label=plotting.group_label(by, key))
        ax.fill_between(sub["T"], sub["returns_ci_low"].fillna(sub["returns_mean"]),
                        sub["returns_ci_high"].fillna(sub["returns_mean"]), color=color,
                        alpha=0.2, lw=0)
    ax.set_xlabel("horizon T (iterations)")
    ax.set_ylabel("returns to H = 0 up to T (mean)")
    ax.set_title("recurrence: returns to the optimum keep accumulating?")
    plotting.legend(ax, 8)
    return plotting.save(fig, path)


def plot_return_time_histogram(
    rows: pd.DataFrame,
    path: str | Path | None,
    by: str = "noise_level",
    kind: str = "return_time",
) -> Path | Figure:
    """Histogram (log-spaced bins, per-group frequency) of pooled return times, excursion or
    sojourn lengths; groups without any are listed in the title."""
    dist = return_time_distribution(rows, by)
    dist = dist[dist["kind"] == kind]
    fig, axes = plotting.figure(1, width=7.2)
    ax = axes[0]
    values = sorted(rows[by].unique())
    empty = []
    if not dist.empty:
        top = float(dist["length"].max())
        bins = np.unique(np.round(np.geomspace(1, top + 1, 30)))
        if bins.size < 2:
            bins = np.array([1.0, top + 1.0])
    for color, value in zip(plotting.colors(len(values)), values, strict=True):
        lengths = dist.loc[dist[by] == value, "length"].to_numpy(dtype=float)
        if lengths.size == 0:
            empty.append(f"{value:g}")
            continue
        weights = np.full(lengths.size, 1.0 / lengths.size)
        ax.hist(lengths, bins=bins, weights=weights, histtype="step", color=color, lw=1.5,
                label=f"{plotting.label(by)} = {value:g} ({lengths.size} events)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{kind.replace('_', ' ')} (steps)")
    ax.set_ylabel("share of events")
    title = f"{kind.replace('_', ' ')} distribution (completed excursions only)"
    if empty:
        title += f"\nnone for {plotting.label(by)} = {', '.join(empty)}"
    ax.set_title(title, fontsize=10)
    plotting.legend(ax, 8)
    return plotting.save(fig, path)


def plot_occupation_vs_noise(
    rows: pd.DataFrame,
    path: str | Path | None,
    x: str = "noise_level",
    value: str = "occupation",
    by: str | Sequence[str] = (),
) -> Path | Figure:
    """Mean occupation fraction (share of iterations at w*) vs noise level, 95% t CIs."""
    by = plotting.as_list(by)
    table = mean_ci_by(rows, value, [*by, x])
    fig, axes = plotting.figure(1)
    ax = axes[0]
    groups = list(plotting.groups(table, by))
    for color, (key, sub) in zip(plotting.colors(len(groups)), groups, strict=True):
        mean = sub["mean"].to_numpy()
        lo = sub["ci_low"].fillna(sub["mean"]).to_numpy()
        hi = sub["ci_high"].fillna(sub["mean"]).to_numpy()
        ax.errorbar(sub[x], mean, yerr=plotting.yerr(mean, lo, hi), fmt="o-",
                    color=color, capsize=3, label=plotting.group_label(by, key))
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(plotting.label(x))
    ax.set_ylabel(f"{value} (mean over trials)")
    ax.set_title(f"{value} vs {plotting.label(x)} (95% t CI across trials)")
    if by:
        plotting.legend(ax, 8)
    return plotting.save(fig, path)


def figures(tables: Frames, derived: Frames, folder: Path) -> Figures:
    rows = tables["e3"]
    return {
        "e3_paths": plot_recurrence_paths(rows, folder / "e3_paths.png"),
        "e3_returns_vs_T": plot_returns_vs_horizon(rows, folder / "e3_returns_vs_T.png"),
        "e3_return_times": plot_return_time_histogram(rows, folder / "e3_return_times.png"),
        "e3_excursions": plot_return_time_histogram(
            rows, folder / "e3_excursions.png", kind="excursion"
        ),
        "e3_occupation": plot_occupation_vs_noise(rows, folder / "e3_occupation.png"),
    }


def report_section(ctx: SectionContext) -> str:
    derived = ctx.derived
    growth = derived["e3_growth"].set_index("noise_level")
    occ = derived["e3_occupation"].set_index("noise_level")
    absorbed = derived["e3_absorbed"]
    absorbed = absorbed[absorbed["metric"] == "absorbed"].set_index("noise_level")
    times = derived["e3_return_times"]
    times = times[times["kind"] == "return_time"].set_index("noise_level")
    rows = []
    for p in growth.index:
        g = growth.loc[p]
        rows.append(
            (
                fmt(p),
                str(int(g["T"])),
                interval(g["returns_mean"], g["returns_ci_low"], g["returns_ci_high"]),
                interval(g["late_rate"], g["late_rate_ci_low"], g["late_rate_ci_high"]),
                interval(occ.loc[p, "mean"], occ.loc[p, "ci_low"], occ.loc[p, "ci_high"]),
                interval(
                    absorbed.loc[p, "rate"], absorbed.loc[p, "ci_low"], absorbed.loc[p, "ci_high"]
                ),
                fmt(times.loc[p, "median"]) if p in times.index else "—",
            )
        )
    return "\n".join(
        [
            "## E3 Recurrence under label noise (C3)\n",
            table(
                (
                    "p",
                    "T",
                    "returns to w* (mean) [CI]",
                    "late return rate per step [CI]",
                    "occupation [CI]",
                    "absorbed [Wilson CI]",
                    "median return time",
                ),
                rows,
            ),
            "",
            ctx.image("e3_paths", "Hamming paths"),
            ctx.image("e3_returns_vs_T", "returns vs T"),
            ctx.image("e3_return_times", "return times"),
            ctx.image("e3_excursions", "excursion lengths"),
            ctx.image("e3_occupation", "occupation vs p"),
        ]
    )


EXPERIMENT = Experiment(
    name="e3",
    title="E3 recurrence under flip label noise (C3)",
    profile_table="e3",
    tables=(Table("e3", "E3 recurrence under flip label noise (C3)", cells=build_cells),),
    derive=derive,
    provides=("e3_growth", "e3_occupation", "e3_absorbed", "e3_return_times"),
    figures=figures,
    section=report_section,
    claims=("C3",),
)
