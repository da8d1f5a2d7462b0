"""Sign bits packed into uint64 words (numpy; the layout of :mod:`stelab.pack.kernels`).

A set bit means -1: bit = 1 iff v < 0, so sign(0) = +1 (the project's convention). Value j of a
sequence is bit j % 64 of word j // 64 (little-endian bit order inside the word); the padding
bits past the end are 0.

Two layouts of the same bits:

* **stream** (in the file): the signs of ``tensor.reshape(-1)`` in C order, one run of
  ceil(n / 64) words, so a layer costs ceil(n / 8) bytes (+ at most 7);
* **rows** (for the kernels): each output row of K values starts a new word,
  ceil(K / 64) words per row, so a row's dot product reads whole words.
"""

from __future__ import annotations

import numpy as np

__all__ = ["words_for", "pack_bits", "pack_stream", "unpack_stream", "stream_to_rows",
           "pack_signs_rows"]

WORD = 64


def words_for(n: int) -> int:
    """ceil(n / 64): the uint64 words that hold n bits."""
    return -(-n // WORD)


def pack_bits(negative: np.ndarray) -> np.ndarray:
    """Bool array (..., n) -> uint64 (..., ceil(n / 64)), bit j of the row = negative[j]."""
    n = negative.shape[-1]
    padded = np.zeros((*negative.shape[:-1], words_for(n) * WORD), dtype=bool)
    padded[..., :n] = negative
    return np.packbits(padded, axis=-1, bitorder="little").view("<u8").astype(np.uint64)


def pack_stream(values: np.ndarray) -> np.ndarray:
    """Signs of all of ``values`` (C order) as one run of uint64 words (bit set iff v < 0)."""
    return pack_bits(np.asarray(values).reshape(-1) < 0)


def unpack_stream(words: np.ndarray, n: int) -> np.ndarray:
    """The n signs (+1 / -1, float32) held by a run of words: the inverse of pack_stream."""
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    bits = np.unpackbits(raw, bitorder="little")[:n]
    return (1.0 - 2.0 * bits).astype(np.float32)


def stream_to_rows(words: np.ndarray, rows: int, k: int) -> np.ndarray:
    """Stream words of a (rows, k) sign matrix -> the row layout (rows, ceil(k / 64))."""
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    bits = np.unpackbits(raw, bitorder="little")[: rows * k].reshape(rows, k)
    return pack_bits(bits.astype(bool))


def pack_signs_rows(matrix: np.ndarray) -> np.ndarray:
    """A (rows, k) real matrix -> the row layout of its signs (bit set iff v < 0)."""
    return pack_bits(np.asarray(matrix) < 0)
