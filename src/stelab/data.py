"""Input distributions, teacher weights and label noise.

Every distribution draws i.i.d. entries (or i.i.d. rows) of an array of shape ``(..., d)`` from a
``numpy.random.Generator``; numpy rather than torch generates the data so that one seed gives the
same data on every device. The arrays are filled in C order, so for a fixed seed the first n
samples of a larger draw equal a draw of n samples (common random numbers across an n axis).
Standard normals are numpy's float32 ``standard_normal`` values, drawn by a compiled copy of its
loop (:mod:`stelab.ziggurat`: same values, ~4x faster); the Gaussian inputs are drawn straight
into the run's data tensor (:meth:`Distribution.sample_into`).

Registry (name: law of one row x in R^d, parameters with defaults)
* ``gaussian``             : x_i ~ N(0, 1)
* ``rademacher``           : x_i = +-1 with probability 1/2
* ``uniform``              : x_i ~ U[-1, 1]
* ``uniform01``            : x_i ~ U[0, 1]
* ``exponential``          : x_i ~ Exp(scale),                          scale = 1
* ``lognormal``            : x_i = exp(sigma g), g ~ N(0, 1),           sigma = 1
* ``student_t``            : x_i ~ t(df),                               df = 3
* ``shifted_gaussian``     : x_i ~ N(shift, 1),                         shift = 1
* ``anisotropic_gaussian`` : x_i ~ N(0, s_i^2), s_i = condition^(i/(d-1) - 1/2) (geometric,
  from condition^-1/2 to condition^1/2),                                condition = 10
* ``gaussian_mixture``     : x = s mu 1 + g, g ~ N(0, I), s = +1 w.p. weight else -1 (one sign per
  row, so the coordinates are dependent),                               mu = 1, weight = 0.5
* ``sparse_bernoulli``     : x_i ~ Bernoulli(p) in {0, 1},              p = 0.1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from stelab.errors import ConfigError

Shape = tuple[int, ...]


def _rademacher(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    return (rng.integers(0, 2, size=shape, dtype=np.int8) * 2 - 1).astype(np.float32)


def _uniform(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    return (rng.random(shape, dtype=np.float32) * 2.0 - 1.0).astype(np.float32)


def _uniform01(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    return rng.random(shape, dtype=np.float32)


def standard_normal32(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """``rng.standard_normal(shape, dtype=np.float32)``'s values, drawn by the compiled loop of
    :mod:`stelab.ziggurat` (imported on the first draw: importing this module loads no numba)."""
    from stelab import ziggurat

    return ziggurat.standard_normal32(rng, shape)


def fill_standard_normal32(rng: np.random.Generator, out: np.ndarray) -> None:
    """:func:`standard_normal32` drawn into the contiguous float32 array ``out``."""
    from stelab import ziggurat

    ziggurat.fill_standard_normal32(rng, out)


def _exponential(rng: np.random.Generator, shape: Shape, scale: float) -> np.ndarray:
    return (rng.standard_exponential(shape, dtype=np.float32) * scale).astype(np.float32)


def _lognormal(rng: np.random.Generator, shape: Shape, sigma: float) -> np.ndarray:
    return np.exp(sigma * standard_normal32(rng, shape)).astype(np.float32)


def _student_t(rng: np.random.Generator, shape: Shape, df: float) -> np.ndarray:
    return rng.standard_t(df, size=shape).astype(np.float32)


def _shifted_gaussian(rng: np.random.Generator, shape: Shape, shift: float) -> np.ndarray:
    return (standard_normal32(rng, shape) + shift).astype(np.float32)


def _anisotropic_gaussian(rng: np.random.Generator, shape: Shape, condition: float) -> np.ndarray:
    d = shape[-1]
    exponents = np.linspace(-0.5, 0.5, d) if d > 1 else np.zeros(1)
    scales = np.power(condition, exponents).astype(np.float32)
    return standard_normal32(rng, shape) * scales


def _gaussian_mixture(
    rng: np.random.Generator, shape: Shape, mu: float, weight: float
) -> np.ndarray:
    g = standard_normal32(rng, shape)
    row_sign = np.where(rng.random(shape[:-1] + (1,)) < weight, 1.0, -1.0).astype(np.float32)
    return g + mu * row_sign


def _sparse_bernoulli(rng: np.random.Generator, shape: Shape, p: float) -> np.ndarray:
    return (rng.random(shape, dtype=np.float32) < p).astype(np.float32)


@dataclass(frozen=True)
class Distribution:
    """A named input law with its parameters (defaults) and their allowed ranges."""

    name: str
    sampler: Callable[..., np.ndarray]
    params: dict[str, float] = field(default_factory=dict)
    #: parameter -> (low, high) inclusive bounds
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: draws the same values as ``sampler`` into a given float32 array (no temporary), if set
    filler: Callable[..., None] | None = None

    def resolve(self, params: dict[str, float] | None) -> dict[str, float]:
        """Defaults overridden by ``params``, checked against names and bounds."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            allowed = ", ".join(sorted(self.params)) or "none"
            raise ConfigError(
                f"data.params.{unknown[0]}: not a parameter of {self.name!r}; allowed: {allowed}"
            )
        merged = {**self.params, **params}
        for key, value in merged.items():
            low, high = self.bounds[key]
            if not (low <= value <= high):
                raise ConfigError(
                    f"data.params.{key}: {value} is outside the allowed range [{low}, {high}]"
                )
        return merged

    def sample(
        self, rng: np.random.Generator, shape: Shape, params: dict[str, float] | None = None
    ) -> np.ndarray:
        """Draw a float32 array of ``shape`` (last axis = d)."""
        return self.sampler(rng, shape, **self.resolve(params))

    def sample_into(
        self, rng: np.random.Generator, out: np.ndarray, params: dict[str, float] | None = None
    ) -> None:
        """Draw ``sample(rng, out.shape, params)``'s values into the C-contiguous float32
        array ``out`` (in place where the distribution has a filler, else through a copy)."""
        resolved = self.resolve(params)
        if self.filler is not None and out.dtype == np.float32 and out.flags.c_contiguous:
            self.filler(rng, out, **resolved)
        else:
            out[...] = self.sampler(rng, out.shape, **resolved)


_INF = float("inf")
DISTRIBUTIONS: dict[str, Distribution] = {
    dist.name: dist
    for dist in [
        Distribution("gaussian", standard_normal32, filler=fill_standard_normal32),
        Distribution("rademacher", _rademacher),
        Distribution("uniform", _uniform),
        Distribution("uniform01", _uniform01),
        Distribution("exponential", _exponential, {"scale": 1.0}, {"scale": (1e-12, _INF)}),
        Distribution("lognormal", _lognormal, {"sigma": 1.0}, {"sigma": (0.0, 10.0)}),
        Distribution("student_t", _student_t, {"df": 3.0}, {"df": (1e-3, _INF)}),
        Distribution("shifted_gaussian", _shifted_gaussian, {"shift": 1.0}, {"shift": (-1e6, 1e6)}),
        Distribution(
            "anisotropic_gaussian",
            _anisotropic_gaussian,
            {"condition": 10.0},
            {"condition": (1.0, 1e8)},
        ),
        Distribution(
            "gaussian_mixture",
            _gaussian_mixture,
            {"mu": 1.0, "weight": 0.5},
            {"mu": (0.0, 1e6), "weight": (0.0, 1.0)},
        ),
        Distribution("sparse_bernoulli", _sparse_bernoulli, {"p": 0.1}, {"p": (0.0, 1.0)}),
    ]
}


#: input laws registered at run time (:func:`stelab.register_distribution`), found by name beside
#: the built-ins; not part of "all" in the experiments' profiles
REGISTERED_DISTRIBUTIONS: dict[str, Distribution] = {}


def get_distribution(name: str) -> Distribution:
    """The input distribution registered as ``name`` (ConfigError naming the allowed ones)."""
    try:
        return DISTRIBUTIONS[name] if name in DISTRIBUTIONS else REGISTERED_DISTRIBUTIONS[name]
    except KeyError:
        allowed = ", ".join(sorted([*DISTRIBUTIONS, *REGISTERED_DISTRIBUTIONS]))
        raise ConfigError(
            f"data.distribution: unknown value {name!r}; allowed: {allowed}"
        ) from None


def make_teacher(rng: np.random.Generator, d: int, balance: float) -> np.ndarray:
    """Teacher weights w* in {-1, +1}^d with exactly round(balance * d) entries equal to +1,
    at uniformly random positions."""
    n_plus = int(round(balance * d))
    w = np.full(d, -1.0, dtype=np.float32)
    w[rng.permutation(d)[:n_plus]] = 1.0
    return w


def flip_mask(rng: np.random.Generator, shape: Shape, p: float) -> np.ndarray:
    """Boolean mask of independent Bernoulli(p) flips (the "flip" label-noise model)."""
    return rng.random(shape) < p


def gaussian_label_noise(rng: np.random.Generator, n: int, level: float) -> np.ndarray:
    """Additive label noise level * N(0, 1) for n labels (the "gaussian" noise model)."""
    return (level * rng.standard_normal(n)).astype(np.float32)
