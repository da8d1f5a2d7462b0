"""The blocked binary x binary kernel and the vectorized packer (issue 22): exact against an
integer reference on every shape class (4 x 4 blocks, rows and weight rows left over, batch
1-3, partial words); the weight popcounts that ``step`` inputs use stay in step with the
weights; the kernels' one-thread twins compute what the threaded kernels compute."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stelab.bench.pack_limits import on_threads
from stelab.nn import QuantLinear
from stelab.pack import export_packed, kernels, load_packed
from stelab.pack.bits import pack_bits
from stelab.pack.matmul import SERIAL_WORDS, binary_matmul, pick, weight_popcounts
from stelab.pack.modules import PackedLinear


def _reference(x: np.ndarray, signs: np.ndarray, step: bool) -> np.ndarray:
    xq = (x > 0).astype(np.int64) if step else np.where(x < 0, -1, 1).astype(np.int64)
    return (xq @ signs.astype(np.int64).T).astype(np.float32)


@pytest.mark.parametrize("step", [False, True])
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 8, 67])
@pytest.mark.parametrize("outs,k", [(1, 1), (3, 63), (4, 64), (5, 65), (17, 200), (9, 640)])
def test_binary_gemm_matches_integer_reference(step, rows, outs, k):
    gen = np.random.default_rng(rows * 1000 + outs * 10 + k)
    x = gen.standard_normal((rows, k)).astype(np.float32)
    signs = np.where(gen.standard_normal((outs, k)) < 0, -1, 1)
    wrows = pack_bits(signs < 0)
    out = binary_matmul(x, wrows, k, step, "layer")
    assert np.array_equal(out, _reference(x, signs, step))
    # the popcounts given by the caller are the ones used
    assert np.array_equal(binary_matmul(x, wrows, k, step, "layer", weight_popcounts(wrows)),
                          out)


@pytest.mark.parametrize("step", [False, True])
@pytest.mark.parametrize("k", [1, 64, 100, 128, 4096])
def test_packer_bits_and_nan_count(step, k):
    gen = np.random.default_rng(k)
    x = gen.standard_normal((6, k)).astype(np.float32)
    x[0, 0] = 0.0  # sign(0) = +1: bit clear; step(0) = 0: bit clear
    x[2, k - 1] = np.nan
    x[4, k // 2] = np.nan
    out = np.empty((6, -(-k // 64)), np.uint64)
    nans = kernels.pack_rows(x, step, out)
    assert nans == 2
    clean = np.nan_to_num(x, nan=0.0)  # a NaN sets no bit
    expected = pack_bits(clean > 0) if step else pack_bits(clean < 0)
    assert np.array_equal(out, expected)


def test_step_layer_popcounts_follow_the_weights(tmp_path):
    torch.manual_seed(0)
    model = QuantLinear(70, 9, bias=False, input_quantizer="ste_heaviside").eval()
    packed = load_packed(export_packed(model, tmp_path / "m.st"))
    layer = packed.net
    assert isinstance(layer, PackedLinear) and layer.mode == "step"
    x = torch.randn(5, 70)
    assert torch.equal(packed(x), model(x).detach())
    with torch.no_grad():  # flip every weight in place: the cached counts must follow
        model.weight.neg_()
    other = load_packed(export_packed(model, tmp_path / "n.st"))
    layer.load_state_dict(other.net.state_dict())
    assert torch.equal(packed(x), model(x).detach())


def test_serial_twins_compute_what_the_threaded_kernels_compute():
    gen = np.random.default_rng(3)
    x = gen.standard_normal((5, 200)).astype(np.float32)
    wrows = pack_bits(gen.standard_normal((37, 200)) < 0)
    bits_a, bits_b = (np.empty((5, 4), np.uint64) for _ in range(2))
    assert kernels.serial["pack_rows"](x, False, bits_a) == kernels.pack_rows(x, False, bits_b)
    assert np.array_equal(bits_a, bits_b)
    out_a, out_b = np.empty((5, 37), np.float32), np.empty((5, 37), np.float32)
    pops = np.zeros(0, np.int64)
    kernels.serial["binary_gemm"](bits_a, wrows, 200, False, pops, out_a)
    kernels.binary_gemm(bits_a, wrows, 200, False, pops, out_b)
    assert np.array_equal(out_a, out_b)
    padded = np.zeros((1, 256), np.float32)
    padded[:, :200] = x[:1]
    table = np.empty((1, 32, 256), np.float32)
    kernels.serial["real_binary_lut"](padded, wrows.view(np.uint8), table, out_a[:1])
    kernels.real_binary_lut(padded, wrows.view(np.uint8), table, out_b[:1])
    assert np.array_equal(out_a[:1], out_b[:1])
    assert kernels.serial["binary_gemm"] is not kernels.binary_gemm
    assert set(kernels.serial) == {"pack_rows", "binary_gemm", "pack_pixels", "binary_conv2d",
                                   "real_binary_lut", "real_binary_unpacked", "unpack_signs"}


def test_pick_runs_small_work_on_the_serial_twin():
    assert pick("binary_gemm", 10, SERIAL_WORDS) is kernels.serial["binary_gemm"]
    with on_threads(2):
        assert pick("binary_gemm", SERIAL_WORDS, SERIAL_WORDS) is kernels.binary_gemm
    with on_threads(1):
        assert pick("binary_gemm", SERIAL_WORDS, SERIAL_WORDS) is kernels.serial["binary_gemm"]
