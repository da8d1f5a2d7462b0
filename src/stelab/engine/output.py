"""What an engine returns for a chunk of trials (numpy arrays on the host; no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ChunkOutput"]


@dataclass
class ChunkOutput:
    """What the engine returns for a chunk of trials (numpy, on the host)."""

    hamming: np.ndarray  # (t, T+1) int32: H_0 .. H_T
    ergodic_hamming: np.ndarray  # (t,) Hamming distance of sign(qbar_T) to w*
    final_loss: np.ndarray  # (t,) L(q_T) on the full sample
    loss: np.ndarray | None  # (t, T+1) L(q_0) .. L(q_T), when recorded
    final_u: np.ndarray  # (t, d) latent weights u_T
    ergodic_at: np.ndarray  # (t, K) Hamming of sign(qbar_T') at the checkpoints T'


def final_loss(residual: np.ndarray) -> np.ndarray:
    """L = (1/2n) sum_i res_i^2 per trial, (t,) float64, from float32 residuals (t, n), with
    the float32 rounding of the batched engines' ``0.5 * res.square().mean(dim=1)`` in torch.

    Where every partial sum of the squares is exact in float32 (all squares are multiples of a
    power of two q, the largest that divides each, and their total is at most 2^24 q: residuals
    in {0, +-1, +-2} of labels without noise, say), the sum is the same in any order and the
    value is 0.5 * fl(S / n), computed here. Otherwise torch's summation order decides the last
    bits, so torch computes it (the only import of torch on the trial-wise path, and only then).
    """
    squares = np.square(residual)
    total = squares.sum(axis=1, dtype=np.float64)
    mantissa, exponent = np.frexp(squares)  # squares = mantissa 2^exponent, 0.5 <= mantissa < 1
    whole = np.ldexp(mantissa.astype(np.float64), 24).astype(np.int64)  # 24-bit integers
    low = np.ldexp((whole & -whole).astype(np.float64), exponent.astype(np.int64) - 24)
    unit = np.where(squares > 0, low, np.inf).min(axis=1, initial=np.inf)  # q of each trial
    if np.all(np.isfinite(total) & (total <= 2.0**24 * np.where(total > 0, unit, 1.0))):
        n = np.float32(residual.shape[1])
        return (np.float32(0.5) * (total.astype(np.float32) / n)).astype(np.float64)
    import torch

    loss = 0.5 * torch.from_numpy(np.ascontiguousarray(residual)).square().mean(dim=1)
    return loss.numpy().astype(np.float64)
