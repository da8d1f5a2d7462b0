"""Is the n50 bootstrap as wide as the spread of n50 between independent runs?

Runs the E1 grid of the full profile (case m1_sign: m = 1, sign, identity STE, Gaussian inputs,
17 n/d values, T = 1000) at one d for several run seeds, ``--trials`` trials each, then fits
n50 per seed and notion with the per-n "trials" bootstrap and the "clustered" bootstrap (trial
streams resampled jointly across n) and prints, per notion, the between-seed standard
deviation of n50, the mean bootstrap standard deviation of each method, their ratio (1 when the
bootstrap is right) and the share of runs whose 95% CI holds the mean n50 of all runs.

    PYTHONPATH=src python bench/n50_seed_replication.py [--d 16] [--seeds 8] [--trials 64]
        [--workers 1] [--out DIR] [--n-boot 1000]

``--simulate`` instead runs the same comparison on synthetic runs (no engine): trial k succeeds
at n iff log n >= c_k + e_kn, c_k ~ N(log 142, s1) shared across n (common random numbers),
e_kn ~ N(0, s2) fresh at each n, on the d = 64 grid with 64 trials, for three (s1, s2) mixes.

The rows are stored under ``--out`` (a sweep folder, default
/tmp/n50_seed_replication_d<d>_s<seeds>_t<trials>: running again resumes and reuses them).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from stelab.analysis import fit_threshold, thresholds_by
from stelab.experiments import e1
from stelab.experiments.profile import load_profile
from stelab.sweep.runner import run_cells

SUCCESS = ("success_ergodic", "success_last")


def seed_cells(d: int, seeds: int, trials: int) -> list:
    """The E1 m1_sign cells at one d for run seeds base, base + 1, ..., with ``trials`` each."""
    profile = load_profile("full")
    spec = profile["e1"]
    case = next(c for c in spec["case"] if c["name"] == "m1_sign")
    base_seed = int(profile["base"]["run"]["seed"])
    cells = []
    for k in range(seeds):
        prof = {**profile, "base": {**profile["base"],
                                    "run": {**profile["base"]["run"], "seed": base_seed + k}}}
        one = {**spec, "trials": trials, "checkpoints": []}
        cells += e1._grid_cells(prof, one, {**case, "d": [d]})
    return cells


def spread(rows: pd.DataFrame, bootstrap: str, n_boot: int) -> pd.DataFrame:
    """Per notion: between-seed s.d. of n50 and the mean within-run bootstrap s.d."""
    fits = thresholds_by(rows, by=("seed",), success=SUCCESS, n_boot=n_boot, bootstrap=bootstrap)
    out = []
    for notion, group in fits.groupby("success"):
        boot_sd = [np.nanstd(b, ddof=1) for b in group["boot_n50"]]
        out.append({"success": notion, "bootstrap": bootstrap,
                    "labels": ",".join(sorted(set(group["bootstrap"]))),
                    "seeds": len(group), "mean_n50": group["n50"].mean(),
                    "between_seed_sd": group["n50"].std(ddof=1),
                    "mean_boot_sd": float(np.mean(boot_sd)),
                    "ratio": group["n50"].std(ddof=1) / float(np.mean(boot_sd)),
                    # share of runs whose 95% CI holds the mean n50 over all runs
                    "coverage": float(((group["ci_low"] <= group["n50"].mean())
                                       & (group["n50"].mean() <= group["ci_high"])).mean())})
    return pd.DataFrame(out)


def fit_seconds(n_boot: int, repeats: int = 5) -> dict[str, float]:
    """Seconds per fit_threshold call on 17 n x 100 trials (common random numbers), by method,
    alternating the methods so that both see the same machine load."""
    rng = np.random.default_rng(0)
    ratios = np.array([0.5, 0.71, 1, 1.41, 2, 2.83, 4, 5.66, 8, 11.3, 16, 22.6, 32, 45.3, 64,
                       90.5, 128])
    n = np.repeat(np.ceil(64 * ratios), 100)
    trial = np.tile(np.arange(100), ratios.size)
    critical = np.exp(rng.normal(math.log(400.0), 1.0, 100))[trial]
    success = (n >= critical) ^ (rng.random(n.size) < 0.05)
    best = {"trials": math.inf, "clustered": math.inf}
    for _ in range(repeats):
        for method in best:
            start = time.perf_counter()
            fit_threshold(n, success, n_boot=n_boot, bootstrap=method, cluster=trial)
            best[method] = min(best[method], time.perf_counter() - start)
    return best


def simulate(replications: int = 400, runs: int = 40, n_boot: int = 400) -> pd.DataFrame:
    """Bootstrap s.d. / true s.d. of n50 on synthetic runs (module docstring)."""
    ratios = np.array([0.5, 0.71, 1, 1.41, 2, 2.83, 4, 5.66, 8, 11.3, 16, 22.6, 32, 45.3, 64,
                       90.5, 128])
    n = np.repeat(np.ceil(64 * ratios), 64)
    trial = np.tile(np.arange(64), ratios.size)
    out = []
    for s1, s2 in ((0.3, 0.0), (0.2, 0.2), (0.05, 0.3)):
        rng = np.random.default_rng(5)

        def draw(rng=rng, s1=s1, s2=s2):
            return np.log(n) >= rng.normal(math.log(142.0), s1, 64)[trial] + \
                rng.normal(0.0, s2, n.size)

        true_sd = np.std([fit_threshold(n, draw(), n_boot=0).n50 for _ in range(replications)],
                         ddof=1)
        row = {"s1 (shared)": s1, "s2 (per n)": s2, "true_sd": true_sd}
        for method in ("trials", "clustered"):
            sds = [np.nanstd(fit_threshold(n, draw(), n_boot=n_boot, bootstrap=method,
                                           cluster=trial, seed=r).boot_n50, ddof=1)
                   for r in range(runs)]
            row[f"{method}_ratio"] = float(np.mean(sds)) / true_sd
        out.append(row)
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", default=None)
    parser.add_argument("--simulate", action="store_true")
    args = parser.parse_args()
    if args.simulate:
        print("bootstrap s.d. / true s.d. of n50 on synthetic runs (1 = right):")
        print(simulate().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        return
    cells = seed_cells(args.d, args.seeds, args.trials)
    out = args.out or f"/tmp/n50_seed_replication_d{args.d}_s{args.seeds}_t{args.trials}"
    rows = run_cells(cells, out, workers=args.workers, progress=False)
    table = pd.concat([spread(rows, b, args.n_boot) for b in ("trials", "clustered")])
    # the s.e. of a s.d. from k seeds is about sd / sqrt(2 (k - 1))
    rel = 1.0 / math.sqrt(2.0 * (args.seeds - 1))
    print(f"d = {args.d}, {args.seeds} seeds x {args.trials} trials, n_boot = {args.n_boot}; "
          f"between-seed s.d. has a relative s.e. of ~{rel:.0%}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    speed = fit_seconds(args.n_boot)
    print(f"fit_threshold, 17 n x 100 trials, n_boot = {args.n_boot} (best of 5): trials "
          f"{speed['trials']:.3f} s, clustered {speed['clustered']:.3f} s "
          f"({speed['clustered'] / speed['trials']:.2f}x)")


if __name__ == "__main__":
    main()
