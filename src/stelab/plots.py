"""Figures from stored rows (matplotlib, Agg, PNG at 120 dpi).

Every function takes the per-trial rows (a DataFrame), an output path and options, draws one
PNG and returns its path. Figures only recompute statistics (via :mod:`stelab.analysis`), never
experiments, so any figure can be redrawn from ``results.parquet``. Figures are built with
``matplotlib.figure.Figure`` directly (no pyplot global state), so they are safe in worker
processes and never open a window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from stelab.analysis import (
    at_checkpoints,
    fit_scaling,
    fit_threshold,
    mean_ci_by,
    reference_curve,
    return_time_distribution,
    returns_vs_horizon,
    success_by_steps,
    success_table,
    success_vs_horizon,
    thresholds_by,
    trajectories,
    trajectory_bands,
)
from stelab.analysis.threshold import check_fixed_setting
from stelab.config import NORMALIZATIONS
from stelab.errors import DataError

DPI = 120
LABELS = {
    "success_last": "last iterate",
    "success_ergodic": "ergodic (sign of time average)",
    "success_best": "best iterate",
    "absorbed": "absorbed",
    "hamming_trajectory": "Hamming distance H_t",
    "loss_trajectory": "training loss L(q_t)",
    "noise_level": "label-noise level p",
    "teacher_balance": "teacher balance",
}


def _label(name: str) -> str:
    return LABELS.get(name, name)


def _ordered(values, canonical: Sequence[str]) -> list:
    """``values`` in the order of ``canonical`` (unknown ones after, sorted)."""
    known = [v for v in canonical if v in set(values)]
    return known + sorted(v for v in values if v not in set(known))


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _figure(
    panels: int = 1, width: float = 6.4, height: float = 4.6, max_cols: int = 3
) -> tuple[Figure, list]:
    cols = min(panels, max_cols)
    nrows = math.ceil(panels / cols)
    fig = Figure(figsize=(width * cols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def _legend(ax, fontsize: int) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _colors(count: int) -> list:
    cmap = colormaps["tab10"] if count <= 10 else colormaps["viridis"]
    if count <= 10:
        return [cmap(i) for i in range(count)]
    return [cmap(x) for x in np.linspace(0.0, 0.9, count)]


def _group_label(by: list[str], key: tuple) -> str:
    return ", ".join(f"{c}={v:g}" if isinstance(v, int | float | np.number) else f"{c}={v}"
                     for c, v in zip(by, key, strict=True)) or "all"


def _groups(frame: pd.DataFrame, by: list[str]):
    if not by:
        yield (), frame
        return
    for key, group in frame.groupby(by, sort=True):
        yield (key if isinstance(key, tuple) else (key,)), group


def _yerr(center, low, high) -> np.ndarray:
    """Error-bar lengths (2, k); clipped at 0 because a percentile interval need not contain
    its point estimate, and rounding can leave an end a hair on the wrong side."""
    center = np.asarray(center, dtype=float)
    return np.clip(np.vstack([center - np.asarray(low, float), np.asarray(high, float) - center]),
                   0, None)


def _need(rows: pd.DataFrame, *columns: str) -> None:
    for column in columns:
        if column not in rows:
            raise DataError(f"rows.{column}: column missing")
    if len(rows) == 0:
        raise DataError("rows: empty table, nothing to plot")


def plot_success_heatmap(
    rows: pd.DataFrame,
    path: str | Path,
    success: str | Sequence[str] = ("success_last", "success_ergodic"),
    x: str = "d",
    y: str = "n",
) -> Path:
    """Success rate over the (d, n) grid, one panel per success notion.

    A rectangular grid is drawn as annotated cells; otherwise each (d, n) point is a coloured
    square on log-log axes.
    """
    metrics = _as_list(success)
    _need(rows, x, y, *metrics)
    table = success_table(rows, [x, y], metrics)
    fig, axes = _figure(len(metrics))
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
        ax.set_title(f"success rate: {_label(metric)}")
        fig.colorbar(image, ax=ax, label="success rate")
    return _save(fig, path)


def plot_success_curves(
    rows: pd.DataFrame,
    path: str | Path,
    success: str = "success_last",
    by: str | Sequence[str] = "d",
    link: str = "logit",
) -> Path:
    """Success rate vs n (Wilson 95% bars) per group, with the fitted P = F(a + b log n) and n50.

    The curve is the Firth-penalized fit of :func:`stelab.analysis.fit_threshold` (no bootstrap
    here); n50 is marked only when the grid identifies it.
    """
    by = _as_list(by)
    _need(rows, "n", success, *by)
    fig, axes = _figure(1, width=7.2)
    ax = axes[0]
    groups = list(_groups(rows, by))
    for color, (key, group) in zip(_colors(len(groups)), groups, strict=True):
        check_fixed_setting(group, vary=("n", *by))
        table = success_table(group, ["n"], success)
        n = table["n"].to_numpy(dtype=float)
        rate = table["rate"].to_numpy()
        err = _yerr(rate, table["ci_low"], table["ci_high"])
        label = _group_label(by, key)
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
    ax.set_ylabel(f"P(success), {_label(success)}")
    ax.set_title(f"success vs n with fitted {link} curve in log n (bars: Wilson 95% CI)")
    _legend(ax, 8)
    return _save(fig, path)


def plot_n50_scaling(
    rows: pd.DataFrame,
    path: str | Path,
    success: str | Sequence[str] = ("success_last", "success_ergodic"),
    thresholds: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    references: Sequence[str] = ("d^2", "d^4"),
) -> Path:
    """n50 vs d on log-log axes with bootstrap 95% CIs, the fitted power law per success notion,
    and the *shapes* of the reference bounds (d^2, d^4) drawn through the smallest-d point.

    ``thresholds`` (output of :func:`stelab.analysis.thresholds_by`) avoids refitting; without
    it the thresholds are fitted from ``rows`` grouped by d.
    """
    metrics = _as_list(success)
    if thresholds is None:
        _need(rows, "d", "n", *metrics)
        thresholds = thresholds_by(rows, "d", metrics, n_boot=n_boot, seed=seed)
    fig, axes = _figure(1, width=7.2)
    ax = axes[0]
    anchor = None
    missing = []
    for i, (color, metric) in enumerate(zip(_colors(len(metrics)), metrics, strict=True)):
        sub = thresholds[thresholds["success"] == metric].sort_values("d")
        ok = sub[np.isfinite(sub["n50"].to_numpy(dtype=float))]
        missing += [f"{_label(metric)}: d={d:g}" for d in sub.loc[~sub.index.isin(ok.index), "d"]]
        if ok.empty:
            continue
        shift = 1.0 + 0.03 * (i - (len(metrics) - 1) / 2)  # separate overlapping error bars
        n50 = ok["n50"].to_numpy(dtype=float)
        lo = np.where(np.isfinite(ok["ci_low"]), ok["ci_low"], n50)
        hi = np.where(np.isfinite(ok["ci_high"]), ok["ci_high"], n50)
        ax.errorbar(ok["d"] * shift, n50, yerr=_yerr(n50, lo, hi), fmt="o",
                    color=color, capsize=3, label=f"n50, {_label(metric)} (95% bootstrap CI)")
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
    _legend(ax, 7)
    return _save(fig, path)


def plot_trajectories(
    rows: pd.DataFrame,
    path: str | Path,
    columns: str | Sequence[str] = ("hamming_trajectory", "loss_trajectory"),
    by: str | Sequence[str] = "n",
    per_d: bool = True,
    quantiles: tuple[float, float] = (0.1, 0.9),
) -> Path:
    """Median (line) and quantile band across trials vs iteration t, one line per group and one
    panel per recorded trajectory column (Hamming as bit error H_t/d when ``per_d``)."""
    by = _as_list(by)
    present = [c for c in _as_list(columns) if c in rows]
    if not present:
        raise DataError(f"rows: none of {_as_list(columns)} recorded; set [record] trajectory")
    fig, axes = _figure(len(present))
    for ax, column in zip(axes, present, strict=True):
        scaled = per_d and column == "hamming_trajectory"
        bands = trajectory_bands(rows, column, by, quantiles, per_d=scaled)
        groups = list(_groups(bands, by))
        for color, (key, band) in zip(_colors(len(groups)), groups, strict=True):
            ax.plot(band["t"], band["median"], color=color, label=_group_label(by, key))
            ax.fill_between(band["t"], band["q_low"], band["q_high"], color=color, alpha=0.2,
                            lw=0)
        if column == "loss_trajectory":
            ax.set_yscale("symlog", linthresh=1e-4)
        ax.set_xlabel("iteration t")
        ax.set_ylabel("bit error H_t / d" if scaled else _label(column))
        ax.set_title(f"{_label(column)}: median and {quantiles[0]:.0%}-{quantiles[1]:.0%} band")
        _legend(ax, 8)
    return _save(fig, path)


def plot_success_vs_horizon(
    rows: pd.DataFrame,
    path: str | Path,
    by: str | Sequence[str] = (),
    mode: str = "auto",
) -> Path:
    """Ergodic vs last-iterate success against the horizon T (Wilson 95% bands).

    mode "checkpoints": ergodic and last iterate at the run's ergodic checkpoints
    (:func:`stelab.analysis.at_checkpoints`; last iterate only where trajectories were recorded);
    mode "steps": one run per T (column ``steps``), ergodic and last iterate;
    mode "trajectory": last and best iterate at every T' <= T from Hamming trajectories;
    "auto": "checkpoints" when recorded, else "steps" when ``steps`` takes several values, else
    "trajectory".
    """
    by = _as_list(by)
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
    fig, axes = _figure(1, width=7.2)
    ax = axes[0]
    groups = list(_groups(table, by))
    styles = {"success_last": "-", "success_ergodic": "--", "success_best": ":"}
    for color, (key, group) in zip(_colors(len(groups)), groups, strict=True):
        for metric, sub in group.groupby("metric"):
            sub = sub.sort_values("T")
            label = f"{_label(metric)}" + (f", {_group_label(by, key)}" if by else "")
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
    _legend(ax, 7)
    return _save(fig, path)


def plot_recurrence_paths(
    rows: pd.DataFrame,
    path: str | Path,
    by: str = "noise_level",
    n_paths: int = 3,
) -> Path:
    """Sample paths of H_t (the first ``n_paths`` trials), one panel per value of ``by``."""
    _need(rows, by, "hamming_trajectory")
    groups = list(_groups(rows, [by]))
    fig, axes = _figure(len(groups), width=10.0, height=2.6, max_cols=1)
    for ax, (key, group) in zip(axes, groups, strict=True):
        order = group.sort_values("trial") if "trial" in group else group
        for color, h in zip(_colors(n_paths), trajectories(order.head(n_paths)), strict=False):
            ax.plot(np.arange(h.size), h, color=color, lw=0.8, drawstyle="steps-post")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlabel("iteration t")
        ax.set_ylabel("Hamming distance H_t")
        ax.set_title(f"{_label(by)} = {key[0]:g}: {min(n_paths, len(group))} sample paths")
    return _save(fig, path)


def plot_returns_vs_horizon(
    rows: pd.DataFrame,
    path: str | Path,
    by: str | Sequence[str] = "noise_level",
) -> Path:
    """Mean number of returns to H = 0 up to T (95% t band across trials) vs T."""
    by = _as_list(by)
    table = returns_vs_horizon(rows, by=by)
    fig, axes = _figure(1, width=7.2)
    ax = axes[0]
    groups = list(_groups(table, by))
    for color, (key, sub) in zip(_colors(len(groups)), groups, strict=True):
        ax.plot(sub["T"], sub["returns_mean"], color=color, marker=".",
                label=_group_label(by, key))
        ax.fill_between(sub["T"], sub["returns_ci_low"].fillna(sub["returns_mean"]),
                        sub["returns_ci_high"].fillna(sub["returns_mean"]), color=color,
                        alpha=0.2, lw=0)
    ax.set_xlabel("horizon T (iterations)")
    ax.set_ylabel("returns to H = 0 up to T (mean)")
    ax.set_title("recurrence: returns to the optimum keep accumulating?")
    _legend(ax, 8)
    return _save(fig, path)


def plot_return_time_histogram(
    rows: pd.DataFrame,
    path: str | Path,
    by: str = "noise_level",
    kind: str = "return_time",
) -> Path:
    """Histogram (log-spaced bins, per-group frequency) of pooled return times, excursion or
    sojourn lengths; groups without any are listed in the title."""
    dist = return_time_distribution(rows, by)
    dist = dist[dist["kind"] == kind]
    fig, axes = _figure(1, width=7.2)
    ax = axes[0]
    values = sorted(rows[by].unique())
    empty = []
    if not dist.empty:
        top = float(dist["length"].max())
        bins = np.unique(np.round(np.geomspace(1, top + 1, 30)))
        if bins.size < 2:
            bins = np.array([1.0, top + 1.0])
    for color, value in zip(_colors(len(values)), values, strict=True):
        lengths = dist.loc[dist[by] == value, "length"].to_numpy(dtype=float)
        if lengths.size == 0:
            empty.append(f"{value:g}")
            continue
        weights = np.full(lengths.size, 1.0 / lengths.size)
        ax.hist(lengths, bins=bins, weights=weights, histtype="step", color=color, lw=1.5,
                label=f"{_label(by)} = {value:g} ({lengths.size} events)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{kind.replace('_', ' ')} (steps)")
    ax.set_ylabel("share of events")
    title = f"{kind.replace('_', ' ')} distribution (completed excursions only)"
    if empty:
        title += f"\nnone for {_label(by)} = {', '.join(empty)}"
    ax.set_title(title, fontsize=10)
    _legend(ax, 8)
    return _save(fig, path)


def plot_occupation_vs_noise(
    rows: pd.DataFrame,
    path: str | Path,
    x: str = "noise_level",
    value: str = "occupation",
    by: str | Sequence[str] = (),
) -> Path:
    """Mean occupation fraction (share of iterations at w*) vs noise level, 95% t CIs."""
    by = _as_list(by)
    table = mean_ci_by(rows, value, [*by, x])
    fig, axes = _figure(1)
    ax = axes[0]
    groups = list(_groups(table, by))
    for color, (key, sub) in zip(_colors(len(groups)), groups, strict=True):
        mean = sub["mean"].to_numpy()
        lo = sub["ci_low"].fillna(sub["mean"]).to_numpy()
        hi = sub["ci_high"].fillna(sub["mean"]).to_numpy()
        ax.errorbar(sub[x], mean, yerr=_yerr(mean, lo, hi), fmt="o-",
                    color=color, capsize=3, label=_group_label(by, key))
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(f"{value} (mean over trials)")
    ax.set_title(f"{value} vs {_label(x)} (95% t CI across trials)")
    if by:
        _legend(ax, 8)
    return _save(fig, path)


def plot_e4_heatmap(
    rows: pd.DataFrame,
    path: str | Path,
    success: str = "success_last",
    row: str = "distribution",
    col: str = "normalization",
    panel: str = "teacher_balance",
) -> Path:
    """Success rate for each (distribution, normalization), one panel per teacher balance;
    cells show the rate and its Wilson 95% interval, grey where there is no data."""
    _need(rows, row, col, panel, success)
    table = success_table(rows, [panel, row, col], success)
    panels = sorted(table[panel].unique())
    row_vals = sorted(table[row].unique())
    col_vals = _ordered(table[col].unique(), NORMALIZATIONS if col == "normalization" else ())
    fig, axes = _figure(len(panels), width=1.3 * len(col_vals) + 3.0,
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
        ax.set_title(f"{_label(panel)} = {value:g}" if isinstance(value, float | int)
                     else f"{_label(panel)} = {value}")
    if image is not None:
        fig.colorbar(image, ax=axes, label=f"success rate ({_label(success)})")
    fig.suptitle(f"E4: {_label(success)} success by {row} and {col}")
    return _save(fig, path)


def plot_threshold_vs_horizon(
    thresholds: pd.DataFrame,
    path: str | Path,
    by: str = "step_size",
    success: Sequence[str] = ("success_last", "success_ergodic"),
) -> Path:
    """n50 (with 95% CI) vs horizon T, one line per value of ``by`` and one panel per success
    notion, from a :func:`stelab.analysis.thresholds_by` table grouped by (``by``, "steps")."""
    _need(thresholds, by, "steps", "n50", "success")
    metrics = _as_list(success)
    fig, axes = _figure(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        sub = thresholds[thresholds["success"] == metric]
        values = sorted(sub[by].unique())
        for color, value in zip(_colors(len(values)), values, strict=True):
            line = sub[sub[by] == value].sort_values("steps")
            ok = line[np.isfinite(line["n50"].to_numpy(dtype=float))]
            if ok.empty:
                continue
            n50 = ok["n50"].to_numpy(dtype=float)
            lo = np.where(np.isfinite(ok["ci_low"]), ok["ci_low"], n50)
            hi = np.where(np.isfinite(ok["ci_high"]), ok["ci_high"], n50)
            ax.errorbar(ok["steps"], n50, yerr=_yerr(n50, lo, hi), marker="o",
                        color=color, capsize=3, label=f"{by}={value:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("horizon T (iterations)")
        ax.set_ylabel("threshold n50")
        ax.set_title(f"n50 vs horizon: {_label(metric)}")
        _legend(ax, 8)
    return _save(fig, path)


def plot_digits_accuracy(rows: pd.DataFrame, path: str | Path) -> Path:
    """E5: test accuracy (mean and 95% t interval over seeds, seeds as dots) per normalization,
    one panel per (task, model), with chance level."""
    _need(rows, "task", "model", "normalization", "test_accuracy")
    panels = list(_groups(rows, ["task", "model"]))
    fig, axes = _figure(len(panels), width=4.8, height=3.8, max_cols=4)
    for ax, (key, group) in zip(axes, panels, strict=True):
        norms = list(dict.fromkeys(group["normalization"]))
        stats = mean_ci_by(group, "test_accuracy", by="normalization").set_index("normalization")
        for i, norm in enumerate(norms):
            values = group.loc[group["normalization"] == norm, "test_accuracy"].to_numpy(float)
            ax.scatter(np.full(values.size, i) + 0.12, values, s=8, color="gray", alpha=0.6)
            ax.errorbar([i], [stats.loc[norm, "mean"]],
                        yerr=_yerr([stats.loc[norm, "mean"]], [stats.loc[norm, "ci_low"]],
                                   [stats.loc[norm, "ci_high"]]),
                        fmt="o", color="C0", capsize=4)
        if "chance" in group:
            ax.axhline(float(group["chance"].iloc[0]), color="red", ls=":", lw=1, label="chance")
        ax.set_xticks(range(len(norms)), norms)
        ax.set_ylabel("test accuracy")
        ax.set_title(_group_label(["task", "model"], key), fontsize=10)
        _legend(ax, 8)
    return _save(fig, path)
