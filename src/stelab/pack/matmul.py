"""The matrix products of packed linear layers (and of real x binary conv patches): float32
numpy rows in, float32 numpy rows out, on the compiled kernels of :mod:`stelab.pack.kernels`
(formulas and error bounds there). Small products run on the kernels' one-thread twins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import torch

from stelab.errors import DataError
from stelab.pack import kernels
from stelab.pack.bits import words_for

__all__ = ["SERIAL_MACS", "SERIAL_WORDS", "binary_matmul", "pick", "real_matmul",
           "weight_popcounts"]

#: the one-table-per-row kernel pays 256 sums per 8 inputs and row, the lookups one per 8 weights:
#: it wins while rows * 256 <= outputs (batch 1 on a wide layer); otherwise unpack tiles of signs
_LUT_ROWS_PER_OUTPUT = 1 / 256


#: from this many input rows on, real x binary multiplies unpacked tiles of signs with torch's
#: GEMM (:func:`_real_gemm`); a tile holds about this many float32 signs (4 MB)
_GEMM_ROWS = 16
_GEMM_TILE_FLOATS = 2**20

#: below these amounts of work (word operations; real multiply-adds) a call runs on one thread:
#: waking the other threads costs more than they would save (tens of microseconds)
SERIAL_WORDS = 2**20
SERIAL_MACS = 2**22


def pick(name: str, work: int, limit: int) -> Callable[..., Any]:
    """The kernel ``name`` of :mod:`stelab.pack.kernels` to run ``work``: its one-thread twin
    when ``work < limit`` or numba runs on one thread (no thread pool to launch), else the
    threaded kernel on numba's current thread count."""
    if work < limit or numba.get_num_threads() == 1:
        return kernels.serial[name]
    return getattr(kernels, name)


def binary_matmul(x: np.ndarray, wrows: np.ndarray, k: int, step: bool, layer: str,
                  w_pop: np.ndarray | None = None) -> np.ndarray:
    """(N, K) float32 inputs, binarized (sign, or ``step``) and packed here, times the packed
    signs (O, ceil(K/64)): the exact integer dot products as float32 (N, O). ``w_pop``: the
    weight rows' popcounts (int64 (O,), used by ``step`` inputs; computed here when None)."""
    bits = np.empty((x.shape[0], words_for(k)), dtype=np.uint64)
    out = np.empty((x.shape[0], wrows.shape[0]), dtype=np.float32)
    if step and w_pop is None:
        w_pop = weight_popcounts(wrows)
    work = x.shape[0] * wrows.shape[0] * wrows.shape[1]
    nans = pick("pack_rows", work, SERIAL_WORDS)(x, step, bits)
    if nans:
        raise DataError(f"{layer}: {nans} NaN input value(s) reach a binary layer; a NaN "
                        "has no sign (clean the input, or find where it was produced)")
    pick("binary_gemm", work, SERIAL_WORDS)(bits, wrows, k, step,
                                            _NO_POPS if w_pop is None else w_pop, out)
    return out


#: what sign inputs pass as the (unused) weight popcounts
_NO_POPS = np.zeros(0, dtype=np.int64)


def weight_popcounts(wrows: np.ndarray) -> np.ndarray:
    """popcount of every packed weight row: int64 (O,)."""
    pops = np.empty(wrows.shape[0], dtype=np.int64)
    kernels.row_popcounts(wrows, pops)
    return pops


def real_matmul(x: np.ndarray, wrows: np.ndarray, k: int) -> np.ndarray:
    """(N, K) real inputs times the packed signs (O, ceil(K/64)) -> float32 (N, O)."""
    n, outs = x.shape[0], wrows.shape[0]
    padded = x
    if k % kernels.WORD_BITS:  # the kernels read whole words of inputs: zeros past K
        padded = np.zeros((n, wrows.shape[1] * kernels.WORD_BITS), dtype=np.float32)
        padded[:, :k] = x
    if n >= _GEMM_ROWS:
        return _real_gemm(padded, wrows)
    out = np.empty((n, outs), dtype=np.float32)
    if n <= outs * _LUT_ROWS_PER_OUTPUT:
        wbytes = wrows.view(np.uint8)
        table = _scratch((n, wbytes.shape[1], 256))
        pick("real_binary_lut", n * outs * k, SERIAL_MACS)(padded, wbytes, table, out)
    else:
        pick("real_binary_unpacked", n * outs * k, SERIAL_MACS)(padded, wrows, out)
    return out


def _real_gemm(padded: np.ndarray, wrows: np.ndarray) -> np.ndarray:
    """Many rows: tiles of weight rows unpacked to float32 signs (about 4 MB, in cache) and
    multiplied by torch's float32 GEMM, which blocks for the cache and vectorizes better than
    a compiled loop (real x binary 4096^2 at batch 64 ran at 0.5x float32 on the loop)."""
    n, kp = padded.shape
    outs = wrows.shape[0]
    tile = max(1, min(outs, _GEMM_TILE_FLOATS // kp))
    signs = _scratch((tile, kp))
    xt = torch.from_numpy(padded)
    out = torch.empty((n, outs), dtype=torch.float32)
    for o0 in range(0, outs, tile):
        o1 = min(o0 + tile, outs)
        pick("unpack_signs", (o1 - o0) * kp, SERIAL_MACS)(wrows[o0:o1], signs[:o1 - o0])
        out[:, o0:o1] = xt @ torch.from_numpy(signs[:o1 - o0]).T
    return out.numpy()


_SCRATCH = threading.local()


def _scratch(shape: tuple[int, ...]) -> np.ndarray:
    """A float32 work array of ``shape``, kept per thread: a fresh one of a few hundred kB
    each call costs an mmap and its page faults (measured: as long as the lookups at K = 1024)."""
    size = int(np.prod(shape))
    buffer = getattr(_SCRATCH, "buffer", None)
    if buffer is None or buffer.size < size:
        buffer = _SCRATCH.buffer = np.empty(size, dtype=np.float32)
    return buffer[:size].reshape(shape)
