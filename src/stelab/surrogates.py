"""The registry of surrogate derivatives sigma~'(h) (their formulas: :mod:`stelab.quantizers`),
without torch: the config validates ``train.ste`` against it and the compiled engines read the
:class:`Interval` of a {0, 1}-valued entry, so neither imports torch for it. The continuous
surrogates' functions take a torch tensor (they call its methods only, so this module imports no
torch); :mod:`stelab.quantizers` re-exports every name here. Also the step-size convention
(:func:`step_size_eta`), which the compiled engines need without torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stelab.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["ACTIVATION_KAPPA", "DISCRETE_SURROGATES", "REGISTERED_SURROGATES", "SURROGATES",
           "Interval", "Surrogate", "get_surrogate", "lookup_registered", "step_size_eta"]


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
        inside = (h == h) | (h != h)  # all true, NaN included: no end excludes anything
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
    return (2.0 - 2.0 * h.abs()).clamp(min=0.0)


def _swish(h: Tensor, beta: float = 5.0) -> Tensor:
    bh = beta * h
    return beta * (2.0 - bh * (bh / 2.0).tanh()) / (1.0 + bh.cosh())


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


#: kappa in the step-size convention eta = c * sqrt(pi d / 2) * m * kappa (docs/model.md, Step size)
ACTIVATION_KAPPA: dict[str, float] = {"sign": 1.0, "step": 2.0}


def step_size_eta(c: float, d: int, m: int, activation: str) -> float:
    """eta = c * sqrt(pi d / 2) * m * kappa, kappa = 1 (sign) or 2 (step) (docs/model.md, Step
    size): one step moves a wrong coordinate of u by about 2c for Gaussian inputs."""
    return c * math.sqrt(math.pi * d / 2.0) * m * ACTIVATION_KAPPA[activation]


def lookup_registered(registry: dict[str, Any], name: str, field_name: str) -> Any:
    """``registry[name]``, or a ConfigError naming ``field_name`` and the allowed names."""
    try:
        return registry[name]
    except KeyError:
        allowed = ", ".join(sorted(registry))
        raise ConfigError(f"{field_name}: unknown value {name!r}; allowed: {allowed}") from None


def get_surrogate(name: str) -> Surrogate:
    """The surrogate derivative registered as ``name`` (ConfigError naming the allowed ones)."""
    return lookup_registered({**SURROGATES, **REGISTERED_SURROGATES}, name, "ste")
