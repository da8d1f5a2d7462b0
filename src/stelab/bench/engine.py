"""The engine benchmarks ``bandwidth``, ``baseline`` and ``incremental`` (what each measures:
:mod:`stelab.bench`)."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from stelab.bench.common import (
    Printer,
    Ratio,
    bench_config,
    stream_seconds,
    warm_up_kernels,
    workload,
)
from stelab.engine import plan_run, run_chunk
from stelab.engine.dense import run_dense
from stelab.engine.incremental import run_incremental
from stelab.engine.problem import build_problem

#: size -> benchmark -> (trials, repeats, overrides of the workload); "tiny" is for tests only
SIZES: dict[str, dict[str, tuple[int, int, dict[str, int]]]] = {
    "tiny": {"bandwidth": (2, 1, {"d": 32, "n": 256}),
             "baseline": (2, 1, {"d": 16, "n": 48, "steps": 20}),
             "incremental": (2, 1, {"d": 32, "n": 512, "steps": 30})},
    "quick": {"bandwidth": (64, 5, {}), "baseline": (32, 3, {}), "incremental": (96, 3, {})},
    "full": {"bandwidth": (128, 9, {}), "baseline": (64, 5, {}), "incremental": (96, 5, {})},
}


def _size(quick: bool, tiny: bool) -> str:
    return "tiny" if tiny else ("quick" if quick else "full")


def bench_bandwidth(quick: bool = False, say: Printer = print, tiny: bool = False) -> Ratio:
    """Dense engine effective bandwidth / streaming read (see the module docstring)."""
    trials, repeats, w = SIZES[_size(quick, tiny)]["bandwidth"]
    cfg = bench_config(model={"d": w.get("d", 256)}, train={"n": w.get("n", 4096), "steps": 16},
                       run={"trials": trials})
    problem = build_problem(cfg, list(range(trials)), torch.device("cpu"))
    nbytes = problem.Z.numel() * problem.Z.element_size()
    passes = cfg.train.steps + 1
    run_dense(problem, cfg, freeze=False)  # warm-up
    ratios, engine_bw, stream_bw = [], [], []
    for _ in range(repeats):
        before = stream_seconds(problem.Z)
        began = time.perf_counter()
        run_dense(problem, cfg, freeze=False)
        per_pass = (time.perf_counter() - began) / passes
        stream = min(before, stream_seconds(problem.Z))
        ratios.append(stream / per_pass)
        engine_bw.append(nbytes / per_pass / 1e9)
        stream_bw.append(nbytes / stream / 1e9)
    say(f"  bandwidth: data {nbytes / 2**20:.0f} MB, engine {statistics.median(engine_bw):.1f} "
        f"GB/s, streaming read {statistics.median(stream_bw):.1f} GB/s (medians)")
    return Ratio(
        "bandwidth",
        f"dense engine effective bandwidth / streaming read, {workload(cfg)}",
        ratios, 0.5,
        {"data_mb": nbytes / 2**20, "engine_gbs": engine_bw, "stream_gbs": stream_bw,
         "trials": trials},
    )


def bench_baseline(quick: bool = False, say: Printer = print, tiny: bool = False) -> Ratio:
    """Per-trial nn.Module + autograd STE + SGD loop / engine, same E1 problems."""
    from stelab.bench.baseline import run_baseline

    trials, repeats, w = SIZES[_size(quick, tiny)]["baseline"]
    cfg = bench_config(model={"d": w.get("d", 64)},
                       train={"n": w.get("n", 181), "steps": w.get("steps", 300)},
                       run={"trials": trials})
    problem = build_problem(cfg, list(range(trials)), torch.device("cpu"))
    plan = plan_run(cfg, torch.device("cpu"))  # the engine and layout a run of cfg takes
    engine = f"{plan.engine}/{plan.layout}"
    run_chunk(cfg, problem, plan.engine, plan.layout)  # warm-up of both (autograd's first calls)
    first = build_problem(cfg, [0], torch.device("cpu"))
    run_baseline(first, cfg.train.steps, cfg.train.step_size)
    ratios, agree = [], True
    for _ in range(repeats):
        began = time.perf_counter()
        out = run_chunk(cfg, problem, plan.engine, plan.layout)
        engine_s = time.perf_counter() - began
        began = time.perf_counter()
        base = run_baseline(problem, cfg.train.steps, cfg.train.step_size)
        base_s = time.perf_counter() - began
        ratios.append(base_s / engine_s)
        same = (base == out.hamming).all(axis=1)
        flags = [(H[:, -1] == 0, (H[:, 1:] == 0).any(axis=1)) for H in (base, out.hamming)]
        agree = agree and all(np.array_equal(a, b) for a, b in zip(*flags, strict=True))
    success = float(np.mean(out.hamming[:, -1] == 0))
    say(f"  baseline: {trials} trials, engine '{engine}' vs per-trial loop; success rate "
        f"{success:.2f}; success flags (last, best) agree: {agree}; Hamming trajectories "
        f"identical in {int(same.sum())}/{trials} trials")
    return Ratio(
        "baseline",
        f"per-trial nn.Module/autograd/SGD loop time / engine time, {workload(cfg)}",
        ratios, 20.0,
        {"trials": trials, "engine": engine, "agree": agree, "success_rate": success,
         "same_trajectories": int(same.sum())},
    )


def bench_incremental(quick: bool = False, say: Printer = print, tiny: bool = False) -> Ratio:
    """Dense engine time / incremental engine time, near-threshold noiseless E1 workload."""
    trials, repeats, w = SIZES[_size(quick, tiny)]["incremental"]
    cfg = bench_config(model={"d": w.get("d", 256)},
                       train={"n": w.get("n", 4096), "steps": w.get("steps", 300)},
                       run={"trials": trials})
    problem = build_problem(cfg, list(range(trials)), torch.device("cpu"))
    load_s = warm_up_kernels()
    ratios, agree = [], True
    for _ in range(repeats):
        began = time.perf_counter()
        dense = run_dense(problem, cfg)
        dense_s = time.perf_counter() - began
        began = time.perf_counter()
        inc = run_incremental(problem, cfg)
        inc_s = time.perf_counter() - began
        ratios.append(dense_s / inc_s)
        agree = agree and all(
            np.array_equal(getattr(dense, f), getattr(inc, f))
            for f in ("hamming", "ergodic_hamming", "final_loss", "final_u")
        )
    moving = float(np.mean(dense.hamming[:, min(100, cfg.train.steps)] > 0))
    say(f"  incremental: {trials} trials; still away from w* at step 100: {moving:.2f}, "
        f"success at T: {np.mean(dense.hamming[:, -1] == 0):.2f}; outcomes identical: {agree}; "
        f"warm-up (kernel loading) {load_s:.2f} s")
    return Ratio(
        "incremental", f"dense time / incremental time, noiseless E1 {workload(cfg)}",
        ratios, 5.0,
        {"trials": trials, "agree": agree, "away_at_100": moving, "warm_up_s": load_s},
    )

