"""The machine's limits that ``stelab bench pack`` measures its kernels against (numba): the
XOR-popcount rate of a core, and a streaming read of a packed weight array."""

from __future__ import annotations

import numba
import numpy as np

from stelab.pack.kernels import popcount

__all__ = ["popcount_probe", "read_probe"]


@numba.njit(cache=True, nogil=True)
def _xor_popcount_rounds(words: np.ndarray, rounds: int) -> int:
    acc = np.uint64(0)
    for r in range(rounds):
        for i in range(words.shape[0]):  # whole rows: LLVM vectorizes this into VPOPCNTQ
            acc += popcount(words[i] ^ np.uint64(r))
    return acc


@numba.njit(cache=True, nogil=True, parallel=True)
def popcount_probe(words: np.ndarray, rounds: int, out: np.ndarray) -> None:
    """XOR-popcount throughput: thread t counts popcount(a XOR r) over its own small,
    L1-resident row ``words[t]`` ``rounds`` times (the compute ceiling of the binary kernel)."""
    for t in numba.prange(words.shape[0]):
        out[t] = _xor_popcount_rounds(words[t], rounds)


@numba.njit(cache=True, nogil=True)
def _xor_reduce(words: np.ndarray) -> int:
    acc = np.uint64(0)
    for i in range(words.shape[0]):
        acc ^= words[i]
    return acc


@numba.njit(cache=True, nogil=True, parallel=True)
def read_probe(words: np.ndarray, chunks: int, out: np.ndarray) -> None:
    """Streaming read of ``words`` split in ``chunks`` parts over the threads (XOR-reduced so
    nothing is optimized away): the memory ceiling of batch-1 layers."""
    per = (words.shape[0] + chunks - 1) // chunks
    for c in numba.prange(chunks):
        out[c] = _xor_reduce(words[c * per:(c + 1) * per])
