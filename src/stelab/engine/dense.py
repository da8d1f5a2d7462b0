"""The dense STE-gradient engine: every step reads the whole sample of every trial.

    u_{t+1} = u_t - eta * g(u_t),   q_t = sign(u_t),   eta = c sqrt(pi d / 2) m kappa

Each step reads the data once per trial: h = Z q (:func:`passes.preactivations`), then the
exact decisions, residuals and coefficients (:mod:`stelab.engine.decisions`), then the
gradient sums G = sum_r c_r Z_r over the rows with c_r != 0 only (:func:`passes.gradient_sums`;
without label noise most rows have zero residual after the first steps). The trials are split
into one group per CPU thread torch was given (:class:`threads.Workers`) when a step has at
least PARALLEL_BYTES of data, else they run on one thread. Full batch by default; with
``train.batch_size`` B each trial walks through its own random permutation of the sample, B rows
a step, reshuffled every epoch (rows that do not fill a last batch wait for the next epoch).

Results do not depend on the grouping, the chunk or the number of threads: decisions are exact
and each trial's G is a sequential sum over its own rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from stelab.config import Config
from stelab.engine import compiled
from stelab.engine.decisions import DecisionRule
from stelab.engine.passes import (
    BagBuffers,
    bag_range_sums,
    exact_preactivations,
    gradient_sums,
    preactivations,
)
from stelab.engine.problem import Problem, trial_bytes
from stelab.engine.recorder import ChunkOutput, Recorder, binary, latent_step, loss_of
from stelab.engine.threads import PARALLEL_BYTES, Workers, split_evenly
from stelab.engine.traffic import Traffic
from stelab.engine_registry import Engine, Layout
from stelab.quantizers import get_weight_ste
from stelab.seeds import trial_rng
from stelab.surrogates import step_size_eta

Tensor = torch.Tensor

__all__ = ["ENGINE", "ChunkOutput", "DenseEngine", "MinibatchSampler", "run_dense",
           "full_forward"]

#: bytes of gathered minibatch rows per work unit (bounds that temporary)
GATHER_BYTES = 32 << 20


class MinibatchSampler:
    """Per-trial epoch-wise random permutations of range(n), served B indices at a time."""

    def __init__(self, seed: int, trials: list[int], n: int, batch_size: int) -> None:
        self._rngs = [trial_rng(seed, k, "batches") for k in trials]
        self._n = n
        self._batch = batch_size
        self._pos = n  # forces a shuffle on the first call
        self._perm = np.empty((len(trials), n), dtype=np.int64)

    def next(self) -> np.ndarray:
        """Indices of the next minibatch, shape (t, B)."""
        if self._pos + self._batch > self._n:
            for k, rng in enumerate(self._rngs):
                self._perm[k] = rng.permutation(self._n)
            self._pos = 0
        idx = self._perm[:, self._pos : self._pos + self._batch]
        self._pos += self._batch
        return idx


def full_forward(
    problem: Problem,
    rule: DecisionRule,
    q: Tensor,
    scale: Tensor | None,
    groups: list[tuple[int, int]],
    workers: Workers,
    residual: Tensor,
    G: Tensor | None,
    bags: BagBuffers | None = None,
    traffic: Traffic | None = None,
) -> None:
    """One pass over the full sample at weights q: fills ``residual`` (t, n) and, when given,
    the gradient sums ``G`` (t, d). Each group of trials (one per worker) runs its
    pre-activation pass, decisions and gradient sums on its own thread. ``bags``: buffers for
    the compiled decisions, kept from one pass to the next by the caller; ``traffic`` counts
    the rows read."""
    Z3, Znp, rows, bound, y = problem.Z3, problem.Znp, problem.rows, problem.bound, problem.y
    R = Z3.shape[1]
    kernel = compiled_decisions(rule, Z3)
    if kernel is not None and bags is None:
        bags = BagBuffers(R, Z3.dtype)

    def unit(group: tuple[int, int]) -> None:
        a, b = group

        def exact(local: Tensor, r: Tensor) -> Tensor:
            return exact_preactivations(Z3[a + local, r], q[a + local])

        h = preactivations(Z3, Znp, q, a, b)
        if kernel is not None:
            assert bags is not None
            used = _decide_compiled(kernel, bags, problem, h, q, scale, residual, G, a, b)
        else:
            dec = rule.decide(h, bound[a:b], None if scale is None else scale[a:b], y[a:b],
                              exact)
            residual[a:b] = dec.residual
            if G is not None:
                G[a:b] = gradient_sums(rows, dec.coeff, a, R)
            used = int(dec.coeff.count_nonzero()) if G is not None else 0
        if traffic is not None:
            traffic.add(pass_rows=R * (b - a), gradient_rows=used if G is not None else 0)

    workers.map(unit, groups)


def compiled_decisions(rule: DecisionRule, Z3: Tensor) -> Callable[..., None] | None:
    """The compiled decision kernel for full passes where it applies ({0, 1}-valued surrogate,
    float32 data on the CPU; :func:`stelab.engine.compiled.refresh_kernel`), else None."""
    if not rule.discrete or Z3.dtype != torch.float32 or Z3.device.type != "cpu":
        return None
    return compiled.refresh_kernel(rule.activation, rule.ste, rule.m, rule.params)


def _decide_compiled(
    kernel: Callable[..., None], bags: BagBuffers, problem: Problem, h: Tensor, q: Tensor,
    scale: Tensor | None, residual: Tensor, G: Tensor | None, a: int, b: int,
) -> int:
    """Decisions, residuals and gradient sums of trials a..b-1 from their pre-activations ``h``
    by the compiled kernel (no columns to apply): the same values as DecisionRule.decide and
    gradient_sums, bit for bit (tests/test_engine_compiled.py). Returns the number of rows with a
    non-zero coefficient."""
    Z3 = problem.Z3[a:b]
    k, R, d = Z3.shape
    bag_rows, bag_weights, offsets = bags.get(k)
    scale64 = np.ones(k) if scale is None else scale[a:b].to(torch.float64).numpy()
    kernel(
        np.arange(k), Z3.numpy(), h.numpy(), q[a:b].numpy(), problem.y[a:b].numpy(),
        problem.bound[a:b].numpy().copy(), np.zeros(k), scale64, np.zeros((k, d), dtype=bool),
        np.zeros(k, dtype=bool), np.full((k, d), -1), np.zeros(0, dtype=bool),
        np.zeros((0, R), dtype=np.float32), residual[a:b].numpy(), bag_rows.numpy(),
        bag_weights.numpy(), offsets.numpy(),
    )
    if G is not None:
        G[a:b] = bag_range_sums(Z3.reshape(-1, d), bag_rows, bag_weights, offsets, 0, k)
    return int(offsets[k])


def _minibatch_forward(
    problem: Problem,
    rule: DecisionRule,
    q: Tensor,
    scale: Tensor | None,
    idx: Tensor,
    groups: list[tuple[int, int]],
    workers: Workers,
    G: Tensor,
) -> None:
    """Gradient sums of the minibatch ``idx`` (t, B) of each trial into ``G``."""
    Z3, rows, bound, y = problem.Z3, problem.rows, problem.bound, problem.y
    t, R, d = Z3.shape
    m = problem.Z.shape[2]
    units = (idx[:, :, None] * m + torch.arange(m, device=idx.device)).reshape(t, -1)

    def unit(group: tuple[int, int]) -> None:
        a, b = group
        trial = torch.arange(a, b, device=idx.device)[:, None]
        Zb = Z3[trial, units[a:b]]  # (g, B*m, d): the batch's rows, gathered
        h = torch.bmm(Zb, q[a:b, :, None])[:, :, 0]

        def exact(local: Tensor, r: Tensor) -> Tensor:
            return exact_preactivations(Zb[local, r], q[a + local])

        yb = y[trial, idx[a:b]]
        dec = rule.decide(h, bound[a:b], None if scale is None else scale[a:b], yb, exact)
        G[a:b] = gradient_sums(rows, dec.coeff, a, R, row_index=units[a:b])

    workers.map(unit, groups)


def run_dense(problem: Problem, cfg: Config, freeze: bool = True,
              traffic: Traffic | None = None) -> ChunkOutput:
    """Run ``cfg.train.steps`` STE-gradient steps on every trial of ``problem``.

    With noiseless labels and full batch, w* is an exact fixed point (g = 0 there, bit for bit),
    so once every trial sits at w* the remaining steps are filled in without computing them
    (``freeze``); the outputs are identical to computing them. ``traffic``, when given, counts
    the rows read by full-batch steps.
    """
    Z, model = problem.Z, problem.model
    t, n, m, d = Z.shape
    T = cfg.train.steps
    eta = step_size_eta(cfg.train.step_size, d, m, cfg.model.activation)
    weight_derivative = get_weight_ste(cfg.train.weight_ste)
    full_batch = cfg.train.batch_size is None
    noiseless = cfg.noise.kind == "none" or cfg.noise.level == 0
    can_freeze = freeze and full_batch and noiseless
    rule = DecisionRule.from_config(cfg)

    u = problem.u0.clone()
    q = binary(u)
    record = Recorder(cfg, q, problem.teacher)
    residual = torch.zeros((t, n), dtype=Z.dtype, device=Z.device)
    G = torch.zeros((t, d), dtype=Z.dtype, device=Z.device)
    sampler = (
        None
        if full_batch
        else MinibatchSampler(cfg.run.seed, problem.trials, n, cfg.train.batch_size)
    )
    bags = BagBuffers(n * m, Z.dtype)  # kept for the whole run
    item = Z.element_size()
    batch_bytes = (cfg.train.batch_size or 0) * m * d
    with Workers(Z.device) as workers:
        parallel = item * t * n * m * d >= PARALLEL_BYTES
        groups = split_evenly(t, workers.count if parallel else 1)
        batch_groups = (
            groups
            if full_batch
            else split_evenly(t, max(workers.count, -(-t * item * batch_bytes // GATHER_BYTES)))
        )
        for step in range(T):
            scale = model.preact_scale(q)
            if sampler is None:
                full_forward(problem, rule, q, scale, groups, workers, residual, G, bags,
                             traffic)
                n_batch = n
            else:
                idx = torch.from_numpy(sampler.next()).to(Z.device)
                _minibatch_forward(problem, rule, q, scale, idx, batch_groups, workers, G)
                if record.loss is not None:
                    full_forward(problem, rule, q, scale, groups, workers, residual, None, bags)
                n_batch = cfg.train.batch_size
            if record.loss is not None:
                record.loss[:, step] = loss_of(residual)
            latent_step(u, G, n_batch, scale, eta, weight_derivative)
            q = binary(u)
            if record.record(step, q) and can_freeze:
                record.freeze(step, q)
                break
        full_forward(problem, rule, q, model.preact_scale(q), groups, workers, residual, None,
                     bags)
    return record.output(loss_of(residual), u)


class DenseEngine(Engine):
    """The dense engine in the registry (:mod:`stelab.engine_registry`): it runs every config,
    in one layout, ``rows`` (the data, the per-row state and the recorded trajectories), and
    is the reference of the cost estimates (1.0)."""

    name = "dense"

    def cost(self, cfg: Config) -> float:
        return 1.0

    def layouts(self, cfg: Config) -> tuple[Layout, ...]:
        return (Layout("rows", trial_bytes(cfg)),)

    def run(self, cfg: Config, problem: Problem, layout: str,
            traffic: Traffic | None = None) -> ChunkOutput:
        return run_dense(problem, cfg, traffic=traffic)


ENGINE = DenseEngine()
