"""What every benchmark of ``stelab bench`` shares: the ratio record, the workload configs, the
streaming-read reference, the kernel warm-up and the JSON writer with the machine description."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from stelab.config import Config, parse_config
from stelab.engine.dense import run_dense
from stelab.engine.incremental import run_incremental
from stelab.engine.problem import build_problem
from stelab.engine.threads import Workers

Printer = Callable[[str], None]



@dataclass
class Ratio:
    """One benchmark: the median ratio over repeats, its spread and what it was measured on."""

    name: str
    description: str
    values: list[float]
    target: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def passed(self) -> bool:
        """Median at target, outcomes in agreement, and every part at its own target if any."""
        parts = self.detail.get("each", [])
        return (self.median >= self.target and self.detail.get("agree", True) is not False
                and all(x >= self.detail.get("each_target", 0) for x in parts))

    def line(self) -> str:
        spread = f"[{min(self.values):.2f}, {max(self.values):.2f}]"
        verdict = "ok" if self.passed else "BELOW TARGET"
        if self.detail.get("tiny"):
            verdict = "(tiny: not a measurement)"
        return (f"{self.name:12s} {self.median:8.2f}  {spread:16s} target >= {self.target:<5g} "
                f"{verdict}  {self.description}")


#: pause before a timed run: after a call on several threads, OpenBLAS's idle threads keep
#: spinning for ~0.1 s of CPU (measured here), so without it one contender's leftovers would
#: run during the other's timing (the engine timed right after the numpy loop lost 0.02-0.03 s
#: of 0.35 s at d = 1024, n = 3549)
SETTLE_SECONDS = 0.3


def settle() -> None:
    """Wait until the threads of the previous timed run have gone idle."""
    time.sleep(SETTLE_SECONDS)


def bench_config(**sections: dict[str, Any]) -> Config:
    raw: dict[str, dict[str, Any]] = {"run": {"seed": 20260527, "device": "cpu"}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return parse_config(raw)


def workload(cfg: Config) -> str:
    return (f"d={cfg.model.d} n={cfg.train.n} m={cfg.model.m} T={cfg.train.steps}, "
            f"{cfg.run.trials} trials")


def stream_seconds(x: torch.Tensor) -> float:
    """Seconds of one plain read of ``x``: the faster of torch's threaded sum and one thread
    per part (the same thread pool the engine uses)."""
    flat = x.reshape(-1)
    began = time.perf_counter()
    flat.sum()
    threaded = time.perf_counter() - began
    with Workers(x.device) as workers:
        parts = list(flat.chunk(max(1, workers.count) * 8))
        began = time.perf_counter()
        workers.map(lambda part: part.sum(), parts)
        pooled = time.perf_counter() - began
    return min(threaded, pooled)


def warm_up_kernels() -> float:
    """Seconds to load every engine's compiled kernels on a tiny problem: the first call of a
    kernel in a process loads it (once per process, from numba's disk cache), which the
    benchmarks time and report apart."""
    from stelab.engine.trialwise import run_trialwise

    small = bench_config(model={"d": 16}, train={"n": 64, "steps": 5}, run={"trials": 2})
    began = time.perf_counter()
    problem = build_problem(small, [0, 1], torch.device("cpu"))
    run_dense(problem, small)
    run_incremental(problem, small)  # the column cache
    run_incremental(problem, small, cache_columns=2 * 16)  # the column-major layout
    run_trialwise(problem, small)
    return time.perf_counter() - began


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

    from stelab.provenance import code_version

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

