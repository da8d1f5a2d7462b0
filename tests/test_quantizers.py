"""The quantizers, one place for their tests (:mod:`stelab.quantizers` and the named quantizers
of :mod:`stelab.nn`).

* Registry and forward values: sign(0) = +1, the surrogates against their formulas, the autograd
  forms (formerly tests/test_quantizers.py).
* Against oracles that do not call stelab.quantizers: hand values at the boundaries (0, +-1), the
  derivative by autograd of the smooth function each surrogate comes from (Bi-Real's
  ApproxSign, BNN+'s SignSwish), and the input gradient of QuantConv2d / QuantLinear from torch's
  own conv2d / linear backward (formerly tests/test_quantizer_formulas.py).
* The named quantizers of stelab.nn: forward values and surrogate gradients against plain Python
  formulas (formerly tests/test_nn_quantizers.py).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

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

# ------------------------------------------------------------ registry and forward values
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
vectors = st.lists(finite, min_size=1, max_size=64)


@given(vectors)
def test_sign_outputs_plus_minus_one(values):
    x = torch.tensor(values, dtype=torch.float32)
    out = sign(x)
    assert set(out.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(out == 1.0, x >= 0)


@given(vectors)
def test_step_outputs_zero_one(values):
    x = torch.tensor(values, dtype=torch.float32)
    out = step(x)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out == 1.0, x > 0)


def test_sign_of_zero_is_plus_one_including_negative_zero():
    assert sign(torch.tensor([0.0, -0.0])).tolist() == [1.0, 1.0]
    assert step(torch.tensor([0.0])).tolist() == [0.0]


@given(st.lists(finite.filter(lambda v: v != 0), min_size=1, max_size=32))
def test_step_is_half_sign_plus_one_off_zero(values):
    x = torch.tensor(values, dtype=torch.float32)
    assert torch.equal(step(x), (sign(x) + 1) / 2)


EXPECTED = {
    "identity": lambda h: 1.0,
    "relu": lambda h: float(h > 0),
    "clipped_relu": lambda h: float(0 < h < 1),
    "hardtanh": lambda h: float(abs(h) <= 1),
    "approx_sign": lambda h: max(0.0, 2 - 2 * abs(h)),
    "swish": lambda h, b=5.0: b * (2 - b * h * math.tanh(b * h / 2)) / (1 + math.cosh(b * h)),
}


def test_every_registered_surrogate_has_a_formula_test():
    assert set(EXPECTED) == set(SURROGATES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@given(st.floats(min_value=-3, max_value=3, allow_nan=False))
def test_surrogate_matches_formula(name, h):
    got = get_surrogate(name)(torch.tensor([h], dtype=torch.float64)).item()
    assert got == pytest.approx(EXPECTED[name](h), abs=1e-9)


def test_swish_surrogate_is_derivative_of_sign_swish():
    beta = 3.0
    h = torch.linspace(-2, 2, 101, dtype=torch.float64, requires_grad=True)
    s = torch.sigmoid(beta * h)
    sign_swish = 2 * s * (1 + beta * h * (1 - s)) - 1
    (grad,) = torch.autograd.grad(sign_swish.sum(), h)
    assert torch.allclose(grad, get_surrogate("swish")(h.detach(), beta=beta), atol=1e-10)


@pytest.mark.parametrize("activation", ["sign", "step"])
@pytest.mark.parametrize("ste", sorted(EXPECTED))
def test_autograd_form_uses_surrogate(activation, ste):
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    out = binary_ste(x, activation, ste)
    out.backward(torch.ones_like(out))
    assert torch.equal(out.detach(), sign(x.detach()) if activation == "sign" else step(x.detach()))
    assert torch.allclose(x.grad, get_surrogate(ste)(x.detach()))


def test_weight_ste_clipped():
    u = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    q = weight_quantize(u, "clipped")
    q.sum().backward()
    assert q.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    assert u.grad.tolist() == [0, 1, 1, 1, 1, 1, 0]


def test_unknown_surrogate_names_allowed_values():
    with pytest.raises(ConfigError, match="ste: unknown value 'tanh'; allowed: approx_sign"):
        get_surrogate("tanh")


# ------------------------------------------------------------ against independent oracles
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


# ------------------------------------------------------------ named quantizers of stelab.nn
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


def _sign(x: float) -> float:
    return 1.0 if x >= 0 else -1.0


def _step(x: float) -> float:
    return 1.0 if x > 0 else 0.0


def _swish(x: float, beta: float = 5.0) -> float:
    return beta * (2 - beta * x * math.tanh(beta * x / 2)) / (1 + math.cosh(beta * x))


# name -> (forward, surrogate derivative), written out from the docs (Larq / Bi-Real / BNN+)
FORMULAS = {
    "sign": (_sign, lambda x: 1.0),
    "ste_sign": (_sign, lambda x: float(abs(x) <= 1)),
    "approx_sign": (_sign, lambda x: max(0.0, 2 - 2 * abs(x))),
    "swish_sign": (_sign, _swish),
    "step": (_step, lambda x: 1.0),
    "ste_heaviside": (_step, lambda x: float(abs(x) <= 1)),
    "step:relu": (_step, lambda x: float(x > 0)),
    "step:clipped_relu": (_step, lambda x: float(0 < x < 1)),
    "sign:clipped": (_sign, lambda x: float(abs(x) <= 1)),
}


def test_every_registered_quantizer_has_a_formula_test():
    assert set(QUANTIZERS) <= set(FORMULAS)


@pytest.mark.parametrize("name", sorted(FORMULAS))
@given(st.floats(min_value=-3, max_value=3, allow_nan=False))
def test_forward_and_surrogate_gradient_match_formulas(name, x):
    forward, derivative = FORMULAS[name]
    t = torch.tensor([x], dtype=torch.float64, requires_grad=True)
    out = get_quantizer(name)(t)
    out.backward(torch.tensor([0.5], dtype=torch.float64))
    assert out.item() == forward(x)
    assert t.grad.item() == pytest.approx(0.5 * derivative(x), abs=1e-12)


@pytest.mark.parametrize("name", sorted(FORMULAS))
@given(st.lists(finite, min_size=1, max_size=64))
def test_outputs_are_binary(name, values):
    out = get_quantizer(name)(torch.tensor(values, dtype=torch.float32))
    allowed = {-1.0, 1.0} if get_quantizer(name).activation == "sign" else {0.0, 1.0}
    assert set(out.unique().tolist()) <= allowed


@pytest.mark.parametrize("name", [n for n in FORMULAS if get_quantizer(n).activation == "sign"])
def test_sign_quantizers_map_zero_to_plus_one(name):
    assert get_quantizer(name)(torch.tensor([0.0, -0.0])).tolist() == [1.0, 1.0]


def test_every_quantizer_is_one_bit_and_documents_its_formula():
    for name in FORMULAS:
        q = get_quantizer(name)
        assert q.precision == 1
        assert q.formula.startswith(("sign(x)", "step(x)")) and "d/dx ~" in q.formula


@pytest.mark.parametrize("bad", ["tanh", "sign:foo", "relu:identity", "sign:relu:x"])
def test_unknown_quantizer_names_the_field_and_allowed_values(bad):
    with pytest.raises(ConfigError, match=r"weight_quantizer: unknown value .*allowed: approx_sign"):
        get_quantizer(bad, "weight_quantizer")
