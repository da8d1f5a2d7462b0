"""Quantizers and surrogate derivatives against their formulas, by oracles that do not call
stelab.quantizers: hand values at the boundaries (0, +-1), the derivative by autograd of the
smooth function each surrogate comes from (Bi-Real's ApproxSign, BNN+'s SignSwish), and the
input gradient of QuantConv2d / QuantLinear from torch's own conv2d / linear backward.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stelab.errors import ConfigError
from stelab.nn import QuantConv2d, QuantLinear
from stelab.quantizers import (
    ACTIVATION_KAPPA,
    QUANTIZERS,
    SURROGATES,
    binary_ste,
    get_activation,
    get_quantizer,
    get_surrogate,
    get_weight_ste,
    sign,
    step,
    weight_quantize,
)

POINTS = torch.tensor([-2.0, -1.0, -0.75, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5], dtype=torch.float64)

#: sigma~'(h) at POINTS, by hand from quantizers.py's docstring
HAND = {
    "identity": [1, 1, 1, 1, 1, 1, 1, 1, 1],
    "relu": [0, 0, 0, 0, 0, 1, 1, 1, 1],
    "clipped_relu": [0, 0, 0, 0, 0, 1, 1, 0, 0],
    "hardtanh": [0, 1, 1, 1, 1, 1, 1, 1, 0],
    "approx_sign": [0, 0, 0.5, 1, 2, 1.5, 1, 0, 0],
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_surrogate_values_at_the_boundaries(name):
    got = get_surrogate(name)(POINTS)
    assert got.dtype == POINTS.dtype
    assert got.tolist() == HAND[name]


def _approx_sign_forward(x):
    """Bi-Real Net's ApproxSign: 2x + x^2 on [-1, 0), 2x - x^2 on [0, 1), sign outside."""
    inner = torch.where(x < 0, 2 * x + x * x, 2 * x - x * x)
    return torch.where(x.abs() < 1, inner, torch.sign(x))


def _sign_swish_forward(x, beta):
    """BNN+'s SignSwish: 2 sigmoid(beta x) (1 + beta x (1 - sigmoid(beta x))) - 1."""
    s = torch.sigmoid(beta * x)
    return 2 * s * (1 + beta * x * (1 - s)) - 1


@pytest.mark.parametrize("beta", [5.0, 1.0, 2.5])
def test_swish_and_approx_sign_are_derivatives_of_their_forward_functions(beta):
    x = torch.linspace(-3, 3, 601, dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(_sign_swish_forward(x, beta).sum(), x)
    torch.testing.assert_close(get_surrogate("swish")(x.detach(), beta=beta), grad)
    if beta == 5.0:  # the default parameter
        torch.testing.assert_close(get_surrogate("swish")(x.detach()), grad)
    y = torch.linspace(-1.5, 1.5, 301, dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(_approx_sign_forward(y).sum(), y)
    torch.testing.assert_close(get_surrogate("approx_sign")(y.detach()), grad)


def test_binary_forwards_and_the_weight_stes():
    x = torch.tensor([-1.5, -0.0, 0.0, 1e-30, -1e-30, 2.0])
    assert sign(x).tolist() == [-1, 1, 1, 1, -1, 1] and sign(x).dtype == x.dtype
    assert step(x).tolist() == [0, 0, 0, 1, 0, 1] and step(x).dtype == x.dtype
    assert get_activation("sign") is sign and get_activation("step") is step
    assert ACTIVATION_KAPPA == {"sign": 1.0, "step": 2.0}
    u = torch.tensor([-1.5, -1.0, 0.0, 1.0, 1.0001])
    assert get_weight_ste("identity")(u).tolist() == [1, 1, 1, 1, 1]
    assert get_weight_ste("clipped")(u).tolist() == [0, 1, 1, 1, 0]


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_named_quantizers_forward_and_backward(name):
    q = QUANTIZERS[name]
    x = POINTS.clone().requires_grad_(True)
    out = q(x)
    forward = sign(POINTS) if q.activation == "sign" else step(POINTS)
    assert torch.equal(out.detach(), forward)
    upstream = torch.arange(1.0, 10.0, dtype=torch.float64)
    (grad,) = torch.autograd.grad(out, x, upstream)
    expected = upstream * SURROGATES[q.ste](POINTS, **q.params)
    torch.testing.assert_close(grad, expected)
    assert q.precision == 1


def test_composed_names_and_the_clipped_alias():
    q = get_quantizer("step:relu")
    assert (q.name, q.activation, q.ste, q.params) == ("step:relu", "step", "relu", {})
    assert get_quantizer("sign:swish").params == {"beta": 5.0}
    x = torch.tensor([-1.5, -1.0, 0.3, 1.0, 1.2], requires_grad=True)
    (grad,) = torch.autograd.grad(binary_ste(x, "sign", "clipped").sum(), x)
    assert grad.tolist() == [0, 1, 1, 1, 0]
    (grad,) = torch.autograd.grad(weight_quantize(x, "clipped").sum(), x)
    assert grad.tolist() == [0, 1, 1, 1, 0]
    (grad,) = torch.autograd.grad(weight_quantize(x).sum(), x)
    assert grad.tolist() == [1, 1, 1, 1, 1]
    (grad,) = torch.autograd.grad(binary_ste(x, "step", "swish", beta=1.0).sum(), x)
    torch.testing.assert_close(grad, get_surrogate("swish")(x.detach(), beta=1.0))


def test_formulas_as_text():
    assert get_quantizer("sign").formula == "sign(x), sign(0) = +1; d/dx ~ 1"
    assert get_quantizer("ste_heaviside").formula == "step(x) = 1[x > 0]; d/dx ~ 1[|x| <= 1]"
    assert get_quantizer("sign:clipped").formula == "sign(x), sign(0) = +1; d/dx ~ 1[|x| <= 1]"
    assert get_quantizer("approx_sign").formula == (
        "sign(x), sign(0) = +1; d/dx ~ (2 - 2|x|) 1[|x| < 1]")


@pytest.mark.parametrize("bad, field", [("nope", "quantizer"), ("sign:nope", "quantizer"),
                                        ("tanh:identity", "quantizer"), ("a:b:c", "quantizer")],
                         ids=["unknown", "unknown_ste", "unknown_activation", "two_colons"])
def test_unknown_quantizers_are_refused_in_one_line(bad, field):
    with pytest.raises(ConfigError) as err:
        get_quantizer(bad)
    assert str(err.value) == (
        f"{field}: unknown value {bad!r}; allowed: approx_sign, sign, ste_heaviside, ste_sign, "
        "step, swish_sign, or '<activation>:<ste>' with activation in {sign, step} and ste in "
        "{identity, relu, clipped_relu, hardtanh, approx_sign, swish, clipped}")


@pytest.mark.parametrize("lookup, field, allowed", [
    (get_surrogate, "ste", "approx_sign, clipped_relu, hardtanh, identity, relu, swish"),
    (get_activation, "activation", "sign, step"),
    (get_weight_ste, "weight_ste", "clipped, identity"),
], ids=["ste", "activation", "weight_ste"])
def test_registries_refuse_unknown_names(lookup, field, allowed):
    with pytest.raises(ConfigError) as err:
        lookup("bogus")
    assert str(err.value) == f"{field}: unknown value 'bogus'; allowed: {allowed}"


@pytest.mark.parametrize("quantizer", ["ste_sign", "approx_sign", "swish_sign", "sign"])
def test_quantconv2d_input_gradient_is_the_surrogate_times_conv_backward(quantizer):
    """d loss / dx = sigma~'(x) * (conv2d's input gradient at the quantized input), with the
    latter from torch's conv2d on a leaf tensor holding Q(x): no stelab code in the oracle."""
    torch.manual_seed(0)
    conv = QuantConv2d(2, 3, 3, padding=1, bias=True, input_quantizer=quantizer,
                       weight_quantizer="sign").double()
    x = (1.5 * torch.randn(2, 2, 5, 5, dtype=torch.float64)).requires_grad_(True)
    upstream = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    (grad,) = torch.autograd.grad(conv(x), x, upstream)
    q = get_quantizer(quantizer)
    leaf = sign(x.detach()).requires_grad_(True)
    out = F.conv2d(leaf, sign(conv.weight.detach()), conv.bias.detach(), padding=1)
    (through,) = torch.autograd.grad(out, leaf, upstream)
    torch.testing.assert_close(grad, through * SURROGATES[q.ste](x.detach(), **q.params))


def test_quantlinear_gradients_match_the_formula():
    torch.manual_seed(1)
    layer = QuantLinear(6, 4, bias=False, input_quantizer="ste_sign",
                        weight_quantizer="ste_sign").double()
    with torch.no_grad():
        layer.weight.mul_(2.0)  # some latent weights beyond the clip of 1
    x = (1.5 * torch.randn(5, 6, dtype=torch.float64)).requires_grad_(True)
    upstream = torch.randn(5, 4, dtype=torch.float64)
    gx, gw = torch.autograd.grad(layer(x), (x, layer.weight), upstream)
    W, X = layer.weight.detach(), x.detach()
    torch.testing.assert_close(gx, (upstream @ sign(W)) * (X.abs() <= 1))
    torch.testing.assert_close(gw, (upstream.T @ sign(X)) * (W.abs() <= 1))
