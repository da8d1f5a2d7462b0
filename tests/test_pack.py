"""stelab.pack: bit layouts, packed layers against the float model (bit for bit where binary x
binary, within the stated float32 bound where real x binary), file size, round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from stelab.nn import QuantConv2d, QuantLinear, Scale, summary
from stelab.pack import PackedModel, export_packed, kernels, load_packed
from stelab.pack.bits import pack_signs_rows, pack_stream, stream_to_rows, unpack_stream

U = 2.0**-24  # unit roundoff of float32


def _randomize_batchnorm(model: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


def _round_trip(model: nn.Module, tmp_path, name: str = "m.safetensors") -> PackedModel:
    path = export_packed(model.eval(), tmp_path / name)
    return load_packed(path)


def _real_bound(x: torch.Tensor, k: int, weight_scale: float = 1.0) -> torch.Tensor:
    """2 (K - 1) u sum_j |x_j| per row (the bound of stelab.pack.kernels), + a bias rounding."""
    return 2 * (k - 1) * U * x.abs().sum(dim=-1, keepdim=True) * weight_scale + 1e-7


# --------------------------------------------------------------------------------- bits
@pytest.mark.parametrize("n", [1, 63, 64, 65, 200])
def test_stream_round_trip_and_layouts(n):
    gen = np.random.default_rng(n)
    values = gen.standard_normal((3, n)).astype(np.float32)
    values[0, 0] = 0.0  # sign(0) = +1
    stream = pack_stream(values)
    assert stream.dtype == np.uint64 and stream.size == -(-3 * n // 64)
    signs = unpack_stream(stream, 3 * n).reshape(3, n)
    assert np.array_equal(signs, np.where(values >= 0, 1.0, -1.0))
    assert np.array_equal(stream_to_rows(stream, 3, n), pack_signs_rows(values))


@pytest.mark.parametrize("step", [False, True])
def test_compiled_packer_matches_numpy(step):
    x = np.random.default_rng(1).standard_normal((5, 130)).astype(np.float32)
    out = np.empty((5, 3), np.uint64)
    assert kernels.pack_rows(x, step, out) == 0
    expected = pack_signs_rows(-x) if step else pack_signs_rows(x)  # step: bit iff x > 0
    if step:  # -x < 0 iff x > 0; x == 0 never happens in this draw
        assert not (x == 0).any()
    assert np.array_equal(out, expected)


# --------------------------------------------------------------------------------- linear
@pytest.mark.parametrize("in_features", [1, 63, 64, 65, 200])
@pytest.mark.parametrize("quantizer", ["ste_sign", "step"])
def test_binary_linear_is_bit_exact(tmp_path, in_features, quantizer):
    torch.manual_seed(in_features)
    model = QuantLinear(in_features, 37, bias=False, input_quantizer=quantizer,
                        weight_quantizer="ste_sign")
    packed = _round_trip(model, tmp_path)
    x = torch.randn(7, in_features)
    x[0, 0] = 0.0  # sign(0) = +1, step(0) = 0 in both
    assert torch.equal(packed(x), model(x).detach())


@pytest.mark.parametrize("in_features", [1, 63, 64, 65, 200])
def test_binary_linear_with_bias(tmp_path, in_features):
    """The integer dot product is exact; the bias is added by torch as one rounding."""
    torch.manual_seed(in_features)
    model = QuantLinear(in_features, 19, input_quantizer="sign", weight_quantizer="sign")
    packed = _round_trip(model, tmp_path)
    x = torch.randn(4, in_features)
    expected = model(x).detach()
    got = packed(x)
    exact = F.linear(torch.where(x >= 0, 1.0, -1.0), torch.where(model.weight >= 0, 1.0, -1.0))
    assert torch.equal(got, exact.detach() + model.bias.detach())
    assert torch.allclose(got, expected, rtol=0, atol=4 * U * (in_features + 1))


@pytest.mark.parametrize("batch", [1, 3, 300])
@pytest.mark.parametrize("in_features", [1, 63, 64, 65, 200])
def test_real_binary_linear_within_bound(tmp_path, in_features, batch):
    torch.manual_seed(in_features + batch)
    model = QuantLinear(in_features, 300, input_quantizer=None, weight_quantizer="sign")
    packed = _round_trip(model, tmp_path)
    x = torch.randn(batch, in_features) * 10
    diff = (packed(x) - model(x).detach()).abs()
    assert (diff <= _real_bound(x, in_features) + U * model.bias.abs().detach()).all()


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 70), k=st.integers(1, 300), outs=st.integers(1, 40),
       seed=st.integers(0, 2**31 - 1))
def test_binary_gemm_hypothesis(batch, k, outs, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, k, generator=gen)
    w = torch.randn(outs, k, generator=gen)
    model = QuantLinear(k, outs, bias=False, input_quantizer="sign")
    with torch.no_grad():
        model.weight.copy_(w)
    from stelab.pack.modules import PackedLinear

    layer = PackedLinear(k, outs, pack_signs_rows(w.numpy()), None, "sign")
    assert torch.equal(layer(x), model(x).detach())


# --------------------------------------------------------------------------------- conv
CONVS = [
    dict(in_channels=3, out_channels=8, kernel_size=3, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=3, padding=2, stride=2),
    dict(in_channels=4, out_channels=8, kernel_size=(3, 2), padding=(1, 0), groups=2),
    dict(in_channels=2, out_channels=4, kernel_size=3, padding="same", dilation=2),
    dict(in_channels=3, out_channels=5, kernel_size=3, padding=1, padding_mode="reflect"),
    dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8, bias=False),
    dict(in_channels=70, out_channels=3, kernel_size=1),
]


@pytest.mark.parametrize("args", CONVS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
@pytest.mark.parametrize("quantizer", ["ste_sign", "step"])
def test_binary_conv_is_bit_exact(tmp_path, args, quantizer):
    torch.manual_seed(0)
    model = QuantConv2d(**{**args, "bias": False}, input_quantizer=quantizer)
    packed = _round_trip(model, tmp_path)
    x = torch.randn(3, args["in_channels"], 9, 7)
    assert torch.equal(packed(x), model(x).detach())


@pytest.mark.parametrize("args", CONVS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
def test_real_binary_conv_within_bound(tmp_path, args):
    torch.manual_seed(1)
    model = QuantConv2d(**args, input_quantizer=None)
    packed = _round_trip(model, tmp_path)
    x = torch.randn(2, args["in_channels"], 9, 7)
    kh, kw = model.kernel_size
    k = args["in_channels"] // model.groups * kh * kw
    diff = (packed(x) - model(x).detach()).abs()
    # sum |x| over a patch is at most the sum over all of x's channels and pixels
    bound = 2 * (k - 1) * U * x.abs().sum() + 1e-6
    assert diff.max() <= bound


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 4), channels=st.integers(1, 9), outs=st.integers(1, 9),
       size=st.integers(3, 10), kernel=st.integers(1, 3), padding=st.integers(0, 2),
       stride=st.integers(1, 2), seed=st.integers(0, 2**31 - 1))
def test_binary_conv_hypothesis(tmp_path_factory, batch, channels, outs, size, kernel, padding,
                                stride, seed):
    torch.manual_seed(seed)
    model = QuantConv2d(channels, outs, kernel, stride=stride, padding=padding, bias=False,
                        input_quantizer="sign")
    packed = _round_trip(model, tmp_path_factory.mktemp("conv"))
    x = torch.randn(batch, channels, size, size)
    assert torch.equal(packed(x), model(x).detach())


# --------------------------------------------------------------------------------- models
def binary_cnn() -> nn.Sequential:
    return nn.Sequential(
        QuantConv2d(1, 16, 3, padding=1, bias=False, input_quantizer="ste_sign"),
        nn.BatchNorm2d(16),
        nn.Hardtanh(),
        QuantConv2d(16, 32, 3, padding=1, stride=2, groups=2, bias=False,
                    input_quantizer="ste_sign"),
        nn.BatchNorm2d(32),
        nn.Flatten(),
        QuantLinear(32 * 4 * 4, 65, bias=False, input_quantizer="ste_sign"),
        nn.BatchNorm1d(65),
        nn.ReLU(),
        Scale(0.5),
        nn.Identity(),
        QuantLinear(65, 10, input_quantizer="ste_sign", weight_quantizer=None),
        nn.Linear(10, 3),
    )


def test_binary_model_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(3)
    model = binary_cnn()
    _randomize_batchnorm(model, torch.Generator().manual_seed(4))
    packed = _round_trip(model, tmp_path)
    x = torch.randn(11, 1, 8, 8)
    assert torch.equal(packed(x), model(x).detach())
    assert not packed(x).requires_grad
    assert not any(p.requires_grad for p in packed.parameters())


def test_file_size_matches_summary(tmp_path):
    model = nn.Sequential(QuantLinear(200, 300, input_quantizer="sign"), nn.BatchNorm1d(300),
                          QuantLinear(300, 65, bias=False), nn.Linear(65, 10))
    path = export_packed(model, tmp_path / "m.safetensors")
    size = path.stat().st_size
    header = 8 + int.from_bytes(path.read_bytes()[:8], "little")
    expected = summary(model).memory_bytes
    assert abs((size - header) - expected) <= 0.05 * expected
    assert size < 0.1 * sum(p.numel() * 4 for p in model.parameters())


def test_digits_mlp_round_trip(tmp_path):
    """The digits binary MLP of stelab.realdata (real x binary first layer, then binary x
    binary): the binary layers see exactly the float model's inputs up to the first layer's
    rounding, so the outputs agree within float32 rounding and predictions agree."""
    from stelab.realdata import build_model, load_digits_task

    torch.manual_seed(0)
    model = build_model("mlp", "multiclass", "batchnorm")
    _randomize_batchnorm(model, torch.Generator().manual_seed(1))
    packed = _round_trip(model, tmp_path)
    _, _, X_te, _ = load_digits_task("multiclass", 0)
    x = torch.from_numpy(X_te)
    expected, got = model(x).detach(), packed(x)
    assert torch.equal(got.argmax(1), expected.argmax(1))
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4)
