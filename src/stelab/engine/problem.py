"""Build the random problem of a chunk of trials: teacher, sample, labels and initialization.

Every random quantity of trial k comes from its own stream (:mod:`stelab.seeds`), so a trial's
problem is the same in any chunk. Labels are produced by the same model code as the student's
forward pass (:class:`stelab.model.BinaryTwoLayer`) on the normalized inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stelab.config import Config
from stelab.data import flip_mask, gaussian_label_noise, get_distribution, make_teacher
from stelab.model import BinaryTwoLayer
from stelab.normalize import normalize_inputs, row_covariance
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


def bytes_per_trial(cfg: Config) -> int:
    """Peak bytes one trial's data needs in the engine (raw + normalized inputs, float32/64)."""
    item = 4 if cfg.run.dtype == "float32" else 8
    n, m, d = cfg.train.n, cfg.model.m, cfg.model.d
    copies = 1 if cfg.data.normalization == "none" else 2
    covariance = 8 * d * d if cfg.data.normalization in ("whiten", "batchnorm") else 0
    return item * n * m * d * copies + 3 * covariance + 16 * (n + d)


def _labels(
    cfg: Config, model: BinaryTwoLayer, Z: Tensor, teacher: Tensor, trials: list[int]
) -> Tensor:
    n, m, seed = cfg.train.n, cfg.model.m, cfg.run.seed
    kind, level = cfg.noise.kind, cfg.noise.level
    if kind == "flip" and level > 0:
        act = model.activations(model.preactivations(Z, teacher))
        masks = np.stack([flip_mask(trial_rng(seed, k, "noise"), (n, m), level) for k in trials])
        flip = torch.from_numpy(masks).to(Z.device)
        flipped = -act if cfg.model.activation == "sign" else 1 - act
        return torch.where(flip, flipped, act).mean(dim=-1)
    y = model.outputs(model.preactivations(Z, teacher))
    if kind == "gaussian" and level > 0:
        noise = np.stack(
            [gaussian_label_noise(trial_rng(seed, k, "noise"), n, level) for k in trials]
        )
        y = y + torch.from_numpy(noise).to(device=Z.device, dtype=Z.dtype)
    return y


def _initial_weights(cfg: Config, trials: list[int]) -> np.ndarray:
    d = cfg.model.d
    if cfg.train.init == "zero":
        return np.zeros((len(trials), d), dtype=np.float64)
    scale, seed = cfg.train.init_scale, cfg.run.seed
    return np.stack([scale * trial_rng(seed, k, "init").standard_normal(d) for k in trials])


def build_problem(cfg: Config, trials: list[int], device: torch.device) -> Problem:
    """Draw teacher, inputs, labels and initialization of ``trials`` and put them on ``device``."""
    dtype = getattr(torch, cfg.run.dtype)
    d, m, n = cfg.model.d, cfg.model.m, cfg.train.n
    seed = cfg.run.seed
    dist = get_distribution(cfg.data.distribution)
    teacher = np.stack(
        [make_teacher(trial_rng(seed, k, "teacher"), d, cfg.model.teacher_balance) for k in trials]
    )
    raw = np.stack(
        [dist.sample(trial_rng(seed, k, "inputs"), (n, m, d), cfg.data.params) for k in trials]
    )
    Z = torch.from_numpy(raw).to(device=device, dtype=dtype)
    del raw
    covariance = row_covariance(Z) if cfg.data.normalization == "batchnorm" else None
    Z = normalize_inputs(Z, cfg.data.normalization)
    model = BinaryTwoLayer(
        m=m,
        activation=cfg.model.activation,
        ste=cfg.train.ste,
        ste_params=cfg.train.ste_params,
        weight_ste=cfg.train.weight_ste,
        preact_cov=covariance,
    )
    w_star = torch.from_numpy(teacher).to(device=device, dtype=dtype)
    y = _labels(cfg, model, Z, w_star, trials)
    u0 = torch.from_numpy(_initial_weights(cfg, trials)).to(device=device, dtype=dtype)
    return Problem(trials=list(trials), Z=Z, y=y, teacher=sign(w_star), u0=u0, model=model)
