"""A chunk's random problem built in numpy, for an engine that runs on host arrays (the
trial-wise engine): the same teacher, sample, labels, initialization and error bound as
:func:`stelab.engine.problem.build_problem`, value for value, without importing torch.

It covers the configs such an engine runs whose inputs are used as drawn (``data.normalization
= "none"``, float32, CPU); the normalizations are torch code (:mod:`stelab.normalize`), so with
one of them the torch builder makes the problem (:func:`builds_on_host`). Each step is the one of
the torch builder, written with the same float operations:

* inputs: each trial drawn into its slice of one preallocated (t, n, m, d) float32 array, the
  trials spread over the CPU threads (:func:`stelab.engine.problem.draw_inputs`);
* teacher w* = sign(w) and u_0 = init_scale * N(0, 1) rounded to float32 (round to nearest,
  as torch's conversion);
* error bound of a float32 pass, per trial (:func:`stelab.engine.passes.gemv_bound`):
  gamma_d * 1.01 * max_r sum_j |Z_rj|, the row sums taken in float64. The sums may differ from
  torch's in the last bits (another summation order); the bound is an upper bound either way
  (1% above the error it bounds), and every decision taken with it is the exact one, so the
  outcomes do not depend on which builder made it;
* labels y_i = mean_j sigma(Z_ij . w*), every sign decided on the exact value where |h| is
  within the bound (:meth:`stelab.engine.decisions.DecisionRule.unit_activations`), the mean
  summed exactly ({-1, 0, 1} values) and divided by m as torch's mean does; then flips or
  Gaussian noise added in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stelab.config import Config
from stelab.data import flip_mask, gaussian_label_noise, get_distribution, make_teacher
from stelab.engine import compiled
from stelab.engine.sizes import draws_in_place
from stelab.engine.threads import Workers, single_threaded_blas
from stelab.memory import release_free_memory
from stelab.seeds import trial_rng

__all__ = ["ROUNDOFF32", "ROUNDOFF64", "HostProblem", "build_host_problem", "builds_on_host",
           "host_bound", "initial_weights"]

#: unit roundoff u of float32 and float64 (:data:`stelab.engine.passes.UNIT_ROUNDOFF`)
ROUNDOFF32 = 2.0**-24
ROUNDOFF64 = 2.0**-53
#: rows per block when the bound is computed (bounds the float64 temporaries)
ROW_BLOCK = 1 << 10


@dataclass
class HostProblem:
    """The data of a chunk of trials as numpy arrays (the fields of
    :class:`stelab.engine.problem.Problem` an engine on host arrays reads).

    Attributes
    ----------
    trials : list of int
        The trial indices.
    Z : numpy.ndarray
        (t, n, m, d) float32, the inputs.
    y : numpy.ndarray
        (t, n) float32, the labels.
    teacher : numpy.ndarray
        (t, d) float32, w* in {-1, +1}.
    u0 : numpy.ndarray
        (t, d) float32, the initial latent weights.
    bound : numpy.ndarray
        (t,) float64, the error bound of a float32 pre-activation pass.
    """

    trials: list[int]
    Z: np.ndarray
    y: np.ndarray
    teacher: np.ndarray
    u0: np.ndarray
    bound: np.ndarray

    @property
    def Znp(self) -> np.ndarray:
        """Z as (t, n*m, d): one row per (sample, hidden unit)."""
        t, n, m, d = self.Z.shape
        return self.Z.reshape(t, n * m, d)


def builds_on_host(cfg: Config) -> bool:
    """Whether :func:`build_host_problem` builds the problem of ``cfg`` (module docstring)."""
    return cfg.data.normalization == "none" and cfg.run.dtype == "float32"


def host_bound(Z: np.ndarray) -> np.ndarray:
    """Per trial, an upper bound on the float32 error of h = Z q, (t,) float64 (module
    docstring; Z (t, n, m, d) float32)."""
    t, n, m, d = Z.shape
    gamma = d * ROUNDOFF32 / (1.0 - d * ROUNDOFF32)
    rows = Z.reshape(t, n * m, d)
    worst = np.zeros(t, dtype=np.float64)
    for k in range(t):
        for start in range(0, n * m, ROW_BLOCK):
            block = np.abs(rows[k, start : start + ROW_BLOCK]).sum(axis=-1, dtype=np.float64)
            worst[k] = max(worst[k], block.max())
    release_free_memory()
    return worst * (gamma * 1.01)


def initial_weights(cfg: Config, trials: list[int]) -> np.ndarray:
    """u_0 of ``trials`` in float64 (t, d): zeros, or init_scale * N(0, 1) from each trial's
    ``init`` stream."""
    d = cfg.model.d
    if cfg.train.init == "zero":
        return np.zeros((len(trials), d), dtype=np.float64)
    scale, seed = cfg.train.init_scale, cfg.run.seed
    return np.stack([scale * trial_rng(seed, k, "init").standard_normal(d) for k in trials])


def _draw(cfg: Config, trials: list[int]) -> np.ndarray:
    d, m, n = cfg.model.d, cfg.model.m, cfg.train.n
    dist = get_distribution(cfg.data.distribution)
    Z = np.empty((len(trials), n, m, d), dtype=np.float32)
    in_place = draws_in_place(cfg)

    def draw(i: int) -> None:
        dist.sample_into(trial_rng(cfg.run.seed, trials[i], "inputs"), Z[i], cfg.data.params)
        if not in_place:
            release_free_memory()

    with Workers("cpu", pool=in_place) as workers:
        workers.map(draw, list(range(len(trials))))
    return Z


def _labels(cfg: Config, Z: np.ndarray, bound: np.ndarray, teacher: np.ndarray,
            trials: list[int]) -> np.ndarray:
    n, m, seed = cfg.train.n, cfg.model.m, cfg.run.seed
    kind, level = cfg.noise.kind, cfg.noise.level
    sign = cfg.model.activation == "sign"
    t = Z.shape[0]
    Z3 = Z.reshape(t, n * m, -1)
    h = np.matmul(Z3, teacher[:, :, None])[:, :, 0]
    bound32 = (bound * (1.0 + 2.0**-20)).astype(np.float32)  # rounded up, as decisions do
    positive = (h >= 0) if sign else (h > 0)
    fixed = np.argwhere(np.abs(h) <= bound32[:, None])
    if len(fixed):
        exact = np.empty(len(fixed), dtype=np.float64)
        compiled.exact_rows(np.ascontiguousarray(Z3[fixed[:, 0], fixed[:, 1]]),
                            np.ascontiguousarray(teacher[fixed[:, 0]]), exact)
        positive[fixed[:, 0], fixed[:, 1]] = (exact >= 0) if sign else (exact > 0)
    act = positive.astype(np.float32)
    if sign:
        act = act * np.float32(2) - np.float32(1)
    act = act.reshape(t, n, m)
    if kind == "flip" and level > 0:
        masks = np.stack([flip_mask(trial_rng(seed, k, "noise"), (n, m), level) for k in trials])
        act = np.where(masks, -act if sign else np.float32(1) - act, act)
    y = act[:, :, 0] if m == 1 else act.sum(axis=-1) / np.float32(m)  # exact sums of +-1, 0
    if kind == "gaussian" and level > 0:
        noise = np.stack(
            [gaussian_label_noise(trial_rng(seed, k, "noise"), n, level) for k in trials]
        )
        y = y + noise.astype(np.float32)
    return np.ascontiguousarray(y, dtype=np.float32)


def build_host_problem(cfg: Config, trials: list[int]) -> HostProblem:
    """Draw teacher, inputs, labels and initialization of ``trials`` (a config of
    :func:`builds_on_host`) as numpy arrays, equal to those of
    :func:`stelab.engine.problem.build_problem` (module docstring)."""
    if not builds_on_host(cfg):
        raise ValueError("build_host_problem: needs data.normalization = 'none' and float32")
    seed, d = cfg.run.seed, cfg.model.d
    w = np.stack([make_teacher(trial_rng(seed, k, "teacher"), d, cfg.model.teacher_balance)
                  for k in trials])
    teacher = np.where(w >= 0, np.float32(1), np.float32(-1))
    Z = _draw(cfg, trials)
    # inf or NaN in the inputs or u_0 pass through (as in torch) and are refused by the run
    with np.errstate(over="ignore", invalid="ignore"):
        bound = host_bound(Z)
        with single_threaded_blas():  # as in the run: no spinning BLAS threads left behind
            y = _labels(cfg, Z, bound, teacher, trials)
        u0 = initial_weights(cfg, trials).astype(np.float32)
    release_free_memory()
    return HostProblem(trials=list(trials), Z=Z, y=y, teacher=teacher, u0=u0, bound=bound)
