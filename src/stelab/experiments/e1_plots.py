"""E1's figures: success over the (d, n) grid, success vs n with the fitted curve, and n50 vs d
with the fitted power law and the shapes of the bounds. General enough for any sweep over d and
n (docs/analysis.md uses them on a sweep's rows)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from stelab.analysis import (
    fit_scaling,
    fit_threshold,
    reference_curve,
    success_table,
    thresholds_by,
)
from stelab.analysis.threshold import check_fixed_setting
from stelab.render import plotting


def plot_success_heatmap(
    rows: pd.DataFrame,
    path: str | Path | None,
    success: str | Sequence[str] = ("success_last", "success_ergodic"),
    x: str = "d",
    y: str = "n",
) -> Path | Figure:
    """Success rate over the (d, n) grid, one panel per success notion.

    A rectangular grid is drawn as annotated cells; otherwise each (d, n) point is a coloured
    square on log-log axes.
    """
    metrics = plotting.as_list(success)
    plotting.need(rows, x, y, *metrics)
    table = success_table(rows, [x, y], metrics)
    fig, axes = plotting.figure(len(metrics))
    xs, ys = np.sort(table[x].unique()), np.sort(table[y].unique())
    rectangular = len(table) == len(metrics) * xs.size * ys.size and xs.size * ys.size <= 400
    for ax, metric in zip(axes, metrics, strict=True):
        sub = table[table["metric"] == metric]
        if rectangular:
            grid = sub.pivot(index=y, columns=x, values="rate").loc[ys, xs].to_numpy()
            image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(xs.size), [f"{v:g}" for v in xs])
            ax.set_yticks(range(ys.size), [f"{v:g}" for v in ys])
            if xs.size * ys.size <= 120:
                for i in range(ys.size):
                    for j in range(xs.size):
                        ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                                color="white" if grid[i, j] < 0.6 else "black")
        else:
            image = ax.scatter(sub[x], sub[y], c=sub["rate"], cmap="viridis", vmin=0, vmax=1,
                               marker="s", s=90, edgecolors="none")
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"success rate: {plotting.label(metric)}")
        fig.colorbar(image, ax=ax, label="success rate")
    return plotting.save(fig, path)


def plot_success_curves(
    rows: pd.DataFrame,
    path: str | Path | None,
    success: str = "success_last",
    by: str | Sequence[str] = "d",
    link: str = "logit",
) -> Path | Figure:
    """Success rate vs n (Wilson 95% bars) per group, with the fitted P = F(a + b log n) and n50.

    The curve is the Firth-penalized fit of :func:`stelab.analysis.fit_threshold` (no bootstrap
    here); n50 is marked only when the grid identifies it.
    """
    by = plotting.as_list(by)
    plotting.need(rows, "n", success, *by)
    fig, axes = plotting.figure(1, width=7.2)
    ax = axes[0]
    groups = list(plotting.groups(rows, by))
    for color, (key, group) in zip(plotting.colors(len(groups)), groups, strict=True):
        check_fixed_setting(group, vary=("n", *by))
        table = success_table(group, ["n"], success)
        n = table["n"].to_numpy(dtype=float)
        rate = table["rate"].to_numpy()
        err = plotting.yerr(rate, table["ci_low"], table["ci_high"])
        label = plotting.group_label(by, key)
        ax.errorbar(n, rate, yerr=err, fmt="o", color=color, capsize=3, ms=4)
        fit = fit_threshold(group["n"].to_numpy(), group[success].to_numpy(dtype=bool), link,
                            n_boot=0)
        if np.isfinite(fit.slope):
            grid = np.geomspace(n.min(), n.max(), 200)
            ax.plot(grid, fit.predict(grid), color=color, lw=1.5)
        if fit.identified:
            ax.axvline(fit.n50, color=color, ls=":", lw=1)
            label += f" (n50 = {fit.n50:.3g})"
        else:
            label += " (n50 not identified)"
        ax.plot([], [], "o-", color=color, label=label)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("sample size n")
    ax.set_ylabel(f"P(success), {plotting.label(success)}")
    ax.set_title(f"success vs n with fitted {link} curve in log n (bars: Wilson 95% CI)")
    plotting.legend(ax, 8)
    return plotting.save(fig, path)


def plot_n50_scaling(
    rows: pd.DataFrame,
    path: str | Path | None,
    success: str | Sequence[str] = ("success_last", "success_ergodic"),
    thresholds: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    references: Sequence[str] = ("d^2", "d^4"),
) -> Path | Figure:
    """n50 vs d on log-log axes with bootstrap 95% CIs, the fitted power law per success notion,
    and the *shapes* of the reference bounds (d^2, d^4) drawn through the smallest-d point.

    ``thresholds`` (output of :func:`stelab.analysis.thresholds_by`) avoids refitting; without
    it the thresholds are fitted from ``rows`` grouped by d.
    """
    metrics = plotting.as_list(success)
    if thresholds is None:
        plotting.need(rows, "d", "n", *metrics)
        thresholds = thresholds_by(rows, "d", metrics, n_boot=n_boot, seed=seed)
    fig, axes = plotting.figure(1, width=7.2)
    ax = axes[0]
    anchor = None
    missing = []
    for i, (color, metric) in enumerate(zip(plotting.colors(len(metrics)), metrics, strict=True)):
        sub = thresholds[thresholds["success"] == metric].sort_values("d")
        ok = sub[np.isfinite(sub["n50"].to_numpy(dtype=float))]
        missing += [f"{plotting.label(metric)}: d={d:g}"
                    for d in sub.loc[~sub.index.isin(ok.index), "d"]]
        if ok.empty:
            continue
        shift = 1.0 + 0.03 * (i - (len(metrics) - 1) / 2)  # separate overlapping error bars
        n50, bars = plotting.interval_bars(ok)
        ax.errorbar(ok["d"] * shift, n50, yerr=bars, fmt="o", color=color, capsize=3,
                    label=f"n50, {plotting.label(metric)} (95% bootstrap CI)")
        if anchor is None:
            anchor = (float(ok["d"].iloc[0]), float(n50[0]))
        fit = fit_scaling(sub.drop(columns="success"), n_boot=2000, seed=seed)
        if np.isfinite(fit.alpha):
            dd = np.geomspace(fit.d_min, fit.d_max, 100)
            ci = (f", 95% CI [{fit.alpha_ci_low:.2f}, {fit.alpha_ci_high:.2f}]"
                  if np.isfinite(fit.alpha_ci_low) else "")
            ax.plot(dd, fit.predict(dd), color=color, lw=1.5,
                    label=f"fit n50 = C d^alpha: alpha = {fit.alpha:.2f}{ci}")
    if anchor is not None:
        dd = np.geomspace(thresholds["d"].min(), thresholds["d"].max(), 100)
        for style, shape in zip(("--", "-."), references, strict=False):
            ax.plot(dd, reference_curve(dd, shape, *anchor), color="gray", ls=style, lw=1,
                    label=f"{shape} shape (order of an upper bound; through smallest-d point)")
    if missing:
        ax.text(0.01, 0.01, "not identified: " + "; ".join(missing), transform=ax.transAxes,
                fontsize=7, va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    d_values = np.sort(thresholds["d"].unique())
    if d_values.size <= 12:
        ax.set_xticks(d_values, [f"{v:g}" for v in d_values])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("dimension d")
    ax.set_ylabel("threshold n50 (50% success)")
    ax.set_title("sample-complexity threshold vs d")
    plotting.legend(ax, 7)
    return plotting.save(fig, path)
