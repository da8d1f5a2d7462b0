"""The torch passes over the data that the engines share, written so that their results do not
depend on how the work is split (into chunks, groups of trials, threads (:mod:`stelab.engine.\
workers`), or engines).

Layout: the sample of a chunk is ``Z`` of shape (t, n, m, d), row-major, seen as ``t * n * m``
rows of length d. Two passes read it:

* pre-activations h = Z q (one matrix-vector product per trial). On the CPU it goes through
  numpy's OpenBLAS ``sgemv``, which streams row-major data about twice as fast as MKL's on the
  AMD CPUs we measured; on CUDA it is ``torch.bmm``. Its float rounding depends on the BLAS, so
  the engines never use h directly for a decision close to a threshold: see :func:`gemv_bound`.
* gradient sums G = sum_r c_r Z_r over the rows r with a non-zero coefficient c_r, computed by
  ``embedding_bag(mode="sum", per_sample_weights=c)``: one bag per trial, summed sequentially in
  row order. A sequential sum does not change when rows of coefficient 0 are added or left out
  (x + 0 * z = x exactly), so the dense engine (all rows) and the incremental engine (only the
  rows with c != 0) get bit-identical G, and G of a trial does not depend on the other trials of
  the batch.

Exact decisions. A float32 dot product of d terms with q in {-1, +1}^d has error at most
gamma_d sum_j |Z_rj|, gamma_d = d u / (1 - d u), u = 2^-24, whatever the summation order
(Higham, Accuracy and Stability of Numerical Algorithms, 3.1). Every decision (sign of h, and the
thresholds of the surrogate derivative) is taken from the float32 value when it is farther than
that bound from the threshold, and otherwise from h recomputed in float64 (error ~1e-16
relative): the decision is the one of the exact h, so every engine and device takes it alike.
(The bound assumes float32 arithmetic: on CUDA, TF32 matmuls, which torch leaves off by default
for float32, would break it.)
"""

from __future__ import annotations

import threading

import numpy as np
import torch
import torch.nn.functional as F

from stelab.engine import compiled
from stelab.memory import release_free_memory

Tensor = torch.Tensor

UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float64: 2.0**-53}
#: rows per block when a statistic of a trial is computed (bounds the temporaries)
ROW_BLOCK = 1 << 10


def gemv_bound(Z: Tensor) -> Tensor:
    """Per trial, an upper bound on |h_float - h_exact| for h = Z q in the dtype of Z (t,) float64.

    For float32: gamma_d * max_r sum_j |Z_rj| with gamma_d = d u / (1 - d u), inflated by 1% for
    the rounding of the bound itself. For float64 data the engines take no exact fix-ups (0).
    """
    t, n, m, d = Z.shape
    if Z.dtype == torch.float64:
        return torch.zeros(t, dtype=torch.float64, device=Z.device)
    unit = UNIT_ROUNDOFF[torch.float32]
    gamma = d * unit / (1.0 - d * unit)
    rows = Z.reshape(t, n * m, d)
    worst = torch.zeros(t, dtype=torch.float64, device=Z.device)
    for k in range(t):
        for start in range(0, n * m, ROW_BLOCK):
            block = rows[k, start : start + ROW_BLOCK]
            worst[k] = torch.maximum(worst[k], block.abs().sum(dim=-1, dtype=torch.float64).max())
    release_free_memory()
    return worst * (gamma * 1.01)


def preactivations(
    Z3: Tensor, Znp: np.ndarray | None, q: Tensor, start: int, stop: int,
    out: Tensor | None = None,
) -> Tensor:
    """h = Z q for the trials start..stop-1, shape (stop - start, n*m), dtype of Z.

    ``Z3`` is Z viewed as (t, n*m, d); ``Znp`` the same memory as a numpy array on the CPU
    (None on CUDA). ``out``, when given, is a (stop - start, n*m) CPU tensor to write into.
    """
    if Znp is not None:
        qn = q[start:stop].numpy()[:, :, None]
        if out is None:
            return torch.from_numpy(np.matmul(Znp[start:stop], qn)[:, :, 0])
        np.matmul(Znp[start:stop], qn, out=out.numpy()[:, :, None])
        return out
    h = torch.bmm(Z3[start:stop], q[start:stop, :, None])[:, :, 0]
    if out is not None:
        out.copy_(h)
        return out
    return h


def exact_preactivations(rows: Tensor, q: Tensor) -> Tensor:
    """h = rows . q in float64 (rows (r, d) of the data, q (r, d) the matching weights); on the
    CPU summed in order j = 0..d-1 by :func:`stelab.engine.compiled.exact_rows`, as the compiled
    kernel of the incremental engine does, so both engines write the same values."""
    if rows.device.type != "cpu":
        return (rows.to(torch.float64) * q.to(torch.float64)).sum(dim=-1)
    out = torch.empty(rows.shape[0], dtype=torch.float64)
    if len(out):
        compiled.exact_rows(rows.contiguous().numpy(), q.contiguous().numpy(), out.numpy())
    return out


def gradient_sums(
    rows: Tensor, coeff: Tensor, trials: Tensor | int, rows_per_trial: int,
    row_index: Tensor | None = None,
) -> Tensor:
    """G_k = sum_r coeff[k, r] * Z[trials[k], r] for each k, shape (len(coeff), d), dtype of rows.

    ``rows`` is the whole chunk's data as (t * R, d) with R = ``rows_per_trial`` = n*m;
    ``coeff`` (k, C) the coefficients of the trials ``trials`` (an index tensor, or the first
    trial of a contiguous range). Column c of ``coeff`` is row c of the trial, or row
    ``row_index[k, c]`` when given (a minibatch). Only rows with a non-zero coefficient are read;
    each trial's sum runs over its rows in the order of the columns.
    """
    k, C = coeff.shape
    flat = coeff.reshape(-1)
    nz = torch.nonzero(flat).view(-1)
    starts = torch.arange(k, device=nz.device) * C
    offsets = torch.searchsorted(nz, starts)  # each trial's first entry in nz
    if isinstance(trials, int) and row_index is None and C == rows_per_trial:
        global_rows = nz + trials * rows_per_trial
    else:
        local = torch.div(nz, C, rounding_mode="floor")
        within = nz - local * C if row_index is None else row_index.reshape(-1)[nz]
        trial_of = local + trials if isinstance(trials, int) else trials.to(nz.device)[local]
        global_rows = trial_of * rows_per_trial + within
    return bag_sums(rows, global_rows, offsets, flat[nz])


def bag_sums(rows: Tensor, row_ids: Tensor, offsets: Tensor, weights: Tensor) -> Tensor:
    """sum_i weights[i] * rows[row_ids[i]] within each bag (bag b starts at offsets[b]), summed
    sequentially in the order given: the canonical gradient sums of both engines, (bags, d)."""
    return F.embedding_bag(row_ids, rows, offsets, mode="sum", per_sample_weights=weights)


def bag_range_sums(rows: Tensor, bag_rows: Tensor, bag_weights: Tensor, offsets: Tensor,
                   first: int, last: int) -> Tensor:
    """:func:`bag_sums` of bags first..last-1 of the bags a compiled kernel wrote (entries
    offsets[b] to offsets[b+1] of ``bag_rows`` and ``bag_weights`` are bag b), (last - first, d)."""
    lo, hi = int(offsets[first]), int(offsets[last])
    return bag_sums(rows, bag_rows[lo:hi], offsets[first:last] - lo, bag_weights[lo:hi])


class BagBuffers:
    """Per thread, the buffers the compiled kernels write the gradient bags into (rows,
    coefficients, offsets; :func:`bag_sums` sums them), kept between steps: fresh buffers of a
    few MB a call would be new pages to fault in every step."""

    def __init__(self, rows_per_trial: int, dtype: torch.dtype) -> None:
        self._rows_per_trial = rows_per_trial
        self._dtype = dtype
        self._local = threading.local()

    def get(self, trials: int) -> tuple[Tensor, Tensor, Tensor]:
        """(rows, coefficients, offsets) with room for ``trials`` trials."""
        size = trials * self._rows_per_trial
        held = getattr(self._local, "buffers", None)
        if held is None or len(held[0]) < size or len(held[2]) < trials + 1:
            held = (torch.empty(size, dtype=torch.long), torch.empty(size, dtype=self._dtype),
                    torch.empty(trials + 1, dtype=torch.long))
            self._local.buffers = held
        return held[0][:size], held[1][:size], held[2][: trials + 1]
