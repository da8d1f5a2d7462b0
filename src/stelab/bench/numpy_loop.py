"""The research-script baseline: the careful per-trial numpy loop a researcher writes first.

One trial at a time, float32, numpy's own BLAS with its default threads, two matrix-vector
products per step (h = Z q and r^T Z), and the trial stopped as soon as every residual is zero
(w* is then a fixed point, so the rest of its trajectory is known):

    q = sign(u)  (sign(0) = +1);   f_i = mean_j sign(Z_ij . q);   r = f - y
    if r == 0: stop;   u <- u - eta (r^T Z) / (n m)   with Z seen as (n m, d) rows

This is the STE-gradient method of docs (sign activation, identity surrogate and weight STE,
full batch, no batch-norm statistics), with r_i / m the coefficient of each of the m rows of
sample i. It runs on the engine's own problems (data, labels, initialization), so per-trial
Hamming trajectories can be compared. Unlike the engine, it decides signs on float32 values
(a pre-activation within float rounding of 0 can fall on the other side) and sums G in BLAS
order, so a trajectory can differ in rare trials; the bench reports how many agree.

As its own process (``python -m stelab.bench.numpy_loop``, the ``process`` benchmark) it draws
each trial's problem itself, with numpy, on the engine's streams (:mod:`stelab.seeds`): the same
teacher, inputs (``Generator.standard_normal(dtype=float32)``, whose values the engine's
compiled draw reproduces) and initialization; its labels are decided on float32 values, as a
script does. That process imports numpy and a few small stelab modules only (no torch, no
numba).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from stelab.data import make_teacher
from stelab.seeds import trial_rng
from stelab.surrogates import step_size_eta

if TYPE_CHECKING:
    from stelab.engine.problem import Problem


def train_one(Z: np.ndarray, y: np.ndarray, u0: np.ndarray, w_star: np.ndarray, eta: float,
              steps: int) -> np.ndarray:
    """Hamming distances H_0..H_T of one trial (Z (n, m, d), y (n,), u0 and w* (d,))."""
    n, m, d = Z.shape
    rows = Z.reshape(n * m, d)
    u = u0.astype(np.float32).copy()
    hamming = np.zeros(steps + 1, dtype=np.int32)
    q = np.where(u >= 0, np.float32(1), np.float32(-1))
    hamming[0] = np.count_nonzero(q != w_star)
    for step in range(steps):
        act = np.where(rows @ q >= 0, np.float32(1), np.float32(-1))
        f = act if m == 1 else act.reshape(n, m).mean(axis=1)
        r = f - y
        if not r.any():  # at a fixed point: q never changes again
            hamming[step + 1 :] = hamming[step]
            break
        coeff = r if m == 1 else np.repeat(r / np.float32(m), m)
        u -= np.float32(eta / n) * (coeff @ rows)
        q = np.where(u >= 0, np.float32(1), np.float32(-1))
        hamming[step + 1] = np.count_nonzero(q != w_star)
    return hamming


def run_numpy_loop(problem: Problem, steps: int, step_size: float) -> np.ndarray:
    """Hamming trajectories (t, T+1) of every trial of ``problem``, one trial after the other.

    Valid for: sign activation, identity surrogate and weight STE, full batch, no batch-norm
    statistics (the bench's E1 workloads).
    """
    t, n, m, d = problem.Z.shape
    eta = step_size_eta(step_size, d, m, "sign")
    Z, y = np.asarray(problem.Z), np.asarray(problem.y)
    u0, w_star = np.asarray(problem.u0), np.asarray(problem.teacher)
    return np.stack([train_one(Z[k], y[k], u0[k], w_star[k], eta, steps) for k in range(t)])


def draw_trial(d: int, n: int, seed: int, trial: int, init_scale: float = 1e-3
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The problem of one E1 trial (m = 1, Gaussian, balanced teacher, small init) drawn with
    numpy on the engine's streams: Z (n, 1, d) float32, y (n,), u_0 (d,) and w* (d,) float32;
    y_i = sign(Z_i . w*) decided on the float32 value (module docstring)."""
    w_star = make_teacher(trial_rng(seed, trial, "teacher"), d, 0.5)
    Z = trial_rng(seed, trial, "inputs").standard_normal((n, 1, d), dtype=np.float32)
    y = np.where(Z[:, 0] @ w_star >= 0, np.float32(1), np.float32(-1))
    u0 = (init_scale * trial_rng(seed, trial, "init").standard_normal(d)).astype(np.float32)
    return Z, y, u0, w_star


def main(argv: Sequence[str] | None = None) -> None:
    """The loop as its own process: draw and train every trial of each n, one after the other,
    and print one JSON line (n values, per-trial success of the last iterate, seconds)."""
    parser = argparse.ArgumentParser(prog="python -m stelab.bench.numpy_loop")
    parser.add_argument("--d", type=int, required=True)
    parser.add_argument("--n", type=int, nargs="+", required=True)
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--step-size", type=float, default=0.5)
    parser.add_argument("--blas-threads", type=int, default=None)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    limits = None
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=args.blas_threads, user_api="blas")
    eta = step_size_eta(args.step_size, args.d, 1, "sign")
    success = []
    for n in args.n:
        flags = []
        for k in range(args.trials):
            hamming = train_one(*draw_trial(args.d, n, args.seed, k), eta, args.steps)
            flags.append(bool(hamming[-1] == 0))
        success.append(flags)
    if limits is not None:
        limits.restore_original_limits()
    print(json.dumps({"n": args.n, "success_last": success,
                      "seconds": time.perf_counter() - began}))


if __name__ == "__main__":
    main()
