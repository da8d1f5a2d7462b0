"""``stelab bench``: the engine's performance as ratios measured in one process.

Absolute times drift on shared machines, so every number is a ratio of two measurements taken
in the same run, interleaved and repeated (the median is reported, with min and max):

* ``bandwidth``: dense engine effective bandwidth / plain streaming read. Workload d = 256,
  n = 4096, m = 1, T = 16, float32. Effective bandwidth = bytes of the data tensor / time per
  pass, where a run makes T + 1 passes (T steps and the final forward that evaluates L(q_T)).
  Streaming read: a reduction (sum) over an array of the same size, on the same threads; the
  faster of torch's own threads and one thread per part is taken (the stronger baseline).
* ``baseline``: time of the per-trial research-script loop (:mod:`stelab.bench.baseline`) /
  time of the engine (``run.engine = "auto"``) on the same E1 problems, near the 50% threshold
  (d = 64, n = 181 = 2.83 d, T = 300). The Hamming trajectories of both are compared.
* ``incremental``: time of the dense engine / time of the incremental engine on the noiseless E1
  workload near the threshold at d = 256 (n = 4096 = 16 d, T = 300; about half of the trials
  still move after 100 steps). Both must give identical outcomes.

Targets (issue 5): bandwidth >= 0.5, baseline >= 20, incremental >= 5.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from stelab.bench.common import Printer, Ratio, bench_config, stream_seconds, warm_up_kernels
from stelab.bench.scale import bench_numpy as _bench_numpy_at_scale
from stelab.config import Config
from stelab.engine import plan_run, run_chunk
from stelab.engine.dense import run_dense
from stelab.engine.incremental import run_incremental
from stelab.engine.problem import build_problem

__all__ = ["Ratio", "bench_bandwidth", "bench_baseline", "bench_incremental", "run_all",
           "machine_description", "write_json", "write_payload", "warm_up_kernels", "BENCHMARKS"]

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


def _workload(cfg: Config) -> str:
    return (f"d={cfg.model.d} n={cfg.train.n} m={cfg.model.m} T={cfg.train.steps}, "
            f"{cfg.run.trials} trials")


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
        f"dense engine effective bandwidth / streaming read, {_workload(cfg)}",
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
        f"per-trial nn.Module/autograd/SGD loop time / engine time, {_workload(cfg)}",
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
        "incremental", f"dense time / incremental time, noiseless E1 {_workload(cfg)}",
        ratios, 5.0,
        {"trials": trials, "agree": agree, "away_at_100": moving, "warm_up_s": load_s},
    )


def bench_numpy(quick: bool = False, say: Printer = print, tiny: bool = False) -> Ratio:
    """Research numpy loop / engine at large d, with the floors (:mod:`stelab.bench.scale`)."""
    return _bench_numpy_at_scale(quick=quick, say=say, tiny=tiny)


BENCHMARKS: dict[str, Callable[..., Ratio]] = {
    "numpy": bench_numpy,
    "bandwidth": bench_bandwidth,
    "baseline": bench_baseline,
    "incremental": bench_incremental,
}


def machine_description() -> str:
    """CPU, cores, threads, torch and BLAS versions (one line)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    blas = ""
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(sorted({f"{i['internal_api']} {i['version']}" for i in threadpool_info()
                                 if i.get("user_api") == "blas"}))
    except ImportError:  # pragma: no cover
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numpy BLAS: {blas or 'unknown'}, {gpu}")


def run_all(
    quick: bool = False,
    threads: int = 2,
    names: list[str] | None = None,
    say: Printer = print,
    tiny: bool = False,
) -> list[Ratio]:
    """Run the named benchmarks (default all) on ``threads`` CPU threads; print and return.
    ``tiny`` shrinks every workload to seconds (a smoke test of the machinery, not a measure)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        say(f"machine: {machine_description()}")
        results = []
        for name in names or list(BENCHMARKS):
            began = time.perf_counter()
            result = BENCHMARKS[name](quick=quick, say=say, tiny=tiny)
            result.detail["tiny"] = tiny
            say(f"  ({name}: {time.perf_counter() - began:.0f} s)")
            results.append(result)
        say("ratio        median    [min, max]       target")
        for result in results:
            say(result.line())
        return results
    finally:
        torch.set_num_threads(saved)


def write_json(results: list[Ratio], path: str | os.PathLike[str]) -> str:
    """Write the results (medians, all repeats, details, machine) to ``path`` as JSON."""
    return write_payload(path, {"results": [
        {"name": r.name, "description": r.description, "median": r.median,
         "values": r.values, "target": r.target, "passed": r.passed, "detail": r.detail}
        for r in results
    ]})


def write_payload(path: str | os.PathLike[str], fields: dict[str, Any]) -> str:
    """Write ``fields`` as JSON to ``path`` with what a stored benchmark needs beside its
    numbers: the machine, the code version and the environment variables that change the
    kernels (OpenBLAS's core type and L2 size, OpenMP's wait policy)."""
    import json
    from pathlib import Path

    from stelab.sweep.store import code_version

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine_description(),
        "code": code_version(),
        "environment": {key: os.environ.get(key) for key in
                        ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY")},
        **fields,
    }
    out.write_text(json.dumps(payload, indent=2, default=float))
    return str(out)
