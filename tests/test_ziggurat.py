"""The compiled float32 normals are numpy's: same values, same generator state afterwards, on
long streams and at every box's acceptance boundary of the ziggurat."""

from __future__ import annotations

import numpy as np
import pytest

from stelab.seeds import trial_rng
from stelab.ziggurat import (
    MULTIPLIER,
    compiled_matches_numpy,
    fill_standard_normal32,
    standard_normal32,
)


def _numpy(generator: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return generator.standard_normal(shape, dtype=np.float32)


def test_the_compiled_loop_is_in_use_here() -> None:
    assert compiled_matches_numpy()


@pytest.mark.parametrize("trial", [0, 1, 7])
def test_long_streams_give_numpys_values_and_state(trial: int) -> None:
    ours, theirs = trial_rng(11, trial, "inputs"), trial_rng(11, trial, "inputs")
    values = standard_normal32(ours, (700, 3, 1000))  # ~31 000 wedge and ~500 tail draws
    np.testing.assert_array_equal(values, _numpy(theirs, (700, 3, 1000)))
    assert ours.bit_generator.state == theirs.bit_generator.state
    assert ours.random() == theirs.random()  # and the stream goes on alike


def test_a_kept_half_word_is_used_first_as_numpy_does() -> None:
    ours, theirs = np.random.default_rng(3), np.random.default_rng(3)
    ours.random(dtype=np.float32), theirs.random(dtype=np.float32)  # keeps a uint32 half
    assert ours.bit_generator.state["has_uint32"] == 1
    for size in (1, 2, 3, 1001):  # odd and even counts end with and without a kept half
        np.testing.assert_array_equal(standard_normal32(ours, (size,)), _numpy(theirs, (size,)))
        assert ours.bit_generator.state == theirs.bit_generator.state


def _generator_whose_next_output_is(value: int) -> np.random.Generator:
    """A PCG64 generator whose next 64-bit output is ``value``: the state after the step is
    (high 0, low value), whose rotation is 0 and output 0 ^ value; the state before it is that
    minus the increment, times the multiplier's inverse mod 2^128."""
    generator = np.random.Generator(np.random.PCG64(0))
    state = generator.bit_generator.state
    modulus = 2**128
    inc = state["state"]["inc"]
    state["state"]["state"] = (value - inc) * pow(MULTIPLIER, -1, modulus) % modulus
    state["has_uint32"], state["uinteger"] = 0, 0
    generator.bit_generator.state = state
    return generator


def test_every_box_boundary_is_decided_as_numpy_decides_it() -> None:
    """For each of the 256 boxes, draws whose 23-bit magnitude sits at 0, at the box's
    acceptance bound k and next to it, and at the top, with either sign and with the uniform of
    the wedge test (the same output's high half) at 0, 1/2 and its largest value."""
    from numba.np.random._constants import ki_float

    assert _generator_whose_next_output_is(12345).bit_generator.random_raw() == 12345
    for idx in range(256):
        bound = int(ki_float[idx])
        magnitudes = {m for m in (0, 1, bound - 1, bound, bound + 1, 0x7FFFFF) if 0 <= m <= 0x7FFFFF}
        for magnitude in sorted(magnitudes):
            for sign in (0, 1):
                for high in (0, 0x80000000, 0xFFFFFFFF):
                    low = idx | sign << 8 | magnitude << 9
                    ours = _generator_whose_next_output_is(high << 32 | low)
                    theirs = _generator_whose_next_output_is(high << 32 | low)
                    np.testing.assert_array_equal(standard_normal32(ours, (2,)),
                                                  _numpy(theirs, (2,)))
                    assert ours.bit_generator.state == theirs.bit_generator.state


def test_empty_draws_leave_the_generator_where_numpy_leaves_it() -> None:
    ours, theirs = np.random.default_rng(9), np.random.default_rng(9)
    for shape in ((0,), (0, 5), (3, 0, 2)):
        assert standard_normal32(ours, shape).shape == _numpy(theirs, shape).shape
        assert ours.bit_generator.state == theirs.bit_generator.state


def test_other_bit_generators_draw_with_numpy() -> None:
    ours = np.random.Generator(np.random.MT19937(5))
    theirs = np.random.Generator(np.random.MT19937(5))
    np.testing.assert_array_equal(standard_normal32(ours, (64, 3)), _numpy(theirs, (64, 3)))


def test_fill_refuses_arrays_it_cannot_fill_in_place() -> None:
    with pytest.raises(ValueError, match="out: expected a C-contiguous float32 array"):
        fill_standard_normal32(np.random.default_rng(0), np.empty(8, dtype=np.float64))
    with pytest.raises(ValueError, match="out"):
        fill_standard_normal32(np.random.default_rng(0), np.empty((4, 4), np.float32)[:, 0])
