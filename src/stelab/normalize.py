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
  gradient (batch-norm statistics, no affine part). Statistics are computed in float64.
"""

from __future__ import annotations

import torch

from stelab.errors import ConfigError

Tensor = torch.Tensor
WHITEN_EPS = 1e-6


def _rows(Z: Tensor) -> Tensor:
    t, n, m, d = Z.shape
    return Z.reshape(t, n * m, d).to(torch.float64)


def row_mean(Z: Tensor) -> Tensor:
    """Per-trial mean of the rows, shape (trials, d), float64."""
    return _rows(Z).mean(dim=1)


def row_covariance(Z: Tensor) -> Tensor:
    """Per-trial biased covariance of the rows, shape (trials, d, d), float64."""
    rows = _rows(Z)
    centred = rows - rows.mean(dim=1, keepdim=True)
    return centred.transpose(1, 2) @ centred / rows.shape[1]


def normalize_inputs(Z: Tensor, method: str) -> Tensor:
    """Apply the input part of normalization ``method`` to Z (trials, n, m, d); same dtype."""
    if method == "none":
        return Z
    mu = row_mean(Z)
    centred = Z - mu[:, None, None, :].to(Z.dtype)
    if method in ("center", "batchnorm"):
        return centred
    if method == "standardize":
        sd = _rows(Z).std(dim=1, correction=0)
        sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        return centred / sd[:, None, None, :].to(Z.dtype)
    if method == "whiten":
        return centred @ inverse_sqrt(row_covariance(Z)).to(Z.dtype)[:, None, :, :]
    raise ConfigError(
        f"data.normalization: unknown value {method!r}; "
        "allowed: none, center, standardize, whiten, batchnorm"
    )


def inverse_sqrt(cov: Tensor) -> Tensor:
    """Symmetric Sigma^(-1/2) of a batch of covariances, with eigenvalues floored for stability."""
    eigval, eigvec = torch.linalg.eigh(cov)
    floor = WHITEN_EPS * eigval.mean(dim=-1, keepdim=True).clamp_min(1e-300)
    scale = eigval.clamp_min(0).maximum(floor).rsqrt()
    return (eigvec * scale[..., None, :]) @ eigvec.transpose(-1, -2)
