"""Compiled CPU kernels (numba) of packed 1-bit inference.

Bit layout (the one of :mod:`stelab.pack.bits`): a row of K binary values is ceil(K / 64) uint64
words; value j is bit j % 64 of word j // 64, and a set bit means -1 (sign(v) = -1 iff v < 0,
so sign(0) = +1). The padding bits past K are 0 in inputs and weights alike, so they never count
as a mismatch and need no correction.

Binary x binary (``sign`` inputs, x and w in {-1, +1}^K):

    x . w = K - 2 popcount(x XOR w)

Binary conv2d packs the channels of each pixel (per group) into words and sums over the
kernel positions; a position in the zero padding (the float model pads the quantized input
with 0, a third value) is skipped, so with v positions inside the image and C channels

    x . w = v C - 2 popcount(x XOR w)

``step`` inputs (x in {0, 1}^K, bit set iff x = 1) with sign weights:

    x . w = popcount(x) - 2 popcount(x AND w) = popcount(x XOR w) - popcount(w)

(the linear kernel uses the second form, with the weight rows' counts computed once).

All three are integer sums, exact in float32 up to 2^24.

Real x binary (x real, w in {-1, +1}^K): sum_j s_j x_j with s_j = 1 - 2 bit_j. Batch 1 (few rows):
one table per row of the 256 signed sums of each group of 8 inputs, then one lookup per 8
weights; more rows: tiles of weight rows unpacked to float signs in cache and reused for every
row. Either way a sum of the K terms in some order (fast-math on these two kernels only): the
error of such a sum is at most (K - 1) u sum_j |x_j| (u = 2^-24), and so is that of torch's
own float32 dot, hence

    |packed - torch| <= 2 (K - 1) u sum_j |x_j|           (+ one rounding of the bias)

Threads: the output is cut into tiles (blocks of weight rows, or of rows of x and w) that
``prange`` spreads over numba's threads (``numba.set_num_threads``). numba compiles for the
host CPU, so the popcount of a vector of words becomes VPOPCNTQ where the CPU has AVX-512
VPOPCNTDQ. ``cache=True`` keeps the machine code on disk: a process pays the compilation once
per machine.
"""

from __future__ import annotations

import types as pytypes
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = [
    "WORD_BITS", "popcount", "pack_rows", "binary_gemm", "row_popcounts", "pack_pixels",
    "binary_conv2d", "real_binary_lut", "real_binary_unpacked", "unpack_signs", "serial",
]

WORD_BITS = 64

_jit = numba.njit(cache=True, nogil=True)
_par = numba.njit(cache=True, nogil=True, parallel=True)
# inlined into the caller by numba: a call passes every array as ~7 values, which costs as much
# as a block's work
_inline = numba.njit(cache=True, nogil=True, inline="always")
# fast-math lets LLVM reorder the float sums of the real x binary kernel (bound above)
_par_fast = numba.njit(cache=True, nogil=True, parallel=True, fastmath=True)


@intrinsic
def popcount(typingctx, x):  # type: ignore[no-untyped-def]
    """Number of set bits of a uint64 (LLVM's ctpop: POPCNT, VPOPCNTQ when vectorized)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return types.uint64(types.uint64), codegen


# --------------------------------------------------------------------------- packing on the fly
@_par
def pack_rows(x: np.ndarray, step: bool, out: np.ndarray) -> int:
    """Pack the binarized rows of ``x`` (B, K) float32 into ``out`` (B, ceil(K/64)) uint64:
    bit set iff x < 0 (sign inputs) or iff x > 0 (``step`` inputs). Returns the number of NaN
    entries (the caller refuses them: a NaN has no sign). A whole word is 64 compares with
    constant shifts, which LLVM vectorizes (6x the variable-shift loop at K = 4096)."""
    rows, k = x.shape
    words = out.shape[1]
    full = k // WORD_BITS
    nans = 0
    for r in numba.prange(rows):
        xr = x[r]
        bad = 0
        for j in range(k):
            bad += xr[j] != xr[j]
        for w in range(words):
            start = w * WORD_BITS
            word = np.uint64(0)
            if w < full and step:
                for j in range(WORD_BITS):
                    word |= np.uint64(xr[start + j] > 0) << np.uint64(j)
            elif w < full:
                for j in range(WORD_BITS):
                    word |= np.uint64(xr[start + j] < 0) << np.uint64(j)
            else:  # the last, partial word
                for j in range(start, k):
                    bit = (xr[j] > 0) if step else (xr[j] < 0)
                    word |= np.uint64(bit) << np.uint64(j - start)
            out[r, w] = word
        nans += bad
    return nans


# --------------------------------------------------------------------------- binary x binary
@_inline
def _dot(w_pop: np.ndarray, o: int, k: int, step: bool, count: np.uint64) -> np.int64:
    """x . w_o from c = popcount(x XOR w_o): K - 2 c (sign inputs) or c - popcount(w_o)
    (``step`` inputs: popcount(x AND w) = (popcount(x) + popcount(w) - c) / 2)."""
    return np.int64(count) - w_pop[o] if step else np.int64(k) - 2 * np.int64(count)


@_inline
def _block_4x4(xb: np.ndarray, wb: np.ndarray, b: int, o: int, k: int, step: bool,
               w_pop: np.ndarray, out: np.ndarray) -> None:
    """out[b:b+4, o:o+4]: 16 counts in registers, each loaded word used 4 times; LLVM
    vectorizes the loop over the words (8 per AVX-512 register) with 16 vector sums."""
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = np.uint64(0)
    a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = np.uint64(0)
    for w in range(xb.shape[1]):
        x0, x1, x2, x3 = xb[b, w], xb[b + 1, w], xb[b + 2, w], xb[b + 3, w]
        w0, w1, w2, w3 = wb[o, w], wb[o + 1, w], wb[o + 2, w], wb[o + 3, w]
        a00 += popcount(x0 ^ w0)
        a01 += popcount(x0 ^ w1)
        a02 += popcount(x0 ^ w2)
        a03 += popcount(x0 ^ w3)
        a10 += popcount(x1 ^ w0)
        a11 += popcount(x1 ^ w1)
        a12 += popcount(x1 ^ w2)
        a13 += popcount(x1 ^ w3)
        a20 += popcount(x2 ^ w0)
        a21 += popcount(x2 ^ w1)
        a22 += popcount(x2 ^ w2)
        a23 += popcount(x2 ^ w3)
        a30 += popcount(x3 ^ w0)
        a31 += popcount(x3 ^ w1)
        a32 += popcount(x3 ^ w2)
        a33 += popcount(x3 ^ w3)
    # x . w = off_o + scale c: straight-line stores (a loop over a tuple of the sums costs
    # ~20% at K = 4096)
    scale = np.int64(1) if step else np.int64(-2)
    f0, f1 = _offset(w_pop, o, k, step), _offset(w_pop, o + 1, k, step)
    f2, f3 = _offset(w_pop, o + 2, k, step), _offset(w_pop, o + 3, k, step)
    out[b, o], out[b, o + 1] = f0 + scale * np.int64(a00), f1 + scale * np.int64(a01)
    out[b, o + 2], out[b, o + 3] = f2 + scale * np.int64(a02), f3 + scale * np.int64(a03)
    out[b + 1, o], out[b + 1, o + 1] = f0 + scale * np.int64(a10), f1 + scale * np.int64(a11)
    out[b + 1, o + 2], out[b + 1, o + 3] = f2 + scale * np.int64(a12), f3 + scale * np.int64(a13)
    out[b + 2, o], out[b + 2, o + 1] = f0 + scale * np.int64(a20), f1 + scale * np.int64(a21)
    out[b + 2, o + 2], out[b + 2, o + 3] = f2 + scale * np.int64(a22), f3 + scale * np.int64(a23)
    out[b + 3, o], out[b + 3, o + 1] = f0 + scale * np.int64(a30), f1 + scale * np.int64(a31)
    out[b + 3, o + 2], out[b + 3, o + 3] = f2 + scale * np.int64(a32), f3 + scale * np.int64(a33)


@_inline
def _offset(w_pop: np.ndarray, o: int, k: int, step: bool) -> np.int64:
    """x . w_o = offset + scale c (c = popcount(x XOR w_o)): K, scale -2 (sign inputs), or
    -popcount(w_o), scale +1 (``step`` inputs)."""
    return -w_pop[o] if step else np.int64(k)


@_par
def binary_gemm(
    xb: np.ndarray, wb: np.ndarray, k: int, step: bool, w_pop: np.ndarray, out: np.ndarray
) -> None:
    """out[b, o] = x_b . w_o from packed rows and c = popcount(x_b XOR w_o): K - 2 c (sign
    inputs) or c - popcount(w_o) (``step`` inputs; ``w_pop[o]`` = popcount(w_o), from
    :func:`row_popcounts`), so both run the same XOR loop.

    Blocks of 4 weight rows are spread over the threads; each block meets every input row
    while its words are in L1 (the weights stream from memory once), 4 input rows at a time
    (:func:`_block_4x4`); the rows left over (all of them at batch 1, where one count per
    weight row streams the weights best) one weight row at a time."""
    rows, words = xb.shape
    outs = wb.shape[0]
    if rows < 4:
        for o in numba.prange(outs):
            for r in range(rows):
                acc = np.uint64(0)
                for w in range(words):
                    acc += popcount(xb[r, w] ^ wb[o, w])
                out[r, o] = _dot(w_pop, o, k, step, acc)
    else:
        for t in numba.prange((outs + 3) // 4):
            o = 4 * t
            b = 0
            if o + 4 <= outs:
                while b + 4 <= rows:
                    _block_4x4(xb, wb, b, o, k, step, w_pop, out)
                    b += 4
            for oo in range(o, min(o + 4, outs)):
                _rows_by_one(xb, wb, oo, b, k, step, w_pop, out)


@_inline
def _rows_by_one(xb: np.ndarray, wb: np.ndarray, o: int, first: int, k: int, step: bool,
                 w_pop: np.ndarray, out: np.ndarray) -> None:
    """out[first:, o], one count at a time."""
    for r in range(first, xb.shape[0]):
        acc = np.uint64(0)
        for w in range(xb.shape[1]):
            acc += popcount(xb[r, w] ^ wb[o, w])
        out[r, o] = _dot(w_pop, o, k, step, acc)


@_jit
def row_popcounts(xb: np.ndarray, out: np.ndarray) -> None:
    """out[r] = number of set bits of packed row r."""
    for r in range(xb.shape[0]):
        total = np.int64(0)
        for w in range(xb.shape[1]):
            total += np.int64(popcount(xb[r, w]))
        out[r] = total


# --------------------------------------------------------------------------- binary conv2d
@_par
def pack_pixels(x: np.ndarray, groups: int, step: bool, out: np.ndarray) -> int:
    """Pack the binarized channels of every pixel: ``x`` (B, C, H, W) float32 -> ``out``
    (B, H, W, groups, words) uint64, the channels of a group in words (bit c % 64 of word
    c // 64; bit set iff x < 0, or x > 0 for ``step``). Returns the number of NaN inputs."""
    batch, channels, height, width = x.shape
    per_group = channels // groups
    nans = 0
    for t in numba.prange(batch * height):
        b = t // height
        y = t % height
        out[b, y] = 0
        bad = 0
        for c in range(channels):
            g = c // per_group
            w = (c % per_group) // WORD_BITS
            shift = np.uint64((c % per_group) % WORD_BITS)
            for col in range(width):
                v = x[b, c, y, col]
                bad += v != v
                bit = (v > 0) if step else (v < 0)
                out[b, y, col, g, w] |= np.uint64(bit) << shift
        nans += bad
    return nans


@_par
def binary_conv2d(
    xb: np.ndarray, wt: np.ndarray, per_group: int, stride: tuple, padding: tuple,
    dilation: tuple, step: bool, out: np.ndarray,
) -> None:
    """Binary x binary conv2d on packed pixels. ``xb`` (B, H, W, G, words) from
    :func:`pack_pixels`; ``wt`` (G, kh, kw, words, O/G): the weights' signs, the output channels
    last so the count over them vectorizes; ``out`` (B, O, Ho, Wo). A kernel position that
    falls in the zero padding is skipped (the float model's 0 adds nothing), so with v valid
    positions out = v * C/G - 2 popcount(x XOR w) (sign) or popcount(x) - 2 popcount(x AND w)
    (step). ``padding`` = (top, left)."""
    batch, height, width, groups, words = xb.shape
    _, kh, kw, _, og = wt.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for t in numba.prange(batch * out_h):
        b = t // out_h
        oy = t % out_h
        acc = np.empty(og, np.int64)
        for ox in range(out_w):
            for g in range(groups):
                acc[:] = 0
                valid = 0
                ones = 0
                for ky in range(kh):
                    iy = oy * stride[0] - padding[0] + ky * dilation[0]
                    if iy < 0 or iy >= height:
                        continue
                    for kx in range(kw):
                        ix = ox * stride[1] - padding[1] + kx * dilation[1]
                        if ix < 0 or ix >= width:
                            continue
                        valid += 1
                        for w in range(words):
                            xw = xb[b, iy, ix, g, w]
                            ones += np.int64(popcount(xw))
                            row = wt[g, ky, kx, w]
                            if step:
                                for o in range(og):  # vectorized over output channels
                                    acc[o] += np.int64(popcount(xw & row[o]))
                            else:
                                for o in range(og):
                                    acc[o] += np.int64(popcount(xw ^ row[o]))
                base = ones if step else valid * per_group
                for o in range(og):
                    out[b, g * og + o, oy, ox] = base - 2 * acc[o]


# --------------------------------------------------------------------------- real x binary
@_par
def real_binary_lut(x: np.ndarray, wbytes: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """out[b, o] = sum_j x[b, j] s_oj for few rows of x (batch 1): per row, a table of the 256
    signed sums of each group of 8 inputs, T[g, v] = sum_i (-1)^(bit i of v) x[8g + i], built
    term by term; then out[b, o] = sum_g T[g, byte g of row o]: one lookup per 8 weights, and
    the weights are read as bytes, 1 bit each. ``x`` (B, 8 * groups), zero past K;
    ``wbytes`` (O, groups) uint8; ``table`` (B, groups, 256) float32 scratch.

    The lookups run over blocks of :data:`_LUT_GROUPS` groups (a 16 kB slice of the table,
    in L1) for 8 outputs at once: 8 independent sums, where one sum at a time waits on each
    add (1.3-1.5x at K = 1024, measured)."""
    rows = x.shape[0]
    outs, groups = wbytes.shape
    for b in range(rows):
        for g in numba.prange(groups):
            t = table[b, g]
            t[0] = np.float32(0.0)
            size = 1
            for i in range(8):  # extend the sums of bits 0..i-1 by +x_i (bit clear) or -x_i
                xi = x[b, 8 * g + i]
                for v in range(size):
                    t[v + size] = t[v] - xi
                    t[v] = t[v] + xi
                size *= 2
    out[:] = 0
    for tt in numba.prange((outs + _TILE_LUT - 1) // _TILE_LUT):
        last = min(outs, (tt + 1) * _TILE_LUT)
        for b in range(rows):
            for g0 in range(0, groups, _LUT_GROUPS):
                tb = table[b, g0:min(g0 + _LUT_GROUPS, groups)]
                o = tt * _TILE_LUT
                while o + 8 <= last:
                    _lookups_8(tb, wbytes[o:o + 8, g0:], out[b, o:o + 8])
                    o += 8
                for r in range(o, last):
                    acc = np.float32(0.0)
                    for g in range(tb.shape[0]):
                        acc += tb[g, wbytes[r, g0 + g]]
                    out[b, r] += acc


@_inline
def _lookups_8(tb: np.ndarray, wbytes: np.ndarray, out: np.ndarray) -> None:
    """out[i] += sum_g tb[g, wbytes[i, g]] for 8 weight rows i: 8 independent sums."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = np.float32(0.0)
    for g in range(tb.shape[0]):
        t = tb[g]
        a0 += t[wbytes[0, g]]
        a1 += t[wbytes[1, g]]
        a2 += t[wbytes[2, g]]
        a3 += t[wbytes[3, g]]
        a4 += t[wbytes[4, g]]
        a5 += t[wbytes[5, g]]
        a6 += t[wbytes[6, g]]
        a7 += t[wbytes[7, g]]
    out[0] += a0
    out[1] += a1
    out[2] += a2
    out[3] += a3
    out[4] += a4
    out[5] += a5
    out[6] += a6
    out[7] += a7


_TILE_LUT = 256  # outputs per thread's tile
_LUT_GROUPS = 16  # table groups per block: 16 x 256 float32 = 16 kB
_TILE_O = 16  # weight rows unpacked per tile (in L1 while every row of x passes)


@_par_fast
def real_binary_unpacked(x: np.ndarray, wb: np.ndarray, out: np.ndarray) -> None:
    """out[b, o] = sum_j x[b, j] s_oj for many rows of x: each thread unpacks a tile of 16
    weight rows to float32 signs (in cache) and reuses them for every row of x.
    ``x`` (B, 64 * words), zero past K."""
    rows, kp = x.shape
    outs, words = wb.shape
    tiles = (outs + _TILE_O - 1) // _TILE_O
    for t in numba.prange(tiles):
        o0 = t * _TILE_O
        o1 = min(o0 + _TILE_O, outs)
        buf = np.empty((_TILE_O, kp), np.float32)
        for o in range(o0, o1):
            for w in range(words):
                word = wb[o, w]
                for j in range(WORD_BITS):
                    bit = np.float32((word >> np.uint64(j)) & np.uint64(1))
                    buf[o - o0, WORD_BITS * w + j] = np.float32(1.0) - np.float32(2.0) * bit
        for b in range(rows):
            for o in range(o0, o1):
                acc = np.float32(0.0)
                for j in range(kp):
                    acc += x[b, j] * buf[o - o0, j]
                out[b, o] = acc


@_par
def unpack_signs(wb: np.ndarray, out: np.ndarray) -> None:
    """Packed sign rows (R, words) -> float32 signs ``out`` (R, 64 * words): -1 where the bit
    is set, +1 elsewhere (past K the bits are 0: +1, to be multiplied by zero inputs)."""
    rows, words = wb.shape
    for r in numba.prange(rows):
        for w in range(words):
            word = wb[r, w]
            for j in range(WORD_BITS):
                bit = np.float32((word >> np.uint64(j)) & np.uint64(1))
                out[r, WORD_BITS * w + j] = np.float32(1.0) - np.float32(2.0) * bit


# --------------------------------------------------------------------------- one-thread twins
def _serial_twin(kernel: Any) -> Callable[..., Any]:
    """``kernel`` compiled without threads (its ``prange`` runs as ``range``), same options
    otherwise: a small call skips the thread pool's launch (~5 us a kernel, measured at
    64 x 64). A renamed copy of the function, so that the two keep apart in numba's cache."""
    fn = kernel.py_func
    twin = pytypes.FunctionType(fn.__code__, fn.__globals__, f"{fn.__name__}_serial",
                                fn.__defaults__, fn.__closure__)
    twin.__qualname__ = f"{fn.__qualname__}_serial"
    twin.__doc__ = fn.__doc__
    options = {key: value for key, value in kernel.targetoptions.items()
               if key in ("nogil", "fastmath")}
    return numba.njit(cache=True, **options)(twin)


#: the threaded kernels' one-thread twins, by the kernel's name
serial: dict[str, Callable[..., Any]] = {
    kernel.__name__: _serial_twin(kernel)
    for kernel in (pack_rows, binary_gemm, pack_pixels, binary_conv2d, real_binary_lut,
                   real_binary_unpacked, unpack_signs)
}
