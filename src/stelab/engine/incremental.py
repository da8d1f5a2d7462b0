"""The incremental (sparse) STE-gradient engine: the iterates of the dense engine, computed
from what changed.

Per trial it keeps the pre-activations h = Z q and the gradient sums G. After a step, only the
coordinates F of q that flipped change h:

    h <- h + sum_{j in F} 2 q_new[j] Z[:, j]          (cost n m |F| instead of n m d)

and G = sum_r c_r Z_r is summed over the rows with a non-zero coefficient only (a sample with
zero residual f - y, or a zero surrogate derivative, contributes nothing). A trial whose q did
not change keeps h, its residuals and G (cost O(d)). A trial with many flipped columns (the
first steps from a random start) is recomputed by the dense pre-activation pass instead.

Identical outcomes. Every decision on h is exact: entries closer to a threshold than the error
bound of h are recomputed in float64 (:mod:`stelab.engine.decisions`). Here the bound is that
of the last full pass plus 3 u max_r sum_j |Z_rj| per column added since (u = 2^-24); when it
reaches RESET_FACTOR times the bound of a full pass, h is recomputed by a full pass (the periodic
exact recomputation). The coefficients are then those of the dense engine, and G is the same
sequential sum (:func:`passes.gradient_sums`), so u, q and every recorded quantity are
identical, bit for bit. Supported: full batch, activation sign/step, surrogates with values in
{0, 1} (identity, relu, clipped_relu, hardtanh), any noise, normalization, m and weight STE,
float32 data on the CPU; ``run.engine = "auto"`` falls back to the dense engine elsewhere.

One compiled kernel per trial and step (:func:`stelab.engine.compiled.refresh_kernel`) updates h
from the flipped columns, decides every row and writes the residuals and coefficients; a chain
of torch operations doing the same costs more in launches than in arithmetic for the few
thousand rows of a trial.

Columns of row-major data. Reading column j touches one cache line per row (a sixteenth of a
full pass for d >= 16, and slower than streaming). Trials that keep flipping (they oscillate
around a fixed point, or keep leaving and revisiting w* under label noise) get the columns they
flip copied into a contiguous :class:`ColumnCache` of bounded size, from which an update reads
each cached column once, eight columns per pass over h.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from stelab.config import Config
from stelab.engine import compiled
from stelab.engine.column_cache import ColumnCache
from stelab.engine.compiled import COLD_MAX_FLIPS, FILL_BEFORE_END, RESET_FACTOR
from stelab.engine.passes import UNIT_ROUNDOFF, BagBuffers, bag_range_sums, preactivations
from stelab.engine.problem import Problem, data_bytes, trial_bytes
from stelab.engine.recorder import ChunkOutput, Recorder, binary, latent_step, loss_of
from stelab.engine.sizes import CACHE_FRACTION, cache_bytes_per_trial  # noqa: F401 - re-exported
from stelab.engine.threads import PARALLEL_BYTES, Workers, split_evenly
from stelab.engine.traffic import Traffic
from stelab.engine_registry import Engine, Layout
from stelab.errors import ConfigError
from stelab.quantizers import get_weight_ste
from stelab.surrogates import step_size_eta

Tensor = torch.Tensor

__all__ = ["ENGINE", "ColumnCache", "IncrementalEngine", "cache_bytes_per_trial",
           "cache_columns", "incremental_unsupported", "run_incremental"]

#: per-trial data (bytes) from which the engine is estimated faster than the dense engine (below
#: that, its per-step overheads make it no faster)
INCREMENTAL_MIN_BYTES = 1 << 20
#: columns that flip from this step on are cached (the first steps flip most columns once), and
#: not in the last FILL_BEFORE_END steps (:mod:`stelab.engine.compiled`)
FILL_FROM_STEP = 3
#: at most this share of d columns is cached from one trial's full pass (a larger share costs
#: more to copy at the first fill than the later hits save: measured on the bench workload)
FILL_MAX_COLUMNS = 0.1
#: a trial that did not move for this many steps gives its cached columns back
COLD_AFTER_IDLE = 8
#: a light step (no full passes) over at least this many moving trials runs on all threads
#: (each thread updates, decides and sums G for its share; below, the hand-off costs more)
LIGHT_SPLIT_MIN = 16


def incremental_unsupported(cfg: Config) -> str | None:
    """Why the incremental engine cannot run ``cfg`` (one line naming the field), or None."""
    return compiled.unsupported(cfg, "incremental")


def cache_columns(cfg: Config, layout: str, trials: int) -> int:
    """Column-cache capacity for a chunk of ``trials`` trials in ``layout``, in columns of n*m
    numbers (``columns``: every column of every trial)."""
    if layout == "columns":
        return trials * cfg.model.d
    return trials * cache_bytes_per_trial(cfg) // (data_bytes(cfg) // cfg.model.d)


class IncrementalEngine(Engine):
    """The batched incremental engine in the registry (:mod:`stelab.engine_registry`).

    Layouts, per trial on top of :func:`stelab.engine.problem.trial_bytes` and the per-column
    table and flags (24 d bytes): ``columns``, a second, column-major copy of the data, made
    trial by trial when a trial first needs it (its flipped columns are then read as contiguous
    streams, however many flip): about 2.05 data tensors; ``cache``, a column cache of at most
    CACHE_FRACTION of the data (:func:`cache_bytes_per_trial`), within 1.5 data tensors.
    Cost: below the dense engine's from INCREMENTAL_MIN_BYTES of data a trial, above it below.
    """

    name = "incremental"

    def unsupported(self, cfg: Config) -> str | None:
        return compiled.unsupported(cfg, self.name)

    def cost(self, cfg: Config) -> float:
        return 0.5 if data_bytes(cfg) >= INCREMENTAL_MIN_BYTES else 2.0

    def layouts(self, cfg: Config) -> tuple[Layout, ...]:
        rows = trial_bytes(cfg) + 24 * cfg.model.d
        return (Layout("columns", rows + data_bytes(cfg)),
                Layout("cache", rows + cache_bytes_per_trial(cfg)))

    def run(self, cfg: Config, problem: Problem, layout: str,
            traffic: Traffic | None = None) -> ChunkOutput:
        columns = cache_columns(cfg, layout, problem.Z.shape[0])
        return run_incremental(problem, cfg, cache_columns=columns,
                               adaptive=cfg.run.engine == "auto", traffic=traffic)


ENGINE = IncrementalEngine()


def run_incremental(
    problem: Problem,
    cfg: Config,
    freeze: bool = True,
    cache_columns: int | None = None,
    adaptive: bool = False,
    traffic: Traffic | None = None,
) -> ChunkOutput:
    """Run ``cfg.train.steps`` STE-gradient steps on every trial of ``problem`` (see the module
    docstring); outputs identical to :func:`stelab.engine.dense.run_dense`.

    ``cache_columns`` bounds the column cache, in columns of n*m floats (default: 25% of the
    chunk's t*d columns; the planned layout's are :func:`cache_columns`).
    ``adaptive`` (``run.engine = "auto"``): a step is a full pass over all trials whenever the
    measured time of incremental steps exceeds that of a full pass (:class:`_StepChooser`);
    otherwise full passes are taken only when most trials need one anyway.
    ``traffic``, when given, counts what was read (:class:`stelab.engine.traffic.Traffic`).
    """
    reason = incremental_unsupported(cfg)
    if reason is None and problem.Z.device.type != "cpu":
        reason = "run.device: the incremental engine runs on the CPU; allowed: cpu"
    if reason is not None:
        raise ConfigError(reason)
    run = _IncrementalRun(problem, cfg, cache_columns, traffic)
    with Workers(problem.Z3.device) as workers:
        run.steps(workers, _StepChooser(adaptive), freeze and run.noiseless)
    return run.record.output(loss_of(run.residual), run.u)


class _IncrementalRun:
    """The state of an incremental run over one chunk, and the phases of its steps.

    Per trial: the latent weights u and signs q, the pre-activations h = Z q with their error
    bound ``err``, the residuals and the gradient sums G, the columns flipped by the last step
    and the column cache. A step (:meth:`steps`) is: the latent step and the new signs
    (:meth:`take_step`), which trials to bring up to date and how (:meth:`plan`), which
    columns to cache (:meth:`assign_columns`), the refresh of those trials (:meth:`refresh_all`),
    then the idle trials' columns given back (:meth:`release_idle`).
    """

    def __init__(self, problem: Problem, cfg: Config, cache_columns: int | None,
                 traffic: Traffic | None) -> None:
        Z3 = problem.Z3
        t, R, d = Z3.shape
        m = problem.Z.shape[2]
        self.problem, self.traffic = problem, traffic
        self.t, self.R, self.d, self.n = t, R, d, problem.Z.shape[1]
        self.T = cfg.train.steps
        self.eta = step_size_eta(cfg.train.step_size, d, m, cfg.model.activation)
        self.weight_derivative = get_weight_ste(cfg.train.weight_ste)
        self.noiseless = cfg.noise.kind == "none" or cfg.noise.level == 0

        # error of h after an update by |F| columns: the float32 sum of the |F| terms 2 q_j Z_rj
        # errs by at most (|F| - 1) u 2 A and adding it to h by u 3 A, A = max_r sum_j |Z_rj| =
        # bound / (gamma_d * 1.01): in all at most 3 |F| u A, i.e. 3 u A per flipped column
        unit = UNIT_ROUNDOFF[torch.float32]
        gamma = d * unit / (1.0 - d * unit)
        self.per_update = problem.bound * (3.0 * 1.01 * unit / gamma)

        self.u = problem.u0.clone()
        self.q = binary(self.u)
        self.record = Recorder(cfg, self.q, problem.teacher)
        self.h = torch.empty((t, R), dtype=Z3.dtype, device=Z3.device)
        self.err = problem.bound.clone()
        self.residual = torch.zeros((t, self.n), dtype=Z3.dtype, device=Z3.device)
        self.G = torch.zeros((t, d), dtype=Z3.dtype, device=Z3.device)
        capacity = int(0.25 * t * d) if cache_columns is None else cache_columns
        self.cache = ColumnCache(Z3, capacity)
        # room for every column of every trial: the second, column-major layout of the data
        self.whole = capacity >= t * d
        self.copied = torch.zeros(t, dtype=torch.bool)
        self.kernel = compiled.refresh_kernel(cfg.model.activation, cfg.train.ste, m,
                                              cfg.train.ste_params)
        self.no_scale = np.ones(t, dtype=np.float64)
        # numpy views of the state the compiled kernels write (made once: a light step is short)
        self.h_np, self.y_np = self.h.numpy(), problem.y.numpy()
        self.err_np, self.residual_np = self.err.numpy(), self.residual.numpy()
        self.per_update_np, self.bound_np = self.per_update.numpy(), problem.bound.numpy()
        self.bags = BagBuffers(R, Z3.dtype)
        # per trial, updated by compiled.plan_step after each step: the columns that flipped,
        # whether it moved, whether it is recomputed by a full pass, the steps since it moved
        self.flips = torch.zeros((t, d), dtype=torch.bool)
        self.moved = torch.zeros(t, dtype=torch.bool)
        self.full = torch.zeros(t, dtype=torch.bool)
        self.idle = torch.zeros(t, dtype=torch.long)
        self.workers: Workers | None = None
        # set when a refresh runs on one thread: it still sums G on all of them
        self.split_sums: Workers | None = None

    def steps(self, workers: Workers, chooser: _StepChooser, freeze: bool) -> None:
        """The first full pass, then the T steps (stopping early, with ``freeze``, once every
        trial sits at w*: the remaining iterates are filled in by the recorder)."""
        self.workers = workers
        t = self.t
        scale = self.problem.model.preact_scale(self.q)
        everyone = torch.arange(t)
        began = time.perf_counter()
        self.refresh_all(everyone, torch.zeros((t, self.d), dtype=torch.bool),
                         torch.ones(t, dtype=torch.bool), scale)
        chooser.observe(True, time.perf_counter() - began)
        for step in range(self.T):
            at_target, scale = self.take_step(step, scale)
            full_pass = chooser.full_pass(2 * self.plan() >= t)
            if full_pass:
                ks, full_ks = everyone, torch.ones(t, dtype=torch.bool)
            else:
                ks = torch.nonzero(self.moved).view(-1)
                full_ks = self.full[ks]
            if FILL_FROM_STEP <= step < self.T - FILL_BEFORE_END:
                self.assign_columns(ks, full_ks)
            began = time.perf_counter()
            self.refresh_all(ks, self.flips, full_ks, scale)
            chooser.observe(full_pass, time.perf_counter() - began)
            if at_target and freeze:
                self.record.freeze(step, self.q)
                break
            self.release_idle()

    def take_step(self, step: int, scale: Tensor | None) -> tuple[bool, Tensor | None]:
        """u <- u - eta g, q = sign(u) (in place, noting the flips), recorded; returns whether
        every trial sits at w* and the batch-norm scale at the new q."""
        if self.record.loss is not None:
            self.record.loss[:, step] = loss_of(self.residual)
        latent_step(self.u, self.G, self.n, scale, self.eta, self.weight_derivative)
        compiled.take_signs(self.u.numpy(), self.q.numpy(), self.flips.numpy())
        if self.traffic is not None:
            self.traffic.add(flipped_columns=self.flips.sum())
        at_target = self.record.record(step, self.q)
        return at_target, (self.problem.model.preact_scale(self.q) if scale is not None else None)

    def plan(self) -> int:
        """Which trials moved, which need a full pass, their idle counts
        (:func:`stelab.engine.compiled.plan_step`); returns the number of full passes needed."""
        return compiled.plan_step(self.flips.numpy(), self.cache.table.numpy(), self.err_np,
                                  self.per_update_np, self.bound_np, COLD_MAX_FLIPS, RESET_FACTOR,
                                  self.moved.numpy(), self.full.numpy(), self.idle.numpy())

    def assign_columns(self, ks: Tensor, full_ks: Tensor) -> None:
        """Give cache slots to the columns worth caching for the trials ``ks`` about to be
        refreshed (``full_ks``: those by a full pass)."""
        t, d = self.t, self.d
        if self.whole:
            # a trial that needs a full pass (too many uncached flips) gets every column
            # copied once, by a blocked transpose right after that pass: from then on its
            # updates read the flipped columns only, however many flip
            uncopied = full_ks & ~self.copied[ks]
            if uncopied.any():
                fresh_trials = ks[uncopied]
                wanted = torch.zeros((t, d), dtype=torch.bool)
                wanted[fresh_trials] = True
                self.cache.assign(fresh_trials, wanted)
                self.copied[fresh_trials] = True
                if self.traffic is not None:
                    self.traffic.add(copied_columns=d * len(fresh_trials))
            return
        # columns worth caching: the flipped ones of the trials updated from them, and for the
        # trials recomputed in full those likely to flip next
        wanted = self.flips
        recompute = ks[full_ks]
        if len(recompute):
            wanted = self.flips.clone()
            wanted[recompute] = _likely_to_flip(self.flips[recompute], self.u[recompute],
                                                self.G[recompute])
        self.cache.assign(ks, wanted)

    def release_idle(self) -> None:
        """Trials that stopped moving give their cached columns back (a cache that holds every
        column has no one to give them to)."""
        if self.whole:
            return
        for k in torch.nonzero(self.idle == COLD_AFTER_IDLE).view(-1).tolist():
            self.cache.release(k)

    def refresh_all(self, ks: Tensor, flips: Tensor, full: Tensor, scale: Tensor | None) -> None:
        """:meth:`refresh` of trials ``ks``, split over the worker threads where that pays."""
        workers = self.workers
        assert workers is not None
        # threads pay off for full passes (two or more per thread) and for light steps over
        # many trials; a light step over a few trials is cheaper on one
        passes = int(full.sum())
        heavy = passes >= 2 * workers.count or len(ks) >= LIGHT_SPLIT_MIN
        heavy = heavy and len(ks) * self.R * self.d * self.problem.Z3.element_size() \
            >= PARALLEL_BYTES
        parts = split_evenly(len(ks), workers.count if heavy else 1)
        self.split_sums = workers if len(parts) == 1 and workers.count > 1 else None
        workers.map(lambda p: self.refresh(ks[p[0] : p[1]], flips, full[p[0] : p[1]], scale),
                    parts)

    def refresh(self, ks: Tensor, flips: Tensor, full: Tensor, scale: Tensor | None) -> None:
        """Bring h, the residuals and G of trials ``ks`` up to the current q: the trials with
        ``full`` (bool, per entry of ks) by a full pass, then their fresh cache slots filled
        (their data is then partly in the CPU cache); the others from their ``flips`` (t, d)."""
        problem, h, R = self.problem, self.h, self.R
        recompute = ks[full]
        for a, b in _runs(recompute.tolist()):
            preactivations(problem.Z3, problem.Znp, self.q, a, b, out=h[a:b])
            for k in range(a, b):
                self.cache.fill(k)
        if len(recompute):
            self.err[recompute] = problem.bound[recompute]
        bag_rows, bag_weights, offsets = self.bags.get(len(ks))
        self.kernel(
            ks.numpy(), problem.Znp, self.h_np, self.q.numpy(), self.y_np, self.err_np,
            self.per_update_np,
            self.no_scale if scale is None else scale.to(torch.float64).numpy(), flips.numpy(),
            (~full).numpy(), self.cache.table.numpy(), self.cache.fresh.numpy(),
            self.cache.store.numpy(), self.residual_np, bag_rows.numpy(), bag_weights.numpy(),
            offsets.numpy(),
        )
        if self.traffic is not None:
            self.traffic.add(pass_rows=R * len(recompute), gradient_rows=offsets[len(ks)],
                             update_columns=flips[ks[~full]].sum())
        split_sums, G, rows = self.split_sums, self.G, problem.rows
        if split_sums is None or len(ks) < 2 * split_sums.count:
            G[ks] = bag_range_sums(rows, bag_rows, bag_weights, offsets, 0, len(ks))
            return

        def sums(part: tuple[int, int]) -> None:
            a, b = part
            G[ks[a:b]] = bag_range_sums(rows, bag_rows, bag_weights, offsets, a, b)

        split_sums.map(sums, split_evenly(len(ks), split_sums.count))

def _likely_to_flip(flips: Tensor, u: Tensor, G: Tensor) -> Tensor:
    """Columns worth caching for trials that keep moving (k, d) bool: those that flipped now,
    and those whose latent weight would reach 0 soonest at the current gradient, |u_j| / |G_j|
    smallest (with the ones flipped, FILL_MAX_COLUMNS * d columns per trial)."""
    k, d = u.shape
    budget = max(1, int(FILL_MAX_COLUMNS * d))
    steps_to_flip = u.abs() / G.abs().clamp_min(1e-30)
    steps_to_flip[flips] = -1.0  # flipped columns first
    order = torch.argsort(steps_to_flip, dim=1)[:, :budget]
    wanted = torch.zeros_like(flips)
    wanted.scatter_(1, order, True)
    return wanted


class _StepChooser:
    """Chooses, step by step, between updating only the trials that moved and a full pass over
    all trials, from the measured times of both (exponential averages). The outcomes are the
    same either way; only the speed depends on the choice. After an incremental step slower
    than a full pass, the next ``hold`` steps are full passes (doubling up to 256 while it
    stays so), then incremental steps are tried again."""

    def __init__(self, adaptive: bool) -> None:
        self.adaptive = adaptive
        self.full_time: float | None = None
        self.step_time: float | None = None
        self.hold = 0
        self.backoff = 4

    def full_pass(self, needed: bool) -> bool:
        if needed:
            return True
        if self.hold > 0:
            self.hold -= 1
            return True
        return False

    def observe(self, full_pass: bool, seconds: float) -> None:
        if full_pass:
            self.full_time = seconds if self.full_time is None else 0.5 * (self.full_time + seconds)
            return
        self.step_time = seconds if self.step_time is None else 0.5 * (self.step_time + seconds)
        if not self.adaptive or self.full_time is None:
            return
        if self.step_time > self.full_time:
            self.hold, self.backoff = self.backoff, min(2 * self.backoff, 256)
            self.step_time = None
        elif self.step_time < 0.5 * self.full_time:
            self.backoff = 4


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted trial ids as maximal ranges [a, b) of consecutive ids."""
    runs: list[tuple[int, int]] = []
    for k in ids:
        if runs and runs[-1][1] == k:
            runs[-1] = (runs[-1][0], k + 1)
        else:
            runs.append((k, k + 1))
    return runs
