"""Binary quantizers and straight-through-estimator (STE) surrogate derivatives.

Forward functions
-----------------
* ``sign(x)  = +1 if x >= 0 else -1``   (so sign(0) = +1; never ``torch.sign``, which maps 0 to 0)
  and NaN for NaN (NaN propagates, as in Larq; +-inf take their sign)
* ``step(x)  = 1 if x > 0 else 0``      (so step = (sign(x) + 1) / 2 except at x = 0, where
  sign(0) = +1 but step(0) = 0; the two agree almost surely on continuous data)

Surrogate derivatives sigma~'(h) used in place of the true (zero almost everywhere) derivative
-----------------------------------------------------------------------------------------------
(docs/model.md, Surrogates)

* ``identity``      : 1
* ``relu``          : 1[h > 0]
* ``clipped_relu``  : 1[0 < h < w]                               (width w > 0, default 1)
* ``hardtanh``      : 1[|h| <= w]                                (width w > 0, default 1)
* ``approx_sign``   : (2 - 2|h|) 1[|h| < 1]                       (Bi-Real Net)
* ``swish``         : beta (2 - beta h tanh(beta h / 2)) / (1 + cosh(beta h))  (SignSwish, beta>0)

:data:`SURROGATES` is the one table of them: the torch path (``stelab.nn``, the dense engine's
continuous surrogates) calls an entry's function; the engines' exact decisions and compiled
kernels read the :class:`Interval` of a {0, 1}-valued entry (sigma~'(h) = 1[h in the interval]).
Adding a surrogate is one entry: with an interval it runs on every engine, with a function only
(continuous values) on the dense engine's torch path. The windowed ones take a width w
(``train.ste_params = {width = w}``): their interval's ends are multiplied by w, so the engines
still decide them exactly (at h = +-w), and w = 1 is the same interval, bit for bit. Users add
surrogates at run time with :func:`stelab.register_surrogate` (:mod:`stelab.registration`);
they live in :data:`REGISTERED_SURROGATES`, beside the built-ins.

Weight STE (derivative of Q(u) = sign(u) with respect to the latent weight u)
--------------------------------------------------------------------------------
* ``identity`` : 1
* ``clipped``  : 1[|u| <= 1]

The plain functions are used by the batched engine; :func:`binary_ste` and
:func:`weight_quantize` are torch autograd forms with the same forward and surrogate backward,
used by ``stelab.nn`` and as the test oracle for the engine's closed-form coarse gradient.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from stelab.errors import ConfigError
from stelab.surrogates import (  # noqa: F401 - the registry, re-exported
    ACTIVATION_KAPPA,
    DISCRETE_SURROGATES,
    REGISTERED_SURROGATES,
    SURROGATES,
    Interval,
    Surrogate,
    get_surrogate,
)
from stelab.surrogates import lookup_registered as _lookup

Tensor = torch.Tensor


def sign(x: Tensor) -> Tensor:
    """sign(x) = +1 for x >= 0, -1 for x < 0 (sign(0) = +1), NaN for NaN (propagated, as in
    Larq: a NaN never becomes a sign). Same dtype as ``x``."""
    out = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    return torch.where(torch.isnan(x), x, out)


def step(x: Tensor) -> Tensor:
    """step(x) = 1[x > 0] in {0, 1}, NaN for NaN (propagated). Same dtype as ``x``."""
    return torch.where(torch.isnan(x), x, (x > 0).to(x.dtype))


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"sign": sign, "step": step}

def _weight_identity(u: Tensor) -> Tensor:
    return torch.ones_like(u)


def _weight_clipped(u: Tensor) -> Tensor:
    return (u.abs() <= 1).to(u.dtype)


WEIGHT_STES: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": _weight_identity,
    "clipped": _weight_clipped,
}


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """The binary activation ``sign`` or ``step``."""
    return _lookup(ACTIVATIONS, name, "activation")


def get_weight_ste(name: str) -> Callable[[Tensor], Tensor]:
    """The derivative of Q(u) = sign(u) used for the latent weights: ``identity`` or ``clipped``."""
    return _lookup(WEIGHT_STES, name, "weight_ste")


# --------------------------------------------------------------------------- autograd forms
class _BinarySTE(torch.autograd.Function):
    """forward: binary(x); backward: grad * surrogate(x)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, binary: Callable, surrogate: Callable) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return binary(x)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate(x), None, None


def binary_ste(
    x: Tensor, activation: str = "sign", ste: str = "identity", **params: float
) -> Tensor:
    """Differentiable binary quantizer: forward ``activation(x)``, backward ``grad * ste'(x)``.

    ``activation`` is ``sign`` or ``step``; ``ste`` any name of :data:`SURROGATES` (for the
    weights, also ``clipped``, an alias of the weight STE 1[|x| <= 1]).
    """
    binary = get_activation(activation)
    if ste == "clipped":
        derivative: Callable[[Tensor], Tensor] = _weight_clipped
    else:
        surrogate = get_surrogate(ste)
        derivative = lambda h: surrogate(h, **params)  # noqa: E731
    return _BinarySTE.apply(x, binary, derivative)


def weight_quantize(u: Tensor, weight_ste: str = "identity") -> Tensor:
    """Q(u) = sign(u) with the weight STE ``identity`` (1) or ``clipped`` (1[|u| <= 1])."""
    derivative = get_weight_ste(weight_ste)
    return _BinarySTE.apply(u, sign, derivative)


# --------------------------------------------------------------------------- named quantizers
@dataclass(frozen=True)
class Quantizer:
    """A named differentiable binary quantizer for ``stelab.nn``: forward ``activation(x)``,
    backward ``grad * ste'(x)`` (via :func:`binary_ste`, so the formulas live in one place).

    ``precision`` is the number of bits of one output value (1 for every registered quantizer);
    :func:`stelab.nn.summary` reads it.

    Parameters
    ----------
    name : str
        The registry name.
    activation : {"sign", "step"}
        The forward map (sign(0) = +1; step(x) = 1[x > 0]).
    ste : str
        The surrogate derivative's name (:func:`binary_ste`).
    params : dict of str to float
        The surrogate's parameters (e.g. a window width).
    precision : int
        Bits per output value.
    """

    name: str
    activation: str = "sign"
    ste: str = "identity"
    params: dict[str, float] = field(default_factory=dict)
    precision: int = 1

    def __call__(self, x: Tensor) -> Tensor:
        return binary_ste(x, self.activation, self.ste, **self.params)

    @property
    def formula(self) -> str:
        """Forward and surrogate derivative as text, e.g. ``sign(x); d/dx ~ 1[|x| <= 1]``."""
        forward = "sign(x), sign(0) = +1" if self.activation == "sign" else "step(x) = 1[x > 0]"
        if self.ste == "clipped":
            derivative = "1[|x| <= 1]"
        else:
            surrogate = get_surrogate(self.ste)
            derivative = re.sub(r"\bh\b", "x", surrogate.formula)
            if surrogate.scale is not None:  # the width's value in place of its letter
                w = {**surrogate.params, **self.params}[surrogate.scale]
                derivative = re.sub(r"\bw\b", f"{w:g}", derivative)
        return f"{forward}; d/dx ~ {derivative}"


#: Named quantizers. Besides these aliases, any ``"<activation>:<ste>"`` with activation in
#: :data:`ACTIVATIONS` and ste in :data:`SURROGATES` (or ``clipped``) is accepted, e.g.
#: ``"step:relu"``.
QUANTIZERS: dict[str, Quantizer] = {
    q.name: q
    for q in [
        Quantizer("sign", "sign", "identity"),  # the paper's STE: identity surrogate
        Quantizer("ste_sign", "sign", "hardtanh"),  # BinaryConnect / Larq: 1[|x| <= 1]
        Quantizer("approx_sign", "sign", "approx_sign"),  # Bi-Real Net
        Quantizer("swish_sign", "sign", "swish", {"beta": 5.0}),  # BNN+ SignSwish
        Quantizer("step", "step", "identity"),
        Quantizer("ste_heaviside", "step", "hardtanh"),  # Larq SteHeaviside: 1[|x| <= 1]
    ]
}


def get_quantizer(name: str, field_name: str = "quantizer") -> Quantizer:
    """The quantizer registered as ``name``, or composed from ``"<activation>:<ste>"``.

    Parameters
    ----------
    name : str
        A key of :data:`QUANTIZERS` or ``"<activation>:<ste>"`` (activation "sign" or "step",
        ste a surrogate name or "clipped"), e.g. ``"sign:clipped"``.
    field_name : str
        The field named in the error message.

    Returns
    -------
    Quantizer
        Applied to a Tensor it returns a Tensor of the same shape and dtype.

    Raises
    ------
    ConfigError
        An unknown name (the message names ``field_name`` and the allowed values).

    Examples
    --------
    >>> import torch
    >>> get_quantizer("sign")(torch.tensor([-0.5, 0.0, 2.0]))
    tensor([-1.,  1.,  1.])
    """
    if name in QUANTIZERS:
        return QUANTIZERS[name]
    if isinstance(name, str) and name.count(":") == 1:
        activation, ste = name.split(":")
        known = {**SURROGATES, **REGISTERED_SURROGATES}
        if activation in ACTIVATIONS and (ste in known or ste == "clipped"):
            params = dict(known[ste].params) if ste in known else {}
            return Quantizer(name, activation, ste, params)
    allowed = ", ".join(sorted(QUANTIZERS))
    raise ConfigError(
        f"{field_name}: unknown value {name!r}; allowed: {allowed}, or '<activation>:<ste>' with "
        f"activation in {{{', '.join(ACTIVATIONS)}}} and ste in "
        f"{{{', '.join([*SURROGATES, 'clipped'])}}}"
    )
