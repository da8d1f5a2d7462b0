"""E4 non-Gaussian data (claim C4): every distribution x normalization x teacher balance;
success with Wilson CIs per cell, and which raw failures a normalization restores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from stelab import analysis
from stelab.config import NORMALIZATIONS, Config
from stelab.data import DISTRIBUTIONS
from stelab.experiments.profile import cell, sample_size, section
from stelab.experiments.registry import Experiment, Figures, Frames, SectionContext, Table
from stelab.render import plotting
from stelab.render.markdown import interval, table

SUCCESS = ("success_last", "success_ergodic")


def distributions(spec: dict[str, Any]) -> list[str]:
    """The distributions of the profile; "all" means the whole registry."""
    chosen = spec.get("distributions", "all")
    return sorted(DISTRIBUTIONS) if chosen == "all" else list(chosen)


def build_cells(profile: dict[str, Any]) -> list[Config]:
    """Every distribution x normalization x teacher balance at one d and n."""
    spec = section(profile, "e4")
    d = spec["d"]
    return [
        cell(
            profile,
            model={"d": d, "teacher_balance": balance},
            data={"distribution": dist, "normalization": norm},
            train={"n": sample_size(d, spec["n_over_d"]), "steps": spec["steps"]},
            run={"trials": spec["trials"]},
        )
        for dist in distributions(spec)
        for norm in spec["normalizations"]
        for balance in spec["teacher_balances"]
    ]


def derive(tables: Frames, n_boot: int) -> Frames:
    """Success with Wilson CIs per distribution x normalization x teacher balance."""
    return {
        "e4_success": analysis.success_table(
            tables["e4"], by=("distribution", "normalization", "teacher_balance"),
            success=SUCCESS,
        )
    }


def plot_e4_heatmap(
    rows: pd.DataFrame,
    path: str | Path | None,
    success: str = "success_last",
    row: str = "distribution",
    col: str = "normalization",
    panel: str = "teacher_balance",
) -> Path | Figure:
    """Success rate for each (distribution, normalization), one panel per teacher balance;
    cells show the rate and its Wilson 95% interval, grey where there is no data."""
    plotting.need(rows, row, col, panel, success)
    table = analysis.success_table(rows, [panel, row, col], success)
    panels = sorted(table[panel].unique())
    row_vals = sorted(table[row].unique())
    canonical = NORMALIZATIONS if col == "normalization" else ()
    col_vals = plotting.ordered(table[col].unique(), canonical)
    fig, axes = plotting.figure(len(panels), width=1.3 * len(col_vals) + 3.0,
                                height=0.45 * len(row_vals) + 1.8)
    image = None
    for ax, value in zip(axes, panels, strict=True):
        sub = table[table[panel] == value].set_index([row, col])
        grid = np.full((len(row_vals), len(col_vals)), np.nan)
        for i, r in enumerate(row_vals):
            for j, c in enumerate(col_vals):
                if (r, c) in sub.index:
                    rec = sub.loc[(r, c)]
                    grid[i, j] = rec["rate"]
                    ax.text(j, i, f"{rec['rate']:.2f}\n[{rec['ci_low']:.2f},{rec['ci_high']:.2f}]",
                            ha="center", va="center", fontsize=6,
                            color="white" if rec["rate"] < 0.6 else "black")
        cmap = colormaps["viridis"].with_extremes(bad="lightgray")
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(col_vals)), col_vals, rotation=30, ha="right")
        ax.set_yticks(range(len(row_vals)), row_vals)
        ax.set_title(f"{plotting.label(panel)} = {value:g}" if isinstance(value, float | int)
                     else f"{plotting.label(panel)} = {value}")
    if image is not None:
        fig.colorbar(image, ax=axes, label=f"success rate ({plotting.label(success)})")
    fig.suptitle(f"E4: {plotting.label(success)} success by {row} and {col}")
    return plotting.save(fig, path)


def figures(tables: Frames, derived: Frames, folder: Path) -> Figures:
    return {
        f"e4_{success}": plot_e4_heatmap(tables["e4"], folder / f"e4_{success}.png",
                                         success=success)
        for success in SUCCESS
    }


def report_section(ctx: SectionContext) -> str:
    tab = ctx.derived["e4_success"]
    verdict = ctx.verdicts.get("C4")
    tab = tab[tab["metric"] == "success_last"]
    norms = list(dict.fromkeys(tab["normalization"]))
    parts = [
        "## E4 Non-Gaussian data and normalization (C4)\n",
        "Last-iterate success rate [95% Wilson CI] per distribution and normalization.\n",
    ]
    for balance, group in tab.groupby("teacher_balance"):
        cells = {(r.distribution, r.normalization): r for r in group.itertuples()}
        rows = [
            (
                dist,
                *[
                    interval(
                        cells[(dist, n)].rate, cells[(dist, n)].ci_low, cells[(dist, n)].ci_high, 2
                    )
                    if (dist, n) in cells
                    else "—"
                    for n in norms
                ],
            )
            for dist in sorted(group["distribution"].unique())
        ]
        parts.append(f"### Teacher balance {balance:g}\n")
        parts.append(table(("distribution", *norms), rows))
        parts.append("")
    if verdict is not None:
        failures = verdict.evidence.get("raw_failures", [])
        restored = verdict.evidence.get("restored_by", {})
        parts.append("Distributions that break STE raw, and what restores each:\n")
        parts += [
            f"- {f}: restored by {', '.join(restored.get(f, [])) or 'nothing tried'}"
            for f in failures
        ] or ["- none"]
        parts.append("")
    parts.append(ctx.image("e4_success_last", "E4 last-iterate success"))
    parts.append(ctx.image("e4_success_ergodic", "E4 ergodic success"))
    return "\n".join(parts)


EXPERIMENT = Experiment(
    name="e4",
    title="E4 non-Gaussian data x normalization x teacher balance (C4)",
    profile_table="e4",
    tables=(Table("e4", "E4 non-Gaussian data x normalization x teacher balance (C4)",
                  cells=build_cells),),
    derive=derive,
    provides=("e4_success",),
    figures=figures,
    section=report_section,
    claims=("C4",),
)
