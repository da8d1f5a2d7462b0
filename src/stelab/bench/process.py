"""Benchmark ``process``: whole processes, start-up included (issue 21, item 5).

Workload: the three d = 1024 E1 workloads of ``numpy`` (:mod:`stelab.bench.scale`: m = 1, sign,
identity STE, Gaussian, noiseless, c = 0.5, small init, T = 300, n = 3549, 7098, 14196 =
0.5, 1, 2 d ln d, 16 trials each), with the bench's seed.

* Baseline: the careful per-trial numpy loop of ``numpy`` (:mod:`stelab.bench.numpy_loop`) as
  its own process, ``python -m stelab.bench.numpy_loop``: it draws each trial's problem with
  numpy on the engine's streams, runs the loop and exits. Its BLAS runs with its default threads
  and with one thread; the faster is the baseline (the stronger one), chosen on the first repeat.
* stelab: ``python -m stelab sweep CONFIG --out FRESH_FOLDER`` over the same workloads (one
  cell per n, the default local executor), timed from start to exit: imports, planning, drawing
  the data, the runs, writing and summarizing the results.
* Ratio: baseline seconds / stelab seconds per repeat (target >= 5). The engine-only ratio on
  the same workload is ``numpy``'s. The success flags of the last iterate are compared trial by
  trial (the loop decides signs on float32 values, so a rare trial may differ).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stelab.bench.common import Printer, Ratio, settle

__all__ = ["WORKLOADS", "bench_process"]

#: size -> (d, n values, trials, steps, repeats)
WORKLOADS: dict[str, tuple[int, tuple[int, ...], int, int, int]] = {
    "tiny": (64, (133, 266), 2, 20, 1),
    "quick": (1024, (3549, 7098, 14196), 16, 300, 2),
    "full": (1024, (3549, 7098, 14196), 16, 300, 3),
}
#: the bench's seed (:func:`stelab.bench.common.bench_config`)
SEED = 20260527

SWEEP = """[model]
d = {d}
[train]
n = [{ns}]
steps = {steps}
[run]
trials = {trials}
seed = {seed}
device = "cpu"
[sweep]
axes = ["train.n"]
"""


def _timed(command: list[str], cwd: Path) -> tuple[float, str]:
    settle()
    began = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-800:]}")
    return seconds, done.stdout


def _loop(d: int, ns: tuple[int, ...], trials: int, steps: int, threads: int | None,
          cwd: Path) -> tuple[float, list[list[bool]]]:
    command = [sys.executable, "-m", "stelab.bench.numpy_loop", "--d", str(d), "--n",
               *map(str, ns), "--trials", str(trials), "--steps", str(steps), "--seed", str(SEED)]
    if threads is not None:
        command += ["--blas-threads", str(threads)]
    seconds, out = _timed(command, cwd)
    return seconds, json.loads(out.strip().splitlines()[-1])["success_last"]


def _sweep(config: Path, out: Path) -> tuple[float, dict[tuple[int, int], bool]]:
    seconds, _ = _timed([sys.executable, "-m", "stelab", "sweep", str(config), "--out",
                         str(out)], config.parent)
    import pandas as pd

    rows = pd.read_parquet(out / "results.parquet", columns=["n", "trial", "success_last"])
    return seconds, {(int(r.n), int(r.trial)): bool(r.success_last) for r in rows.itertuples()}


def bench_process(quick: bool = False, say: Printer = print, tiny: bool = False) -> Ratio:
    """Numpy loop process seconds / ``stelab sweep`` process seconds (module docstring)."""
    size = "tiny" if tiny else ("quick" if quick else "full")
    d, ns, trials, steps, repeats = WORKLOADS[size]
    ratios, loop_times, sweep_times = [], [], []
    threads: int | None = None
    agree = total = 0
    with tempfile.TemporaryDirectory(prefix="stelab-bench-process-") as tmp:
        folder = Path(tmp)
        config = folder / "sweep.toml"
        config.write_text(SWEEP.format(d=d, ns=", ".join(map(str, ns)), steps=steps,
                                       trials=trials, seed=SEED))
        for repeat in range(repeats):
            if repeat == 0:
                default = _loop(d, ns, trials, steps, None, folder)
                one = _loop(d, ns, trials, steps, 1, folder)
                threads = 1 if one[0] < default[0] else None
                say(f"  process: numpy loop process, BLAS threads default {default[0]:.1f} s, "
                    f"one {one[0]:.1f} s")
                loop_s, flags = min(default, one, key=lambda x: x[0])
            else:
                loop_s, flags = _loop(d, ns, trials, steps, threads, folder)
            sweep_s, stored = _sweep(config, folder / f"out{repeat}")
            ratios.append(loop_s / sweep_s)
            loop_times.append(loop_s)
            sweep_times.append(sweep_s)
            say(f"  process: repeat {repeat + 1}: numpy loop {loop_s:.2f} s, stelab sweep "
                f"{sweep_s:.2f} s, ratio {loop_s / sweep_s:.2f}")
        for n, row in zip(ns, flags, strict=True):
            for k, flag in enumerate(row):
                agree += stored[(n, k)] == flag
                total += 1
    say(f"  process: success flags (last iterate) agree in {agree}/{total} trials; "
        f"{os.cpu_count()} CPUs")
    return Ratio(
        "process",
        f"numpy loop process time / stelab sweep process time, d={d} n={', '.join(map(str, ns))} "
        f"T={steps}, {trials} trials each, start-up included",
        ratios, 5.0,
        {"loop_s": loop_times, "sweep_s": sweep_times, "flags_agree": agree,
         "flags_total": total, "baseline_threads": threads or "default"},
    )
