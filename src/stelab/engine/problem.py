"""Build the random problem of a chunk of trials: teacher, sample, labels and initialization.

Every random quantity of trial k comes from its own stream (:mod:`stelab.seeds`), so a trial's
problem is the same in any chunk. Labels are the teacher's outputs on the normalized inputs, with
every sign decided exactly, as the engines decide the student's (:mod:`stelab.engine.decisions`),
so that without label noise the student at q = w* reproduces them bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stelab.config import Config
from stelab.data import flip_mask, gaussian_label_noise, get_distribution, make_teacher
from stelab.engine.decisions import DecisionRule
from stelab.engine.host_problem import initial_weights
from stelab.engine.passes import exact_preactivations, gemv_bound, preactivations
from stelab.engine.sizes import (  # noqa: F401 - re-exported (their old home)
    build_peak_extra,
    bytes_per_trial,
    data_bytes,
    draws_in_place,
    trial_bytes,
)
from stelab.engine.threads import Workers, single_threaded_blas
from stelab.memory import release_free_memory
from stelab.model import BinaryTwoLayer
from stelab.normalize import normalize_inputs_
from stelab.quantizers import sign
from stelab.seeds import trial_rng

Tensor = torch.Tensor


@dataclass
class Problem:
    """The data of a chunk of trials, on the engine's device."""

    trials: list[int]
    Z: Tensor  # (t, n, m, d), normalized inputs
    y: Tensor  # (t, n), labels
    teacher: Tensor  # (t, d), w* in {-1, +1}
    u0: Tensor  # (t, d), initial latent weights
    model: BinaryTwoLayer
    #: (t,) float64: error bound of a float pre-activation pass (passes.gemv_bound); computed
    #: from Z when not given
    bound: Tensor | None = None

    def __post_init__(self) -> None:
        if not self.Z.is_contiguous():  # the passes read Z as (t, n*m, d) rows in place
            self.Z = self.Z.contiguous()
        if self.bound is None:
            self.bound = gemv_bound(self.Z)

    @property
    def Z3(self) -> Tensor:
        """Z as (t, n*m, d): one row per (sample, hidden unit)."""
        t, n, m, d = self.Z.shape
        return self.Z.view(t, n * m, d)

    @property
    def rows(self) -> Tensor:
        """Z as (t*n*m, d)."""
        return self.Z.view(-1, self.Z.shape[-1])

    @property
    def Znp(self) -> np.ndarray | None:
        """Z3 as a numpy array sharing memory (CPU only; the pre-activation pass uses it)."""
        return self.Z3.numpy() if self.Z.device.type == "cpu" else None


def _labels(cfg: Config, model: BinaryTwoLayer, Z: Tensor, bound: Tensor, teacher: Tensor,
            trials: list[int]) -> Tensor:
    """y = v . sigma(Z w*) with every sign decided exactly (the student at q = w* takes the same
    decisions, so w* is an exact fixed point), then the label noise."""
    n, m, seed = cfg.train.n, cfg.model.m, cfg.run.seed
    kind, level = cfg.noise.kind, cfg.noise.level
    t = Z.shape[0]
    Z3 = Z.view(t, n * m, -1)
    Znp = Z3.numpy() if Z.device.type == "cpu" else None
    rule = DecisionRule(cfg.model.activation, "identity", None, m)

    def exact(local: Tensor, rows: Tensor) -> Tensor:
        return exact_preactivations(Z3[local, rows], teacher[local])

    h = preactivations(Z3, Znp, teacher, 0, t)
    act = rule.unit_activations(h, bound, exact, Z.dtype).view(t, n, m)
    if kind == "flip" and level > 0:
        masks = np.stack([flip_mask(trial_rng(seed, k, "noise"), (n, m), level) for k in trials])
        flip = torch.from_numpy(masks).to(Z.device)
        flipped = -act if cfg.model.activation == "sign" else 1 - act
        return torch.where(flip, flipped, act).mean(dim=-1)
    y = act.mean(dim=-1)
    if kind == "gaussian" and level > 0:
        noise = np.stack(
            [gaussian_label_noise(trial_rng(seed, k, "noise"), n, level) for k in trials]
        )
        y = y + torch.from_numpy(noise).to(device=Z.device, dtype=Z.dtype)
    return y


def draw_inputs(cfg: Config, trials: list[int]) -> Tensor:
    """The raw inputs of ``trials`` as one preallocated (t, n, m, d) CPU tensor of the run's dtype,
    filled trial by trial (no stacked copy of the whole draw). A distribution that draws in
    place (:meth:`stelab.data.Distribution.sample_into`) fills each trial's slice directly, the
    trials spread over the CPU threads (each has its own stream, so the split changes nothing);
    the others draw one trial at a time through a temporary, the peak that
    :func:`build_peak_extra` plans for."""
    dtype = getattr(torch, cfg.run.dtype)
    d, m, n = cfg.model.d, cfg.model.m, cfg.train.n
    dist = get_distribution(cfg.data.distribution)
    Z = torch.empty((len(trials), n, m, d), dtype=dtype)
    in_place = draws_in_place(cfg)

    def draw(i: int) -> None:
        rng = trial_rng(cfg.run.seed, trials[i], "inputs")
        dist.sample_into(rng, Z[i].numpy(), cfg.data.params)
        if not in_place:
            release_free_memory()

    with Workers(torch.device("cpu"), pool=in_place) as workers:
        workers.map(draw, list(range(len(trials))))
    return Z


def build_problem(
    cfg: Config, trials: list[int], device: torch.device, inputs: Tensor | None = None
) -> Problem:
    """Draw teacher, inputs, labels and initialization of ``trials`` and put them on ``device``.

    The inputs are drawn into one preallocated tensor and normalized in place; on a GPU the
    normalized tensor is moved once (the host copy is freed). ``inputs``: raw inputs to use
    instead of drawing them (a CPU tensor of shape (trials, n, m, d) and the run's dtype, e.g. a
    user's rows in :func:`stelab.diagnosis.simulate`); they are normalized in place.
    """
    dtype = getattr(torch, cfg.run.dtype)
    d, m = cfg.model.d, cfg.model.m
    seed = cfg.run.seed
    teacher = np.stack(
        [make_teacher(trial_rng(seed, k, "teacher"), d, cfg.model.teacher_balance) for k in trials]
    )
    if inputs is None:
        Z = draw_inputs(cfg, trials)
    elif inputs.shape != (len(trials), cfg.train.n, m, d) or inputs.dtype != dtype:
        raise ValueError(
            f"inputs: expected shape {(len(trials), cfg.train.n, m, d)} and dtype {dtype}, got "
            f"{tuple(inputs.shape)} {inputs.dtype}"
        )
    else:
        Z = inputs
    covariance = normalize_inputs_(Z, cfg.data.normalization)
    if device.type != "cpu":
        Z = Z.to(device)
        covariance = None if covariance is None else covariance.to(device)
    bound = gemv_bound(Z)
    model = BinaryTwoLayer(
        m=m,
        activation=cfg.model.activation,
        ste=cfg.train.ste,
        ste_params=cfg.train.ste_params,
        weight_ste=cfg.train.weight_ste,
        preact_cov=covariance,
    )
    w_star = sign(torch.from_numpy(teacher).to(device=device, dtype=dtype))
    with single_threaded_blas():  # as in the run: no spinning BLAS threads left behind
        y = _labels(cfg, model, Z, bound, w_star, trials)
    u0 = torch.from_numpy(initial_weights(cfg, trials)).to(device=device, dtype=dtype)
    release_free_memory()
    return Problem(
        trials=list(trials), Z=Z, y=y, teacher=w_star, u0=u0, model=model, bound=bound
    )
