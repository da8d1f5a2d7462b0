"""The trial-wise engine: each trial runs all its steps in one compiled call.

The batched engines take one step of every trial of a chunk at a time, so a step pays Python
and launch overheads once per chunk, and every trial's data leaves the CPU caches before its next
step. Here each worker thread takes a trial and runs its whole trajectory in one compiled loop
(:func:`trial_kernel`), then takes the next: no per-step overhead, and the data of a trial that
fits in the cache stays there for all its steps. The iterates are those of the incremental
engine (same updates, same exact decisions), hence of the dense engine, bit for bit:

* h = Z q is kept and updated from the flipped columns, h += 2 q_j Z[:, j]; a full pass
  recomputes it when more than COLD_MAX_FLIPS columns flipped and the trial has no
  column-major copy, or when its error bound (that of a float32 full pass, plus
  3 u64 max_r sum_j |Z_rj| per column added since) would exceed RESET_FACTOR times a full
  pass's. h is held in float64 (the passes sum in float32, their result is stored exactly), so
  a column update adds 2^29 times less rounding than in float32 and that reset does not come
  within a run's reach: at d = 1024, n = 3549 it had been 15 of the 31 full passes a trial
  took (a sixth of the bytes read). A trial that has taken
  COPY_AFTER_PASSES full passes for its flips gets a column-major copy of its data (one per
  worker thread, reused), from which later updates read only the flipped columns. The order
  of the additions into h does not matter: every decision is exact (below).
* decisions, residuals and coefficients: :func:`stelab.engine.compiled.decide` and
  ``coefficients``, every entry within the error bound of a threshold decided on its exact
  float64 value (:mod:`stelab.engine.decisions`).
* gradient sums G = sum_r c_r Z_r over the rows with c_r != 0, in row order, each term added
  with one fused multiply-add: the rounding of ``embedding_bag``, the canonical G of the batched
  engines (tested bit for bit against it).
* the latent step, as :func:`stelab.engine.recorder.latent_step` rounds it in float32:
  g = G (Q~'(u) fl(1/n)),  u <- u - fl(eta) g.
* a trial that reaches w* without label noise stays there (g = 0 exactly): its remaining
  iterates are filled in, as the batched engines' freeze does for a whole chunk.

Supported: what the incremental engine supports ({0, 1}-valued surrogates, full batch, float32,
CPU, any noise, m, activation and weight STE), except batch-norm statistics (the scale
s(q) is computed in torch) and loss trajectories (the batched engines record them); the
incremental engine runs those.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import numba
import numpy as np

from stelab.config import Config
from stelab.engine import compiled
from stelab.engine.compiled import COLD_MAX_FLIPS, FILL_BEFORE_END, RESET_FACTOR
from stelab.engine.host_problem import ROUNDOFF32, ROUNDOFF64, HostProblem
from stelab.engine.output import ChunkOutput, final_loss
from stelab.engine.prefetch import prefetch
from stelab.engine.sizes import data_bytes, trial_bytes
from stelab.engine.threads import Workers, cpu_threads
from stelab.engine.traffic import Traffic
from stelab.engine_registry import Engine, Layout
from stelab.errors import ConfigError
from stelab.surrogates import step_size_eta

if TYPE_CHECKING:
    from stelab.engine.problem import Problem

__all__ = ["ENGINE", "TrialwiseEngine", "gradient_sums", "run_trialwise", "trial_kernel",
           "trialwise_unsupported"]

#: a trial gets its column-major copy once it has taken this many full passes for its flips, and
#: not before: the copy costs a few passes (more where its pages are touched the first time), so
#: a trial that stops flipping soon, as most do above the threshold, is better off without it
#: (ski rental: at most this many passes are spent before buying). Seconds a trial at T = 1000,
#: after 3 / 16 / 32 / never: d = 1024 m = 1 n = 131072 0.29 / 0.20 / 0.19 / 0.21, n = 32768
#: 0.56 / 0.57 / 0.57 / 2.59; d = 512 m = 4 n = 65536 0.29 / 0.18 / 0.17 / 0.17, n = 4096 0.48 /
#: 0.45 / 0.47 / 0.85 (one thread)
COPY_AFTER_PASSES = 16

#: the counters a trial returns (as :class:`stelab.engine.traffic.Traffic` names them)
COUNTERS = ("pass_rows", "gradient_rows", "update_columns", "copied_columns", "flipped_columns")


def trialwise_unsupported(cfg: Config) -> str | None:
    """Why the trial-wise engine cannot run ``cfg`` (one line naming the field), or None."""
    return ENGINE.unsupported(cfg)


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def preactivations(Zk: np.ndarray, q: np.ndarray, h: np.ndarray) -> None:
    """h = Z_k q in float32, summed in any order (the error bound of
    :func:`stelab.engine.passes.gemv_bound` holds for every order)."""
    for r in range(Zk.shape[0]):
        row = Zk[r]
        total = np.float32(0.0)
        for j in range(row.shape[0]):
            total += row[j] * q[j]
        h[r] = total


#: rows of the gradient sum whose cache lines are requested ahead of the row being added
#: (measured at d = 1024: 1 row ahead 23 GB/s, 2-8 rows 42-45 GB/s from a chunk that fits the
#: L3 cache; without prefetching 13 GB/s, and embedding_bag 30)
PREFETCH_ROWS = 2


@numba.njit(nogil=True, cache=True, inline="always")
def _prefetch_row(Zk, r):  # noqa: ANN001, ANN202
    """Ask for the cache lines of row r of Z_k (a hint: no effect on the results)."""
    for j in range(0, Zk.shape[1], 16):
        prefetch(Zk, r, j)


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def gradient_sums(Zk: np.ndarray, coeff: np.ndarray, G: np.ndarray, rows: np.ndarray) -> int:
    """G = sum_r coeff[r] Z_k[r] over the rows with coeff[r] != 0, in row order, one fused
    multiply-add per term (as ``embedding_bag`` sums a bag); returns the number of rows, which
    are listed in ``rows`` (room for n*m). The rows are read PREFETCH_ROWS ahead (scattered
    rows defeat the hardware prefetcher)."""
    count = 0
    for r in range(Zk.shape[0]):
        if coeff[r] != 0:
            rows[count] = r
            count += 1
    G[:] = 0
    for p in range(min(PREFETCH_ROWS, count)):
        _prefetch_row(Zk, rows[p])
    for p in range(count):
        if p + PREFETCH_ROWS < count:
            _prefetch_row(Zk, rows[p + PREFETCH_ROWS])
        r = rows[p]
        c = coeff[r]
        row = Zk[r]
        for j in range(G.shape[0]):
            G[j] += c * row[j]
    return count


@numba.njit(nogil=True, cache=True)
def _ergodic_distance(q_sum: np.ndarray, w_star: np.ndarray, extra: int, q: np.ndarray) -> int:
    """Hamming distance of sign(q_sum + extra q) (sign(0) = +1) to w*."""
    count = 0
    for j in range(q_sum.shape[0]):
        total = q_sum[j] + extra * np.int64(q[j])
        count += (1.0 if total >= 0 else -1.0) != w_star[j]
    return count


@numba.njit(nogil=True, cache=True, inline="always")
def _refresh(Zk, y, q, h, err, act, coeff, G, rows, residual, counters, sign, lo, hi,  # noqa: ANN001, ANN202
             closed, m):
    """Decide every row of h (exactly near a threshold), the residuals, the coefficients and
    G; inlined into a kernel with the constants compiled in."""
    compiled.decide(h, Zk, q, err, 1.0, sign, lo, hi, closed, act, coeff)
    compiled.coefficients(act, y, m, residual, coeff)
    counters[1] += gradient_sums(Zk, coeff, G, rows)


@numba.njit(nogil=True, cache=True, inline="always")
def _latent_step(u, G, q, w_star, q_sum, flipped, weights, clipped, eta, inv_n):  # noqa: ANN001, ANN202
    """u <- u - eta G (Q~'(u) fl(1/n)) and q = sign(u), rounded as recorder.latent_step and
    binary round them; the flipped columns and their update weights 2 q_j go to ``flipped``
    and ``weights``, q to the ergodic sum. Returns (columns flipped, Hamming distance to w*)."""
    one = np.float32(1.0)
    flips = 0
    distance = 0
    for j in range(u.shape[0]):
        derivative = one
        if clipped:
            derivative = one if abs(u[j]) <= 1 else np.float32(0.0)
        u[j] = u[j] - eta * (G[j] * (derivative * inv_n))
        new = one if u[j] >= 0 else -one
        if new != q[j]:
            flipped[flips] = j
            weights[flips] = new + new
            flips += 1
        q[j] = new
        distance += new != w_star[j]
        q_sum[j] += np.int64(new)
    return flips, distance


@numba.njit(nogil=True, cache=True, inline="always")
def _transpose(Zk, Zt):  # noqa: ANN001, ANN202
    """Zt = Z_k^T, a blocked transpose (FILL_BLOCK rows at a time: whole cache lines)."""
    R, d = Zk.shape
    for start in range(0, R, compiled.FILL_BLOCK):
        stop = min(start + compiled.FILL_BLOCK, R)
        for j in range(d):
            for r in range(start, stop):
                Zt[j, r] = Zk[r, j]


@numba.njit(nogil=True, cache=True, inline="always")
def _add_flipped(h, Zk, Zt, has_copy, flipped, weights, flips):  # noqa: ANN001, ANN202
    """h += weights[p] Z_k[:, flipped[p]] for p < flips: from the column-major copy ``Zt``
    when the trial has one (eight columns per pass over h), else from the rows."""
    if has_copy:
        compiled.add_columns(h, Zt, flipped, weights, flips)
        return
    for p in range(flips):
        j = flipped[p]
        v = weights[p]
        for r in range(h.shape[0]):
            h[r] += v * Zk[r, j]


@numba.njit(nogil=True, cache=True, inline="always")
def _fill_frozen(q_sum, w_star, q, checkpoints, ergodic_at, step, steps):  # noqa: ANN001, ANN202
    """The iterates after ``step`` of a trial at w* without label noise (an exact fixed point:
    they are w* itself): the ergodic distances at the later checkpoints and the ergodic sum."""
    for i in range(checkpoints.shape[0]):
        if checkpoints[i] > step + 1:
            ergodic_at[i] = _ergodic_distance(q_sum, w_star, checkpoints[i] - step - 1, q)
    for j in range(q.shape[0]):
        q_sum[j] += (steps - step - 1) * np.int64(q[j])


def trial_kernel(
    activation: str, surrogate: str, params: dict[str, float] | None = None
) -> Callable[..., None]:
    """:func:`_trial_kernel` for a {0, 1}-valued surrogate with its ``params``, cached by the
    ends of its interval (:func:`stelab.engine.compiled.interval_constants`)."""
    return _trial_kernel(activation, *compiled.interval_constants(surrogate, params))


@cache
def _trial_kernel(activation: str, lo: float, hi: float, closed: bool) -> Callable[..., None]:
    """The compiled trajectory of one trial for one (activation, surrogate), constants compiled
    in (as :func:`stelab.engine.compiled.refresh_kernel`; the closure refers to
    compiled functions as module globals only, so that numba's disk cache finds it again).

    ``kernel(Zk, y, u, w_star, m, clipped, bound, per_update, inv_n, eta, steps, checkpoints,
    freeze, copy_ok, Zt, hamming, q_sum, ergodic_at, residual, counters)`` runs ``steps``
    steps from the latent weights ``u`` (updated in place to u_T): Hamming distances H_0..H_T
    into ``hamming``,
    the sum of the iterates q_1..q_T into ``q_sum``, the ergodic distances at the sorted
    ``checkpoints`` into ``ergodic_at``, the residuals at q_T into ``residual`` and the
    :data:`COUNTERS` into ``counters``. ``Zt`` (d, n*m) is room for a column-major copy (used
    when ``copy_ok``).
    """
    sign = activation == "sign"
    cold_max, reset, copy_after, fill_end = COLD_MAX_FLIPS, RESET_FACTOR, COPY_AFTER_PASSES, \
        FILL_BEFORE_END
    @numba.njit(nogil=True, cache=True)
    def kernel(Zk, y, u, w_star, m, clipped, bound, per_update, inv_n, eta, steps,  # noqa: ANN001, ANN202
               checkpoints, freeze, copy_ok, Zt, hamming, q_sum, ergodic_at, residual, counters):
        R, d = Zk.shape
        one = np.float32(1.0)
        q = np.empty(d, dtype=np.float32)
        h = np.empty(R, dtype=np.float64)
        act = np.empty(R, dtype=np.float32)
        coeff = np.empty(R, dtype=np.float32)
        G = np.zeros(d, dtype=np.float32)
        rows = np.empty(R, dtype=np.int64)
        flipped = np.empty(d, dtype=np.int64)
        weights = np.empty(d, dtype=np.float32)
        distance = 0
        for j in range(d):
            q[j] = one if u[j] >= 0 else -one
            distance += q[j] != w_star[j]
        hamming[0] = distance
        preactivations(Zk, q, h)
        counters[0] += R
        err = bound
        _refresh(Zk, y, q, h, err, act, coeff, G, rows, residual, counters, sign, lo, hi,
                 closed, m)
        has_copy = False
        flip_passes = 0  # full passes taken because too many uncached columns flipped
        for step in range(steps):
            flips, distance = _latent_step(u, G, q, w_star, q_sum, flipped, weights, clipped,
                                           eta, inv_n)
            counters[4] += flips
            hamming[step + 1] = distance
            for i in range(checkpoints.shape[0]):
                if checkpoints[i] == step + 1:
                    ergodic_at[i] = _ergodic_distance(q_sum, w_star, 0, q)
            if flips > 0:
                uncached = 0 if has_copy else flips
                for_flips = uncached > cold_max
                if for_flips or err + flips * per_update > reset * bound:
                    preactivations(Zk, q, h)
                    counters[0] += R
                    err = bound
                    flip_passes += for_flips
                    if copy_ok and not has_copy and for_flips and flip_passes >= copy_after and \
                            step < steps - fill_end:
                        _transpose(Zk, Zt)
                        has_copy = True
                        counters[3] += d
                else:
                    _add_flipped(h, Zk, Zt, has_copy, flipped, weights, flips)
                    err += flips * per_update
                    counters[2] += flips
                _refresh(Zk, y, q, h, err, act, coeff, G, rows, residual, counters, sign, lo,
                         hi, closed, m)
            if distance == 0 and freeze:
                _fill_frozen(q_sum, w_star, q, checkpoints, ergodic_at, step, steps)
                break

    return kernel


def run_trialwise(problem: Problem | HostProblem, cfg: Config, freeze: bool = True,
                  copies: bool = True, traffic: Traffic | None = None) -> ChunkOutput:
    """Run ``cfg.train.steps`` steps of every trial of ``problem``, one trial per worker thread
    at a time (module docstring); outputs identical to :func:`stelab.engine.dense.run_dense`.

    ``copies``: whether a trial that keeps flipping many columns gets a column-major copy of
    its data (one per worker thread, n*m*d floats each).
    """
    reason = trialwise_unsupported(cfg)
    if reason is None and not isinstance(problem, HostProblem) and \
            problem.Z.device.type != "cpu":
        reason = "run.device: the trial-wise engine runs on the CPU; allowed: cpu"
    if reason is not None:
        raise ConfigError(reason)
    Z3 = problem.Znp
    assert Z3 is not None
    t, R, d = Z3.shape
    n, m = problem.Z.shape[1], problem.Z.shape[2]
    T = cfg.train.steps
    kernel = trial_kernel(cfg.model.activation, cfg.train.ste, cfg.train.ste_params)
    clipped = cfg.train.weight_ste == "clipped"
    with np.errstate(over="ignore"):  # an eta past float32 gives inf weights, refused later
        eta = np.float32(step_size_eta(cfg.train.step_size, d, m, cfg.model.activation))
    inv_n = np.float32(1.0) / np.float32(n)
    noiseless = cfg.noise.kind == "none" or cfg.noise.level == 0
    gamma = d * ROUNDOFF32 / (1.0 - d * ROUNDOFF32)
    bound = np.asarray(problem.bound)  # per trial: the error of a float32 full pass
    # h's column updates add in float64 (h is float64; 2 q_j Z_rj is exact)
    per_update = bound * (3.0 * 1.01 * ROUNDOFF64 / gamma)
    checkpoints = np.array(sorted(set(cfg.record.checkpoints)), dtype=np.int64)

    u = np.asarray(problem.u0).astype(np.float32)  # a copy, updated in place
    hamming = np.zeros((t, T + 1), dtype=np.int32)
    q_sum = np.zeros((t, d), dtype=np.int64)
    ergodic_at = np.zeros((t, len(checkpoints)), dtype=np.int64)
    residual = np.zeros((t, n), dtype=np.float32)
    counters = np.zeros((t, len(COUNTERS)), dtype=np.int64)
    y, w_star = np.asarray(problem.y), np.asarray(problem.teacher)
    local = threading.local()
    no_copy = np.empty((0, R), dtype=np.float32)

    def run(k: int) -> None:
        room = no_copy
        if copies:
            room = getattr(local, "room", None)
            if room is None:  # one column-major slab per worker thread, reused trial by trial
                room = local.room = np.empty((d, R), dtype=np.float32)
        kernel(Z3[k], y[k], u[k], w_star[k], m, clipped, float(bound[k]), float(per_update[k]),
               inv_n, eta, T, checkpoints, noiseless and freeze, copies, room, hamming[k], q_sum[k],
               ergodic_at[k], residual[k], counters[k])

    with Workers("cpu") as workers:
        workers.map(run, list(range(t)))
    if traffic is not None:
        traffic.add(**dict(zip(COUNTERS, counters.sum(axis=0).tolist(), strict=True)))
    return ChunkOutput(
        hamming=hamming,
        ergodic_hamming=np.array([_ergodic_distance(q_sum[k], w_star[k], 0, w_star[k])
                                  for k in range(t)]),  # (no extra iterates: q unused)
        final_loss=final_loss(residual),
        loss=None,
        final_u=u,
        ergodic_at=ergodic_at,
    )


class TrialwiseEngine(Engine):
    """The trial-wise engine in the registry (:mod:`stelab.engine_registry`).

    One layout, ``trialwise``: per trial :func:`stelab.engine.problem.trial_bytes` and 24 d
    bytes of per-column state, plus once per chunk one column-major copy of a trial per worker
    thread. Its cost estimate is the lowest of the built-in engines (no per-step overhead: the
    fastest at every size measured, docs/benchmarks.md); where not even the smallest chunk fits
    its copies, ``auto`` goes on to the batched incremental engine (``fallback``).
    """

    name = "trialwise"
    fallback = "incremental"
    host_arrays = True

    def unsupported(self, cfg: Config) -> str | None:
        reason = compiled.unsupported(cfg, self.name)
        if reason is not None:
            return reason
        if cfg.data.normalization == "batchnorm":
            return "data.normalization: batch-norm statistics run on the batched engines"
        if cfg.record.loss_trajectory:
            return "record.loss_trajectory: loss trajectories are recorded by the batched " \
                "engines"
        return None

    def cost(self, cfg: Config) -> float:
        return 0.25

    def layouts(self, cfg: Config) -> tuple[Layout, ...]:
        return (Layout("trialwise", trial_bytes(cfg) + 24 * cfg.model.d,
                       fixed=cpu_threads() * data_bytes(cfg)),)

    def run(self, cfg: Config, problem: Problem | HostProblem, layout: str,
            traffic: Traffic | None = None) -> ChunkOutput:
        return run_trialwise(problem, cfg, traffic=traffic)


ENGINE = TrialwiseEngine()
