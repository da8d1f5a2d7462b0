"""Input normalization: a layer of the network, shared by teacher and student, whose statistics
are those of the training sample.

Inputs come batched over trials as ``Z`` of shape (trials, n, m, d); the statistics of a trial
pool its n * m rows (every hidden unit sees inputs of the same law). With mu the row mean and
Sigma the (biased) row covariance of the training sample:

* ``none``        : x
* ``center``      : x - mu
* ``standardize`` : (x - mu) / sd, sd_i = sqrt(Sigma_ii) (features of zero spread are only centred)
* ``whiten``      : (x - mu) Sigma^(-1/2)  (ZCA; eigenvalues below eps * mean eigenvalue are
  floored at that value, so n < d stays defined)
* ``batchnorm``   : x - mu here; the model then also divides each pre-activation h = (x - mu) q by
  its training-sample standard deviation sqrt(q^T Sigma q), treated as a constant in the coarse
  gradient (batch-norm statistics, no affine part).

Statistics are accumulated in float64 one trial and one block of rows at a time, and
:func:`normalize_inputs_` rewrites Z in place, so normalizing needs no second copy of the data
(the float64 temporaries are one block of rows and d x d matrices).
"""

from __future__ import annotations

import torch

from stelab.config import NORMALIZATIONS
from stelab.errors import ConfigError
from stelab.memory import release_free_memory

Tensor = torch.Tensor
WHITEN_EPS = 1e-6
#: rows per block of the float64 statistics and of the in-place whitening product
ROW_BLOCK = 1 << 10


def _trial_rows(Z: Tensor, k: int) -> Tensor:
    t, n, m, d = Z.shape
    return Z[k].reshape(n * m, d)


def _blocks(rows: Tensor) -> list[Tensor]:
    return [rows[a : a + ROW_BLOCK] for a in range(0, rows.shape[0], ROW_BLOCK)]


def _trial_mean(rows: Tensor) -> Tensor:
    total = torch.zeros(rows.shape[1], dtype=torch.float64, device=rows.device)
    for block in _blocks(rows):
        total += block.sum(dim=0, dtype=torch.float64)
    return total / rows.shape[0]


def _trial_covariance(rows: Tensor, mu: Tensor) -> Tensor:
    d = rows.shape[1]
    cov = torch.zeros((d, d), dtype=torch.float64, device=rows.device)
    for block in _blocks(rows):
        centred = block.to(torch.float64) - mu
        cov += centred.T @ centred
    return cov / rows.shape[0]


def _trial_variance(rows: Tensor, mu: Tensor) -> Tensor:
    var = torch.zeros(rows.shape[1], dtype=torch.float64, device=rows.device)
    for block in _blocks(rows):
        var += (block.to(torch.float64) - mu).square().sum(dim=0)
    return var / rows.shape[0]


def row_covariance(Z: Tensor) -> Tensor:
    """Per-trial biased covariance of the rows, shape (trials, d, d), float64."""
    covs = []
    for k in range(Z.shape[0]):
        rows = _trial_rows(Z, k)
        covs.append(_trial_covariance(rows, _trial_mean(rows)))
    return torch.stack(covs)


def normalize_inputs_(Z: Tensor, method: str) -> Tensor | None:
    """Apply the input part of normalization ``method`` to Z (trials, n, m, d) in place.

    Returns the per-trial row covariance (trials, d, d) float64 for ``batchnorm`` (the model's
    pre-activation scale needs it), else None.
    """
    if method not in NORMALIZATIONS:
        raise ConfigError(
            f"data.normalization: unknown value {method!r}; allowed: {', '.join(NORMALIZATIONS)}"
        )
    if method == "none":
        return None
    covariances = []
    for k in range(Z.shape[0]):
        rows = _trial_rows(Z, k)
        mu = _trial_mean(rows)
        if method in ("whiten", "batchnorm"):
            cov = _trial_covariance(rows, mu)
        elif method == "standardize":
            sd = _trial_variance(rows, mu).sqrt()
            sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        rows.sub_(mu.to(Z.dtype))
        if method == "standardize":
            rows.div_(sd.to(Z.dtype))
        elif method == "whiten":
            W = inverse_sqrt(cov).to(Z.dtype)
            for block in _blocks(rows):
                block.copy_(block @ W)
        elif method == "batchnorm":
            covariances.append(cov)
        release_free_memory()  # the float64 blocks of this trial
    return torch.stack(covariances) if method == "batchnorm" else None


def normalize_inputs(Z: Tensor, method: str) -> Tensor:
    """Apply the input part of normalization ``method`` to a copy of Z; ``none`` returns Z."""
    if method == "none":
        normalize_inputs_(Z, method)
        return Z
    out = Z.clone()
    normalize_inputs_(out, method)
    return out


def inverse_sqrt(cov: Tensor) -> Tensor:
    """Symmetric Sigma^(-1/2) of a batch of covariances, with eigenvalues floored for stability."""
    eigval, eigvec = torch.linalg.eigh(cov)
    floor = WHITEN_EPS * eigval.mean(dim=-1, keepdim=True).clamp_min(1e-300)
    scale = eigval.clamp_min(0).maximum(floor).rsqrt()
    return (eigvec * scale[..., None, :]) @ eigvec.transpose(-1, -2)
