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

Tensor = torch.Tensor


def sign(x: Tensor) -> Tensor:
    """sign(x) = +1 for x >= 0, -1 for x < 0 (sign(0) = +1), NaN for NaN (propagated, as in
    Larq: a NaN never becomes a sign). Same dtype as ``x``."""
    out = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    return torch.where(torch.isnan(x), x, out)


def step(x: Tensor) -> Tensor:
    """step(x) = 1[x > 0] in {0, 1}, NaN for NaN (propagated). Same dtype as ``x``."""
    return torch.where(torch.isnan(x), x, (x > 0).to(x.dtype))


# --------------------------------------------------------------------------- surrogates
@dataclass(frozen=True)
class Interval:
    """Where a {0, 1}-valued surrogate derivative is 1: lo < h < hi, or lo <= h <= hi when
    ``closed``; an end that is None is unbounded. The ends are the thresholds at which the
    engines decide on the exact pre-activation (in units of the batch-norm scale s)."""

    lo: float | None = None
    hi: float | None = None
    closed: bool = False

    @property
    def ends(self) -> tuple[float, ...]:
        """The finite ends, lower first."""
        return tuple(end for end in (self.lo, self.hi) if end is not None)

    def contains(self, h: Tensor, scale: Tensor | float = 1.0) -> Tensor:
        """1[h in the interval scaled by s] as a bool tensor, comparing h with lo * s and
        hi * s (s = ``scale``; with float64 h and s the comparisons are exact)."""
        inside = torch.ones_like(h, dtype=torch.bool)
        if self.lo is not None:
            lo = 0.0 if self.lo == 0 else self.lo * scale
            inside &= (h >= lo) if self.closed else (h > lo)
        if self.hi is not None:
            hi = 0.0 if self.hi == 0 else self.hi * scale
            inside &= (h <= hi) if self.closed else (h < hi)
        return inside

    def indicator(self, h: Tensor) -> Tensor:
        """1[h in the interval] in the dtype of h (NaN is outside every bounded interval)."""
        return self.contains(h).to(h.dtype)


def _approx_sign(h: Tensor) -> Tensor:
    return torch.clamp(2.0 - 2.0 * h.abs(), min=0.0)


def _swish(h: Tensor, beta: float = 5.0) -> Tensor:
    bh = beta * h
    return beta * (2.0 - bh * torch.tanh(bh / 2.0)) / (1.0 + torch.cosh(bh))


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate derivative sigma~'(h) with its allowed parameters and defaults.

    Either {0, 1}-valued, given by its ``interval`` (the function is its indicator; the engines
    decide it exactly and compile it, :mod:`stelab.engine.decisions`), or continuous, given by
    its torch function ``fn`` (run by the dense engine on the float pre-activations)."""

    name: str
    formula: str
    interval: Interval | None = None
    fn: Callable[..., Tensor] | None = None
    params: dict[str, float] = field(default_factory=dict)
    positive: tuple[str, ...] = ()  # parameters that must be > 0
    #: the parameter that multiplies the interval's ends (the width w of a window), if any
    scale: str | None = None

    def __post_init__(self) -> None:
        if (self.interval is None) == (self.fn is None):
            raise ValueError(f"surrogate {self.name!r}: give an interval or a function")

    @property
    def discrete(self) -> bool:
        """Whether its values are in {0, 1} (an interval's indicator)."""
        return self.interval is not None

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The ends of its interval (where the engines decide exactly), () if continuous."""
        return () if self.interval is None else self.interval.ends

    def interval_for(self, params: dict[str, float] | None = None) -> Interval | None:
        """The interval with ``params`` (defaults where absent): its ends times the width
        parameter ``scale`` if it has one (w = 1 returns the interval itself); None if
        continuous."""
        if self.interval is None or self.scale is None:
            return self.interval
        w = float({**self.params, **(params or {})}[self.scale])
        if w == 1.0:
            return self.interval
        lo, hi = self.interval.lo, self.interval.hi
        return Interval(None if lo is None else lo * w, None if hi is None else hi * w,
                        self.interval.closed)

    def __call__(self, h: Tensor, **params: Any) -> Tensor:
        if self.interval is not None:
            interval = self.interval_for(params)
            assert interval is not None
            return interval.indicator(h)
        assert self.fn is not None
        return self.fn(h, **{**self.params, **params})


#: The surrogates, one entry each. An entry with an Interval is {0, 1}-valued: every engine runs
#: it, the compiled kernels included (they are compiled from the interval's ends: no branch to
#: add). An entry with fn= is continuous: the dense engine runs it on its torch path.
SURROGATES: dict[str, Surrogate] = {
    s.name: s
    for s in [
        Surrogate("identity", "1", Interval()),
        Surrogate("relu", "1[h > 0]", Interval(lo=0.0)),
        Surrogate("clipped_relu", "1[0 < h < w]", Interval(lo=0.0, hi=1.0),
                  params={"width": 1.0}, positive=("width",), scale="width"),
        Surrogate("hardtanh", "1[|h| <= w]", Interval(lo=-1.0, hi=1.0, closed=True),
                  params={"width": 1.0}, positive=("width",), scale="width"),
        Surrogate("approx_sign", "(2 - 2|h|) 1[|h| < 1]", fn=_approx_sign),
        Surrogate(
            "swish",
            "beta (2 - beta h tanh(beta h / 2)) / (1 + cosh(beta h))",
            fn=_swish,
            params={"beta": 5.0},
            positive=("beta",),
        ),
    ]
}

#: surrogates registered at run time (:func:`stelab.register_surrogate`), found by name beside
#: the built-ins; not part of "all" in the experiments' profiles
REGISTERED_SURROGATES: dict[str, Surrogate] = {}

#: the surrogates with values in {0, 1} (those the incremental and trial-wise engines run)
DISCRETE_SURROGATES: tuple[str, ...] = tuple(s.name for s in SURROGATES.values() if s.discrete)

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"sign": sign, "step": step}

#: kappa in the step-size convention eta = c * sqrt(pi d / 2) * m * kappa (docs/model.md, Step size)
ACTIVATION_KAPPA: dict[str, float] = {"sign": 1.0, "step": 2.0}


def _weight_identity(u: Tensor) -> Tensor:
    return torch.ones_like(u)


def _weight_clipped(u: Tensor) -> Tensor:
    return (u.abs() <= 1).to(u.dtype)


WEIGHT_STES: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": _weight_identity,
    "clipped": _weight_clipped,
}


def _lookup(registry: dict[str, Any], name: str, field_name: str) -> Any:
    try:
        return registry[name]
    except KeyError:
        allowed = ", ".join(sorted(registry))
        raise ConfigError(f"{field_name}: unknown value {name!r}; allowed: {allowed}") from None


def get_surrogate(name: str) -> Surrogate:
    """The surrogate derivative registered as ``name`` (ConfigError naming the allowed ones)."""
    return _lookup({**SURROGATES, **REGISTERED_SURROGATES}, name, "ste")


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
