"""What the benchmarks share: the result record (:class:`Ratio`), the workload config, a
plain streaming read, and the warm-up that loads the compiled kernels before anything is timed.
(:mod:`stelab.bench` re-exports them; :mod:`stelab.bench.scale` uses them.)"""

from __future__ import annotations

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
from stelab.engine.trialwise import run_trialwise
from stelab.engine.workers import Workers

__all__ = ["Printer", "Ratio", "bench_config", "stream_seconds", "warm_up_kernels"]

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


def bench_config(**sections: dict[str, Any]) -> Config:
    raw: dict[str, dict[str, Any]] = {"run": {"seed": 20260527, "device": "cpu"}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return parse_config(raw)


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
    small = bench_config(model={"d": 16}, train={"n": 64, "steps": 5}, run={"trials": 2})
    began = time.perf_counter()
    problem = build_problem(small, [0, 1], torch.device("cpu"))
    run_dense(problem, small)
    run_incremental(problem, small)  # the column cache
    run_incremental(problem, small, cache_columns=2 * 16)  # the column-major layout
    run_trialwise(problem, small)
    return time.perf_counter() - began
