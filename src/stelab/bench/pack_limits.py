"""Timing and the machine's limits for ``stelab bench pack``: calls per second of a contender,
the XOR-popcount rate, hot streaming reads, and the roofline floor of a layer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import torch

from stelab.pack import probes

__all__ = ["floor_seconds", "machine_limits", "per_call", "on_threads", "read_seconds",
           "time_interleaved"]


def per_call(fn: Callable[[], Any], budget_s: float) -> float:
    """Seconds per call of ``fn``: calls repeated for about ``budget_s``, the mean."""
    began = time.perf_counter()
    fn()
    once = time.perf_counter() - began
    calls = max(1, min(1000, int(budget_s / max(once, 1e-7))))
    began = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - began) / calls


def time_interleaved(fns: dict[str, Callable[[], Any]], repeats: int, budget_s: float
                     ) -> dict[str, list[float]]:
    """Seconds per call of every function, ``repeats`` times, interleaved (one timing of each
    in turn, so that a change of the machine's load hits all of them alike)."""
    for fn in fns.values():
        fn()  # warm-up (and the numba kernels' first load)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(per_call(fn, budget_s))
    return times


class on_threads:
    """torch and numba on ``n`` threads inside the block."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> None:
        self._saved = (torch.get_num_threads(), numba.get_num_threads())
        torch.set_num_threads(self.n)
        numba.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._saved[0])
        numba.set_num_threads(self._saved[1])
def machine_limits(threads: int, tiny: bool = False) -> dict[str, float]:
    """XOR-popcount words per second and streaming read bytes per second on ``threads``."""
    with on_threads(threads):
        words = np.random.default_rng(0).integers(0, 2**63, (threads, 512), dtype=np.uint64)
        out = np.zeros(threads, np.uint64)
        rounds = 200 if tiny else 20_000
        probes.popcount_probe(words, 1, out)
        pop_s = float("inf")
        for _ in range(3):
            began = time.perf_counter()
            probes.popcount_probe(words, rounds, out)
            pop_s = min(pop_s, time.perf_counter() - began)
        pop_rate = words.size * rounds / pop_s
        big = np.ones((8 if tiny else 512) * 2**20 // 8, np.uint64)
        chunks = np.zeros(threads * 8, np.uint64)
        probes.read_probe(big, chunks.size, chunks)
        best = float("inf")
        for _ in range(5):
            began = time.perf_counter()
            probes.read_probe(big, chunks.size, chunks)
            best = min(best, time.perf_counter() - began)
    return {"popcount_words_per_s": pop_rate, "read_bytes_per_s": big.nbytes / best}


def read_seconds(nbytes: int, threads: int, repeats: int = 7) -> float:
    """Best time of a hot streaming read of ``nbytes`` (the same size as a layer's packed
    weights, read again and again as the benchmark calls the layer: from cache when it fits),
    on one thread or on ``threads``, whichever is faster: a small read on several threads
    costs their wake-up, which a layer that runs small calls on one thread does not pay."""
    return min(_read_seconds_on(nbytes, count, repeats) for count in {1, threads})


def _read_seconds_on(nbytes: int, threads: int, repeats: int) -> float:
    """Best time of a hot streaming read of ``nbytes`` on ``threads`` threads."""
    words = np.ones(max(1, nbytes // 8), np.uint64)
    chunks = np.zeros(threads * 8, np.uint64)
    with on_threads(threads):
        probes.read_probe(words, chunks.size, chunks)
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            probes.read_probe(words, chunks.size, chunks)
            best = min(best, time.perf_counter() - began)
    return best


def floor_seconds(limits: dict[str, float], word_ops: float, weight_bytes: int, threads: int
                  ) -> float:
    """Roofline: max(popcount time of the word operations, read time of the packed weights)."""
    return max(word_ops / limits["popcount_words_per_s"], read_seconds(weight_bytes, threads))


