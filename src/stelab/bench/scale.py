"""Benchmark ``numpy``: the engine against the research script at large d, and both against
the floors set by the bytes that must be read.

Workload (issue 10): E1, m = 1, sign, identity STE, Gaussian, noiseless, c = 0.5, small init,
T = 300, d = 1024 and n = 0.5, 1 and 2 d ln d (3549, 7098, 14196), 16 trials; plus d = 2048
and 4096 at n = d ln d with fewer trials. In this regime almost no trial converges within T
steps and tens of coordinates flip at every step.

* Baseline: the careful per-trial numpy loop (:mod:`stelab.bench.numpy_loop`) on the engine's
  own problems. Its BLAS runs with its default threads and with one thread; the faster of the
  two is the baseline (the stronger one), chosen on the first workload.
* Engine: :func:`stelab.engine.run_chunk` with the engine and layout the memory planner takes
  for the run (:mod:`stelab.engine.budget`).
* Ratio: baseline time / engine time, per n and on the sum over the three d = 1024 workloads
  (targets: >= 3 each, >= 5 on the sum). Each timed run starts after a pause
  (:func:`stelab.bench.common.settle`), so that neither pays for the other's spinning threads.
* Floors, per trial-step (t x T): bytes the engine read (:class:`stelab.engine.traffic.Traffic`),
  one pass over Z (h, residual and r^T Z from one read of each row; the two-GEMV loop reads Z
  twice), and the incremental floor (the rows with a non-zero residual plus the columns of the
  coordinates that flipped). The engine's time is also compared with the time of its own bytes
  and of the incremental floor at the machine's best measured read bandwidth (the fastest of a
  torch sum, a sum per thread and numpy's threaded sgemv over the same data).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from stelab.bench.common import (
    Printer,
    Ratio,
    bench_config,
    settle,
    stream_seconds,
    warm_up_kernels,
)
from stelab.engine import plan_run, run_chunk
from stelab.engine.problem import Problem, build_problem
from stelab.engine.traffic import Traffic

__all__ = ["bench_numpy", "WORKLOADS"]

#: size -> (d, n, trials) workloads; the first three of "quick" and "full" make the ratio
WORKLOADS: dict[str, list[tuple[int, int, int]]] = {
    "tiny": [(64, 133, 2), (64, 266, 2), (128, 621, 1)],
    "quick": [(1024, 3549, 16), (1024, 7098, 16), (1024, 14196, 16), (2048, 15615, 2),
              (4096, 34070, 1)],
    "full": [(1024, 3549, 16), (1024, 7098, 16), (1024, 14196, 16), (2048, 15615, 4),
             (4096, 34070, 2)],
}
RATIO_WORKLOADS = 3
STEPS = {"tiny": 20, "quick": 300, "full": 300}
#: timings of each workload, engine and loop interleaved (the ratio's median is over repeats)
REPEATS = {"tiny": 1, "quick": 2, "full": 3}


def _best_read_gbs(Z: torch.Tensor) -> float:
    """The machine's best read bandwidth over ``Z`` (GB/s): the fastest of a torch sum, a sum
    per thread (:func:`stelab.bench.common.stream_seconds`) and numpy's sgemv with its threads."""
    rows = Z.reshape(-1, Z.shape[-1]).numpy()
    q = np.ones(rows.shape[1], dtype=rows.dtype)
    rows @ q  # warm
    began = time.perf_counter()
    rows @ q
    gemv = time.perf_counter() - began
    return Z.numel() * Z.element_size() / min(gemv, stream_seconds(Z)) / 1e9


def _numpy_loop(problem: Problem, steps: int, threads: int | None) -> tuple[float, np.ndarray]:
    from stelab.bench.numpy_loop import run_numpy_loop

    with threadpool_limits(limits=threads, user_api="blas"):
        settle()
        began = time.perf_counter()
        out = run_numpy_loop(problem, steps, 0.5)
        return time.perf_counter() - began, out


def bench_numpy(quick: bool = False, say: Printer = print, tiny: bool = False) -> Ratio:
    """Research numpy loop time / engine time at large d, with the floors (module docstring)."""
    size = "tiny" if tiny else ("quick" if quick else "full")
    steps = STEPS[size]
    say(f"  numpy: kernels loaded in {warm_up_kernels():.2f} s")
    threads: list[int | None] = []  # the baseline's BLAS threads, chosen on the first workload
    engine_s, numpy_s, details = [], [], []
    for index, (d, n, trials) in enumerate(WORKLOADS[size]):
        cfg = bench_config(model={"d": d}, train={"n": n, "steps": steps}, run={"trials": trials})
        problem = build_problem(cfg, list(range(trials)), torch.device("cpu"))
        plan = plan_run(cfg, torch.device("cpu"))
        traffic = Traffic()
        settle()
        began = time.perf_counter()
        out = run_chunk(cfg, problem, plan.engine, plan.layout, traffic=traffic)
        engine_times = [time.perf_counter() - began]
        if not threads:
            one = _numpy_loop(problem, steps, 1)
            default = _numpy_loop(problem, steps, None)
            threads.append(1 if one[0] < default[0] else None)
            base_s, base = min(one, default, key=lambda x: x[0])
            say(f"  numpy: baseline BLAS threads {threads[0] or 'default'} (one thread "
                f"{one[0]:.1f} s, default {default[0]:.1f} s)")
        else:
            base_s, base = _numpy_loop(problem, steps, threads[0])
        numpy_times = [base_s]
        for _ in range(REPEATS[size] - 1):
            settle()
            began = time.perf_counter()
            run_chunk(cfg, problem, plan.engine, plan.layout)
            engine_times.append(time.perf_counter() - began)
            numpy_times.append(_numpy_loop(problem, steps, threads[0])[0])
        seconds, base_s = statistics.median(engine_times), statistics.median(numpy_times)
        detail = _floors(problem, traffic, seconds, steps)
        same = int((base == out.hamming).all(axis=1).sum())
        flags_agree = bool(np.array_equal(base[:, -1] == 0, out.hamming[:, -1] == 0))
        detail.update({"d": d, "n": n, "trials": trials, "engine": plan.engine,
                       "layout": plan.layout, "engine_s": seconds, "numpy_s": base_s,
                       "engine_times": engine_times, "numpy_times": numpy_times,
                       "ratio": base_s / seconds, "same_trajectories": same,
                       "success_flags_agree": flags_agree,
                       "success_last": float(np.mean(out.hamming[:, -1] == 0))})
        details.append(detail)
        if index < RATIO_WORKLOADS:
            engine_s.append(engine_times)
            numpy_s.append(numpy_times)
        say(_line(detail))
        del problem
    each = [statistics.median(b) / statistics.median(e)
            for b, e in zip(numpy_s, engine_s, strict=True)]
    # one ratio on the sum per repeat
    totals = [sum(b[r] for b in numpy_s) / sum(e[r] for e in engine_s)
              for r in range(REPEATS[size])]
    say(f"  numpy: ratio on the sum of the d = {WORKLOADS[size][0][0]} workloads "
        f"{statistics.median(totals):.2f} (repeats {', '.join(f'{r:.2f}' for r in totals)}; "
        f"target >= 5), each {', '.join(f'{r:.2f}' for r in each)} (medians; target >= 3)")
    d, _, trials = WORKLOADS[size][0]
    ns = ", ".join(str(w[1]) for w in WORKLOADS[size][:RATIO_WORKLOADS])
    return Ratio(
        "numpy",
        f"research numpy loop time / engine time, sum over n = {ns} (d={d}, T={steps}, "
        f"{trials} trials)",
        totals, 5.0,
        {"workloads": details, "each": each, "each_target": 3.0,
         "agree": all(x["success_flags_agree"] for x in details),
         "baseline_threads": threads[0] or "default"},
    )


def _floors(problem: Problem, traffic: Traffic, seconds: float, steps: int) -> dict[str, float]:
    """Bytes per trial-step read by the engine and the two floors, and the engine's time against
    the time of those bytes at the machine's best read bandwidth."""
    t, n, m, d = problem.Z.shape
    rows, item = n * m, problem.Z.element_size()
    trial_steps = t * steps
    best = _best_read_gbs(problem.Z)
    read = traffic.bytes_read(rows, d, item)
    floor = traffic.incremental_floor(rows, d, item)
    return {
        "engine_bytes_per_trial_step": read / trial_steps,
        "one_pass_bytes_per_trial_step": rows * d * item,
        "incremental_floor_bytes_per_trial_step": floor / trial_steps,
        "best_read_gbs": best,
        "engine_gbs": read / seconds / 1e9,
        "time_over_own_bytes": seconds / (read / (best * 1e9)) if read else math.nan,
        "time_over_incremental_floor": seconds / (floor / (best * 1e9)) if floor else math.nan,
    }


def _line(x: dict[str, Any]) -> str:
    mb = 2.0**20
    return (f"  numpy: d={x['d']} n={x['n']} {x['trials']} trials: engine {x['engine_s']:.2f} s "
            f"({x['engine']}/{x['layout']}), numpy loop {x['numpy_s']:.2f} s, ratio "
            f"{x['ratio']:.2f}; same trajectories {x['same_trajectories']}/{x['trials']}, "
            f"success flags agree {x['success_flags_agree']}; per trial-step read "
            f"{x['engine_bytes_per_trial_step'] / mb:.2f} MB vs one pass "
            f"{x['one_pass_bytes_per_trial_step'] / mb:.2f} MB, incremental floor "
            f"{x['incremental_floor_bytes_per_trial_step'] / mb:.2f} MB; engine at "
            f"{x['engine_gbs']:.1f} GB/s of a best read of {x['best_read_gbs']:.1f} GB/s: "
            f"{x['time_over_own_bytes']:.2f}x the time of its own bytes, "
            f"{x['time_over_incremental_floor']:.2f}x the incremental floor's")
