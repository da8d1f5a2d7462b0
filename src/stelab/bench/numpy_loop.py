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
"""

from __future__ import annotations

import numpy as np

from stelab.engine.problem import Problem
from stelab.surrogates import step_size_eta


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
    Z, y = problem.Z.numpy(), problem.y.numpy()
    u0, w_star = problem.u0.numpy(), problem.teacher.numpy()
    return np.stack([train_one(Z[k], y[k], u0[k], w_star[k], eta, steps) for k in range(t)])
