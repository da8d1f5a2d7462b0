"""A toy engine for the registry's tests: plain numpy, one hidden unit (m = 1), full batch.

It shows what adding an engine takes (docs/architecture.md, "Add an engine"): one class with a
name, why it cannot run a config, a cost estimate, its memory layouts and its run over a planned
chunk, registered with :func:`stelab.engine_registry.register_engine`; no other file changes.

Per trial, in float64: h = Z q, act = sign(h) (sign(0) = +1), residual = act - y,
G = sum_r residual_r Z_r, u <- u - eta G / n, q = sign(u) (surrogate and weight STE: identity).
"""

from __future__ import annotations

import numpy as np

from stelab.engine.problem import trial_bytes
from stelab.engine.recorder import ChunkOutput
from stelab.engine_registry import Engine, Layout
from stelab.model import step_size_eta


def _sign(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1.0, -1.0)


class NumpyEngine(Engine):
    """m = 1, sign activation, identity surrogate and weight STE, full batch, CPU."""

    name = "numpy"

    def __init__(self, cost: float = 10.0) -> None:
        self._cost = cost

    def unsupported(self, cfg) -> str | None:  # noqa: ANN001
        if cfg.model.m != 1:
            return "model.m: the numpy engine runs m = 1; allowed: 1"
        if cfg.model.activation != "sign" or cfg.train.ste != "identity" or \
                cfg.train.weight_ste != "identity":
            return "train.ste: the numpy engine runs sign / identity / identity only"
        if cfg.train.batch_size is not None or cfg.data.normalization == "batchnorm":
            return "train.batch_size: the numpy engine runs full batch without batch norm"
        if cfg.record.loss_trajectory or cfg.record.checkpoints or cfg.run.device == "cuda":
            return "record: the numpy engine records Hamming distances only, on the CPU"
        return None

    def cost(self, cfg) -> float:  # noqa: ANN001
        return self._cost

    def layouts(self, cfg) -> tuple[Layout, ...]:  # noqa: ANN001
        # trial_bytes counts the data once; the float64 copy of one trial is the fixed part
        return (Layout("float64", trial_bytes(cfg), fixed=8 * cfg.train.n * cfg.model.d),)

    def run(self, cfg, problem, layout, traffic=None) -> ChunkOutput:  # noqa: ANN001
        Z_all = problem.Z.numpy()
        t, n, _, d = Z_all.shape
        T = cfg.train.steps
        eta = step_size_eta(cfg.train.step_size, d, 1, cfg.model.activation)
        w_star = problem.teacher.numpy().astype(np.float64)
        hamming = np.zeros((t, T + 1), dtype=np.int32)
        ergodic = np.zeros(t, dtype=np.int64)
        final_loss = np.zeros(t)
        final_u = np.empty((t, d), dtype=Z_all.dtype)
        for k in range(t):
            Z = Z_all[k, :, 0, :].astype(np.float64)
            y = problem.y.numpy()[k].astype(np.float64)
            u = problem.u0.numpy()[k].astype(np.float64)
            q = _sign(u)
            q_sum = np.zeros(d)
            hamming[k, 0] = np.count_nonzero(q != w_star[k])
            for step in range(T):
                residual = _sign(Z @ q) - y
                u -= eta * (residual @ Z) / n
                q = _sign(u)
                q_sum += q
                hamming[k, step + 1] = np.count_nonzero(q != w_star[k])
            residual = _sign(Z @ q) - y
            final_loss[k] = 0.5 * np.mean(residual**2)
            ergodic[k] = np.count_nonzero(_sign(q_sum) != w_star[k])
            final_u[k] = u
        return ChunkOutput(hamming=hamming, ergodic_hamming=ergodic, final_loss=final_loss,
                           loss=None, final_u=final_u, ergodic_at=np.zeros((t, 0), np.int64))
