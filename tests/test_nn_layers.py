"""QuantLinear / QuantConv2d: forward on quantized operands, surrogate gradients, weight clip,
torch.compile."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from stelab.errors import ConfigError
from stelab.nn import QuantConv2d, QuantLinear, attach_weight_clip, clip_weights_, get_quantizer
from stelab.quantizers import sign


def _sign(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t >= 0, 1.0, -1.0).to(t.dtype)


def test_quantlinear_forward_is_linear_of_signs():
    torch.manual_seed(0)
    layer = QuantLinear(5, 3, input_quantizer="ste_sign", weight_quantizer="sign")
    x = torch.randn(4, 5)
    x[0, 0] = 0.0  # sign(0) = +1
    expected = F.linear(_sign(x), _sign(layer.weight), layer.bias)
    assert torch.equal(layer(x), expected)


def test_quantlinear_gradients_follow_the_surrogates():
    torch.manual_seed(1)
    layer = QuantLinear(6, 2, bias=False, input_quantizer="ste_sign", weight_quantizer="sign")
    with torch.no_grad():
        layer.weight.mul_(2.0)
    x = (torch.randn(3, 6) * 2).requires_grad_()
    layer(x).sum().backward()
    # d/dW_kj of sum_i sum_k sign(W_kj) sign(x_ij): identity STE -> sum_i sign(x_ij)
    expected_w = _sign(x.detach()).sum(0).expand(2, 6)
    assert torch.allclose(layer.weight.grad, expected_w)
    # d/dx_ij: sum_k sign(W_kj) * 1[|x_ij| <= 1]
    window = (x.detach().abs() <= 1).to(x.dtype)
    expected_x = _sign(layer.weight.detach()).sum(0) * window
    assert torch.allclose(x.grad, expected_x)


def test_quantconv2d_forward_and_weight_gradient():
    torch.manual_seed(2)
    conv = QuantConv2d(2, 3, 3, padding=1, bias=True, weight_quantizer="ste_sign")
    with torch.no_grad():
        conv.weight.mul_(3.0)  # some weights outside the 1[|w| <= 1] window
    x = torch.randn(2, 2, 5, 5)
    out = conv(x)
    assert torch.equal(out, F.conv2d(x, _sign(conv.weight.detach()), conv.bias, padding=1))
    out.sum().backward()
    w = conv.weight.detach().clone().requires_grad_()
    F.conv2d(x, w, conv.bias.detach(), padding=1).sum().backward()
    # the gradient w.r.t. the binary weights, masked by the surrogate 1[|w| <= 1]
    assert torch.allclose(conv.weight.grad, w.grad * (conv.weight.detach().abs() <= 1))


def test_signatures_match_torch_and_defaults():
    layer = QuantLinear(4, 2, False)
    assert layer.bias is None and layer.input_quantizer is None
    assert layer.weight_quantizer is get_quantizer("sign")
    conv = QuantConv2d(1, 2, (3, 3), 2, 1, 1, 1, False, "zeros")
    assert conv.stride == (2, 2) and conv.padding == (1, 1) and conv.bias is None
    assert "weight_quantizer='sign'" in repr(conv)


def test_callable_and_none_quantizers():
    def halve(t: torch.Tensor) -> torch.Tensor:
        return t / 2

    layer = QuantLinear(3, 2, bias=False, input_quantizer=halve, weight_quantizer=None)
    x = torch.randn(4, 3)
    assert torch.allclose(layer(x), F.linear(x / 2, layer.weight))
    assert layer.weight_precision == 32
    halve.precision = 4
    assert QuantLinear(3, 2, weight_quantizer=halve).weight_precision == 4


def test_bad_quantizer_and_clip_raise_config_errors():
    with pytest.raises(ConfigError, match="input_quantizer: unknown value 'nope'"):
        QuantLinear(2, 2, input_quantizer="nope")
    with pytest.raises(ConfigError, match="weight_quantizer: expected a quantizer name"):
        QuantLinear(2, 2, weight_quantizer=3)
    with pytest.raises(ConfigError, match="weight_clip"):
        QuantLinear(2, 2, weight_clip=0.0)


def test_weight_clip_after_every_optimizer_step():
    torch.manual_seed(3)
    model = nn.Sequential(QuantLinear(4, 8, weight_clip=0.5), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    handle = attach_weight_clip(opt, model)
    model(torch.randn(16, 4)).square().sum().backward()
    opt.step()
    assert model[0].weight.abs().max() <= 0.5
    assert model[1].weight.abs().max() > 0.5  # plain layers are left alone
    handle.remove()
    with torch.no_grad():
        model[0].weight.mul_(10)
    clip_weights_(model)
    assert model[0].weight.abs().max() <= 0.5


def _compiled_matches_eager(backend: str) -> None:
    torch.manual_seed(4)
    model = nn.Sequential(
        QuantConv2d(1, 4, 3, padding=1, input_quantizer="ste_sign", weight_quantizer="approx_sign"),
        nn.Flatten(),
        QuantLinear(64, 3, input_quantizer="swish_sign", weight_quantizer="sign:clipped"),
    )
    x = torch.randn(5, 1, 4, 4)
    eager = model(x)
    eager.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model, backend=backend, fullgraph=True)
    out = compiled(x)
    out.sum().backward()
    assert torch.equal(out, eager)
    for p, g in zip(model.parameters(), grads, strict=True):
        assert torch.allclose(p.grad, g)


def test_torch_compile_aot_eager_fullgraph():
    _compiled_matches_eager("aot_eager")


@pytest.mark.slow
def test_torch_compile_inductor_fullgraph():
    _compiled_matches_eager("inductor")


def test_binary_weights_are_sign_of_latent():
    layer = QuantLinear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, -0.1, 2.0], [-0.0, 0.3, -5.0]]))
    assert torch.equal(layer.quantized_weight(), sign(layer.weight.detach()))
