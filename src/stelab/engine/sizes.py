"""How many bytes a trial and a chunk take, per engine layout: what the planner
(:mod:`stelab.engine.budget`) and the engines' layouts add up, computed from the config alone
(no torch, no engine imported)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stelab.data import get_distribution

if TYPE_CHECKING:
    from stelab.config import Config

__all__ = ["CACHE_FRACTION", "build_peak_extra", "bytes_per_trial", "cache_bytes_per_trial",
           "data_bytes", "draws_in_place", "trial_bytes"]

#: the incremental engine's column cache holds at most this fraction of a chunk's data (its
#: ``cache`` layout)
CACHE_FRACTION = 0.25


def bytes_per_trial(cfg: Config) -> int:
    """Peak bytes one trial adds while its problem is built and run: its data (the
    ``n x m x d`` tensor), the per-row state of the engines (pre-activations in float64,
    coefficients, labels: 24 bytes per row) and the d x d float64 statistics of whitening and
    batch-norm. The draw of one trial's raw inputs is a one-off temporary (see
    :func:`build_peak_extra`)."""
    item = 4 if cfg.run.dtype == "float32" else 8
    n, m, d = cfg.train.n, cfg.model.m, cfg.model.d
    covariance = 8 * d * d if cfg.data.normalization == "batchnorm" else 0
    return item * n * m * d + 24 * n * m + covariance + 64 * d


def data_bytes(cfg: Config) -> int:
    """Bytes of one trial's data, the ``n x m x d`` tensor in ``run.dtype``."""
    item = 4 if cfg.run.dtype == "float32" else 8
    return item * cfg.train.n * cfg.model.m * cfg.model.d


def trial_bytes(cfg: Config) -> int:
    """Bytes per trial of a chunk on any engine: :func:`bytes_per_trial` and the recorded
    trajectories, (T + 1) Hamming distances (int32) and, when recorded, losses (without them a
    huge ``train.steps`` would pass the plan and then fail). An engine's layouts add their own
    share (:class:`stelab.engine_registry.Layout`)."""
    item = 4 if cfg.run.dtype == "float32" else 8
    trajectory = (cfg.train.steps + 1) * (4 + (item if cfg.record.loss_trajectory else 0))
    return bytes_per_trial(cfg) + trajectory


def draws_in_place(cfg: Config) -> bool:
    """Whether the inputs are drawn straight into the data tensor (the distribution has a filler
    and the data are float32): no temporary, and the trials can be drawn in parallel."""
    return get_distribution(cfg.data.distribution).filler is not None and \
        cfg.run.dtype == "float32"


def build_peak_extra(cfg: Config) -> int:
    """Bytes needed once per chunk on top of the trials' share: the raw draw of one trial (its
    sampler may hold two arrays of that size; none where the draw is made in place, see
    :func:`draw_inputs`) and the float64 d x d work of whitening."""
    n, m, d = cfg.train.n, cfg.model.m, cfg.model.d
    whiten = 4 * 8 * d * d if cfg.data.normalization in ("whiten", "batchnorm") else 0
    return (0 if draws_in_place(cfg) else 2 * 4 * n * m * d) + whiten


def cache_bytes_per_trial(cfg: Config) -> int:
    """Column-cache share of one trial in the ``cache`` layout: what is left of half a data
    tensor after the per-trial state (batch-norm covariance, per-row state and temporaries),
    at most CACHE_FRACTION of the data, so that the run stays within 1.5 data tensors."""
    rows = cfg.train.n * cfg.model.m
    data = data_bytes(cfg)
    # per-trial state, twice (its temporaries are about as large), and 40 B per row of
    # decision temporaries; 5% of the data is left for allocator slack
    state = 2 * (bytes_per_trial(cfg) - data) + 40 * rows
    return max(0, min(int(CACHE_FRACTION * data), int(0.45 * data) - state))
