"""The engine: STE-gradient runs over many trials at once, from a config to one row per trial.

Read top-down (each file holds what its name says):

* :mod:`~stelab.engine.run`: orchestration. ``run_experiment(cfg)`` plans the chunks, builds
  each chunk's problem, runs it on the chosen engine, refuses non-finite values and makes the
  rows (outcomes from :mod:`stelab.outcomes`).
* :mod:`~stelab.engine.budget`: the memory plan (engine for ``auto``, chunk size, layout),
  from what the registry of engines (:mod:`stelab.engine_registry`) declares.
* :mod:`~stelab.engine.problem`: a chunk's random problem (teacher, sample, labels, u_0).
* The engines, one module each (``ENGINE``: its name, what it cannot run, its cost estimate,
  its layouts, its run), identical outputs bit for bit: :mod:`~stelab.engine.dense` (every step
  reads the whole sample), :mod:`~stelab.engine.incremental` (updates from the flipped
  columns, one step of all trials at a time; its :mod:`~stelab.engine.column_cache`) and
  :mod:`~stelab.engine.trialwise` (one compiled call per trial).
* What they share: :mod:`~stelab.engine.decisions` (exact decisions, residuals, coefficients),
  :mod:`~stelab.engine.passes` (the torch passes over the data: pre-activations, error bound,
  gradient sums), :mod:`~stelab.engine.compiled` (the numba kernels and the update policy the
  engines share),
  :mod:`~stelab.engine.recorder` (the latent step and what is recorded along the iterates),
  :mod:`~stelab.engine.threads` (the CPU thread pool).
* Helpers: :mod:`~stelab.engine.traffic` (bytes read, for the bench),
  :mod:`~stelab.engine.prefetch` (a software prefetch for compiled loops).
"""

from stelab.engine.budget import default_memory_budget, select_engine
from stelab.engine.run import (
    estimate_peak_bytes,
    plan_chunk_size,
    plan_run,
    resolve_device,
    run_chunk,
    run_experiment,
)
from stelab.engine.sizes import cache_bytes_per_trial

__all__ = [
    "run_experiment",
    "resolve_device",
    "plan_run",
    "plan_chunk_size",
    "default_memory_budget",
    "select_engine",
    "estimate_peak_bytes",
    "run_chunk",
    "cache_bytes_per_trial",
]
