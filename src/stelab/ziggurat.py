"""numpy's float32 standard normals, compiled: the same values from the same stream, ~4x faster.

Every Gaussian input of a run is drawn as ``Generator.standard_normal(dtype=float32)`` on the
trial's PCG64 stream (:mod:`stelab.seeds`), and at paper scale the draw is a large share of a
run: numpy spends ~8 ns a value here (a call per value into its ziggurat), the engine a few
passes over the same data. :func:`fill_standard_normal32` runs numpy's own algorithm in one
compiled loop and gives the identical values and leaves the generator in the identical state:

* the bits: PCG64 (numpy's ``PCG64``: 128-bit LCG state s <- s * M + inc mod 2^128 with
  numpy's multiplier M, output XSL-RR: rotr64(hi(s) ^ lo(s), hi(s) >> 58)); numpy splits each
  64-bit output into two uint32, the low half first, the high half kept for the next call
  (``has_uint32``/``uinteger`` in its state), and so does this loop;
* the values: numpy's float32 ziggurat (256 boxes). From one uint32 r: idx = r & 0xff, sign =
  bit 8, a = r >> 9 (23 bits), x = float32(a) * w[idx], negated when sign is set; accepted when
  a < k[idx] (~99% of draws). Else, for idx > 0, accepted when
  float32((f[idx-1] - f[idx]) * u + f[idx]) < exp(-0.5 x^2) (in float64) with
  u = (next uint32 >> 8) 2^-24, or the draw starts over; for idx = 0 the tail: xx = -log1p(-u1)
  / r and yy = -log1p(-u2) (float32) until 2 yy > xx^2, x = +-(r + xx), the sign from bit 17
  of r. The tables (k, w, f) and the constants r, 1/r are numpy's, as numba ships them.

Guard: the first call checks the compiled loop against numpy itself (values and the state after
them, on a stream long enough to take the wedge and the tail paths); where they differ, e.g. a
numpy whose ziggurat changed, every call uses numpy's own ``standard_normal``. Generators other
than PCG64 always do. So the values are numpy's either way; only the speed differs.
"""

from __future__ import annotations

import math
from functools import cache

import numba
import numpy as np

__all__ = ["fill_standard_normal32", "standard_normal32", "compiled_matches_numpy"]

U64 = np.uint64
LOW32 = U64(0xFFFFFFFF)
#: numpy's PCG64 multiplier (the PCG default 128-bit multiplier), as (high, low) 64-bit halves
MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645
MULT_HI, MULT_LO = U64(MULTIPLIER >> 64), U64(MULTIPLIER & (2**64 - 1))
#: values drawn by the first call's check against numpy (~960 take the wedge path, ~16 the tail:
#: 1.5% and 0.025% of draws)
CHECK_VALUES = 1 << 16

_jit = numba.njit(nogil=True, cache=True)
_inline = numba.njit(nogil=True, cache=True, inline="always")


@_inline
def _mul_hi(a, b):  # noqa: ANN001, ANN202
    """The high 64 bits of the 128-bit product of two uint64 (from 32-bit halves)."""
    a0, a1 = a & LOW32, a >> U64(32)
    b0, b1 = b & LOW32, b >> U64(32)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    middle = (p00 >> U64(32)) + (p01 & LOW32) + (p10 & LOW32)
    return p11 + (p01 >> U64(32)) + (p10 >> U64(32)) + (middle >> U64(32))


@_inline
def _next64(state):  # noqa: ANN001, ANN202
    """Advance the PCG64 state (state[0], state[1]) = (high, low) and return its output."""
    hi, lo, inc_hi, inc_lo = state[0], state[1], state[2], state[3]
    product_lo = lo * MULT_LO
    product_hi = _mul_hi(lo, MULT_LO) + lo * MULT_HI + hi * MULT_LO
    new_lo = product_lo + inc_lo
    new_hi = product_hi + inc_hi + (U64(1) if new_lo < product_lo else U64(0))
    state[0], state[1] = new_hi, new_lo
    rotation = new_hi >> U64(58)
    value = new_hi ^ new_lo
    return (value >> rotation) | (value << ((U64(64) - rotation) & U64(63)))


@_inline
def _next32(state):  # noqa: ANN001, ANN202
    """numpy's next_uint32 of PCG64: the kept high half if there is one, else a new output's
    low half (its high half kept in state[5], state[4] = 1)."""
    if state[4]:
        state[4] = U64(0)
        return state[5]
    value = _next64(state)
    state[4], state[5] = U64(1), value >> U64(32)
    return value & LOW32


@_inline
def _next_float(state):  # noqa: ANN001, ANN202
    """numpy's next_float: (next uint32 >> 8) * 2^-24 in float32."""
    return np.float32(_next32(state) >> U64(8)) * np.float32(1.0 / 16777216.0)


@_jit
def _ziggurat_fill(state, out, k, w, f, tail_r, tail_inv_r):  # noqa: ANN001, ANN202
    """out[:] = standard normals of numpy's float32 ziggurat (module docstring); ``state``
    (6,) uint64: state high, low, increment high, low, has_uint32, uinteger, updated."""
    local = state.copy()  # the loop works on a local copy (kept in registers)
    for i in range(out.shape[0]):
        while True:
            r = _next32(local)
            idx = r & U64(0xFF)
            a = (r >> U64(9)) & U64(0x7FFFFF)
            x = np.float32(a) * w[idx]
            if (r >> U64(8)) & U64(1):
                x = -x
            if a < k[idx]:
                break
            if idx == 0:
                while True:
                    xx = -tail_inv_r * math.log1p(-_next_float(local))
                    yy = -math.log1p(-_next_float(local))
                    if yy + yy > xx * xx:
                        break
                x = -(tail_r + xx) if (a >> U64(8)) & U64(1) else tail_r + xx
                break
            u = _next_float(local)
            if (f[idx - 1] - f[idx]) * u + f[idx] < math.exp(-0.5 * np.float64(x) * np.float64(x)):
                break
        out[i] = x
    state[:] = local


@cache
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.float32, np.float32] | None:
    """numpy's float32 ziggurat tables and tail constants (numba's copy), or None."""
    try:
        from numba.np.random import _constants as c
    except ImportError:  # pragma: no cover - a numba without them: numpy draws
        return None
    return (np.ascontiguousarray(c.ki_float, dtype=np.uint32),
            np.ascontiguousarray(c.wi_float, dtype=np.float32),
            np.ascontiguousarray(c.fi_float, dtype=np.float32),
            np.float32(c.ziggurat_nor_r_f), np.float32(c.ziggurat_nor_inv_r_f))


def _packed_state(generator: np.random.Generator) -> np.ndarray:
    state = generator.bit_generator.state
    s, inc = state["state"]["state"], state["state"]["inc"]
    mask = 2**64 - 1
    return np.array([s >> 64, s & mask, inc >> 64, inc & mask, state["has_uint32"],
                     state["uinteger"]], dtype=np.uint64)


def _store_state(generator: np.random.Generator, packed: np.ndarray) -> None:
    state = generator.bit_generator.state
    state["state"]["state"] = int(packed[0]) << 64 | int(packed[1])
    state["has_uint32"], state["uinteger"] = int(packed[4]), int(packed[5])
    generator.bit_generator.state = state


def _compiled_fill(generator: np.random.Generator, out: np.ndarray) -> None:
    tables = _tables()
    assert tables is not None
    packed = _packed_state(generator)
    _ziggurat_fill(packed, out.reshape(-1), *tables)
    _store_state(generator, packed)


@cache
def compiled_matches_numpy() -> bool:
    """Whether the compiled loop gives numpy's values and leaves numpy's state (checked once
    per process on CHECK_VALUES values of a fixed stream)."""
    if _tables() is None:
        return False
    ours = np.random.Generator(np.random.PCG64(20260527))
    theirs = np.random.Generator(np.random.PCG64(20260527))
    values = np.empty(CHECK_VALUES, dtype=np.float32)
    _compiled_fill(ours, values)
    expected = theirs.standard_normal(CHECK_VALUES, dtype=np.float32)
    return bool(np.array_equal(values, expected)) and \
        ours.bit_generator.state == theirs.bit_generator.state


def fill_standard_normal32(generator: np.random.Generator, out: np.ndarray) -> None:
    """Fill the contiguous float32 array ``out`` with ``generator.standard_normal(out.shape,
    dtype=np.float32)``'s values, leaving the generator where that call would leave it."""
    if out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError("out: expected a C-contiguous float32 array")
    if isinstance(generator.bit_generator, np.random.PCG64) and compiled_matches_numpy():
        _compiled_fill(generator, out)
    else:
        generator.standard_normal(dtype=np.float32, out=out)


def standard_normal32(generator: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """``generator.standard_normal(shape, dtype=np.float32)``, drawn by
    :func:`fill_standard_normal32`."""
    out = np.empty(shape, dtype=np.float32)
    fill_standard_normal32(generator, out)
    return out
