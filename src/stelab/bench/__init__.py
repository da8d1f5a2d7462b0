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
* ``process``: whole processes (start-up, drawing the data, the runs, writing the results): the
  careful per-trial numpy loop of ``numpy`` run as its own process on its own draws of the same
  problems, against a ``stelab sweep`` process over the same E1 workload
  (:mod:`stelab.bench.process`).

Targets (issue 5): bandwidth >= 0.5, baseline >= 20, incremental >= 5; (issue 21) process >= 5.
"""

from __future__ import annotations

import time
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stelab.bench.common import Printer, Ratio

__all__ = ["Ratio", "bench_bandwidth", "bench_baseline", "bench_incremental", "bench_numpy",
           "bench_process", "run_all", "machine_description", "write_json", "write_payload",
           "warm_up_kernels", "BENCHMARKS"]

#: benchmark name -> "module:function" (imported when it runs: ``python -m`` of a module of this
#: package, such as the numpy loop's own process, loads no torch)
BENCHMARKS: dict[str, str] = {
    "numpy": "stelab.bench.scale:bench_numpy",
    "process": "stelab.bench.process:bench_process",
    "bandwidth": "stelab.bench.engine:bench_bandwidth",
    "baseline": "stelab.bench.engine:bench_baseline",
    "incremental": "stelab.bench.engine:bench_incremental",
}

#: the other public names -> their module
_NAMES = {"Ratio": "stelab.bench.common", "machine_description": "stelab.bench.common",
          "write_json": "stelab.bench.common", "write_payload": "stelab.bench.common",
          "warm_up_kernels": "stelab.bench.common",
          **{target.split(":")[1]: target.split(":")[0] for target in BENCHMARKS.values()}}


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'stelab.bench' has no attribute {name!r}")
    return getattr(import_module(_NAMES[name]), name)


def benchmark(name: str) -> Any:
    """The function of the benchmark ``name`` (a key of :data:`BENCHMARKS`)."""
    module, function = BENCHMARKS[name].split(":")
    return getattr(import_module(module), function)


def run_all(
    quick: bool = False,
    threads: int = 2,
    names: list[str] | None = None,
    say: Printer = print,
    tiny: bool = False,
) -> list[Ratio]:
    """Run the named benchmarks (default all) on ``threads`` CPU threads; print and return.
    ``tiny`` shrinks every workload to seconds (a smoke test of the machinery, not a measure)."""
    import torch

    from stelab.bench.common import machine_description

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        say(f"machine: {machine_description()}")
        results = []
        for name in names or list(BENCHMARKS):
            began = time.perf_counter()
            result = benchmark(name)(quick=quick, say=say, tiny=tiny)
            result.detail["tiny"] = tiny
            say(f"  ({name}: {time.perf_counter() - began:.0f} s)")
            results.append(result)
        say("ratio        median    [min, max]       target")
        for result in results:
            say(result.line())
        return results
    finally:
        torch.set_num_threads(saved)
