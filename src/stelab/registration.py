"""Surrogates and input laws defined by the user at run time, shipped to every worker by value.

``stelab.register_surrogate(name, fn, formula=...)`` and ``stelab.register_distribution(name,
sampler, ...)`` add an entry that configs may name (``train.ste``, ``data.distribution``) without
editing :mod:`stelab.quantizers` or :mod:`stelab.data`. Built-in names cannot be replaced.

* **Workers.** The entry is pickled by value with cloudpickle (code, constants and the globals
  it reads, so functions defined in a script or a notebook travel too) and every sweep cell
  whose config names it carries it (:func:`payload_for`); the worker installs it before the
  cell runs (:func:`install`), on a local process, a Dask worker or this process alike. An
  entry that cannot be pickled, or does not survive the round trip, is refused at registration
  with one line.
* **Identity.** :func:`identity_of` hashes what the entry computes: the function's bytecode,
  constants (nested functions included), default arguments, closure values and the plain
  values (numbers, strings, tuples) of the globals it reads, plus the formula, the parameters
  and the interval. A config naming a registered entry adds that identity to its digest
  (:func:`digest_suffix`), so a cell computed with an edited function is never reused. Built-in
  entries add nothing: their digests, cell keys and rows are unchanged.
* **One definition per name.** Registering a name again with the same identity is a no-op (a
  notebook cell run twice); with another identity it replaces the entry (its configs get a new
  digest, so their cells are computed anew).
"""

from __future__ import annotations

import hashlib
import math
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stelab.data import DISTRIBUTIONS, REGISTERED_DISTRIBUTIONS, Distribution
from stelab.errors import ConfigError
from stelab.surrogates import REGISTERED_SURROGATES, SURROGATES, Interval, Surrogate

__all__ = [
    "Registration",
    "digest_suffix",
    "identity_of",
    "install",
    "payload_for",
    "register_distribution",
    "register_surrogate",
]

_PLAIN = (int, float, str, bool, bytes, type(None))


@dataclass(frozen=True)
class Registration:
    """A registered entry: its kind (``surrogate`` or ``distribution``), name, the entry itself
    and its identity (a sha256 hex digest)."""

    kind: str
    name: str
    entry: Any
    identity: str


#: kind -> name -> Registration (this process)
_REGISTERED: dict[str, dict[str, Registration]] = {"surrogate": {}, "distribution": {}}


def _feed(h: Any, value: Any, depth: int = 0) -> None:
    """Hash ``value``: code objects by bytecode, names and constants (recursively), plain values
    and tuples of them by repr, anything else by its type name (its contents are not stable)."""
    if depth > 20:
        return
    if isinstance(value, types.CodeType):
        h.update(value.co_code)
        h.update(repr((value.co_names, value.co_varnames, value.co_freevars)).encode())
        for const in value.co_consts:
            _feed(h, const, depth + 1)
    elif isinstance(value, types.FunctionType):
        _feed(h, value.__code__, depth + 1)
        _feed(h, value.__defaults__, depth + 1)
        _feed(h, tuple(sorted((value.__kwdefaults__ or {}).items())), depth + 1)
        for cell in value.__closure__ or ():
            try:
                _feed(h, cell.cell_contents, depth + 1)
            except ValueError:  # an empty cell
                h.update(b"<empty>")
        for name in _global_names(value.__code__):
            if name in value.__globals__:
                found = value.__globals__[name]
                if isinstance(found, (*_PLAIN, tuple, types.FunctionType)):
                    h.update(name.encode())
                    _feed(h, found, depth + 1)
    elif isinstance(value, tuple | list):
        h.update(b"(")
        for item in value:
            _feed(h, item, depth + 1)
        h.update(b")")
    elif isinstance(value, _PLAIN):
        h.update(repr(value).encode())
    else:
        h.update(type(value).__qualname__.encode())


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def identity_of(fn: Callable[..., Any], *extra: Any) -> str:
    """A stable identity of a function and the values in ``extra``: sha256 over its bytecode,
    constants, defaults, closure values and the plain values of the globals it reads (see the
    module docstring). The same source gives the same identity in every process and session;
    an edit of the code or of such a value gives another."""
    h = hashlib.sha256()
    _feed(h, getattr(fn, "__func__", fn))
    for value in extra:
        _feed(h, value)
    return h.hexdigest()


def _shippable(obj: Any, what: str) -> bytes:
    """cloudpickle bytes of ``obj`` that load again, or a ConfigError naming ``what``."""
    import cloudpickle

    try:
        data = cloudpickle.dumps(obj)
        cloudpickle.loads(data)
    except Exception as err:  # noqa: BLE001 - any pickling failure means it cannot travel
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise ConfigError(
            f"{what}: cannot be shipped to a worker ({type(err).__name__}: {first}); use a plain "
            "function of numbers and arrays, without open files, locks or GPU handles"
        ) from None
    return data


def _check_name(name: Any, kind: str, builtin: dict[str, Any]) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"register_{kind}: name {name!r} is not allowed; allowed: an identifier")
    if name in builtin:
        raise ConfigError(f"register_{kind}: {name!r} is built in; choose another name")


def _check_params(params: dict[str, float], kind: str) -> dict[str, float]:
    out = {}
    for key, value in (params or {}).items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise ConfigError(f"register_{kind}: parameter {key!r} = {value!r}; allowed: a number")
        out[str(key)] = float(value)
    return out


def _store(reg: Registration, table: dict[str, Any]) -> Registration:
    known = _REGISTERED[reg.kind].get(reg.name)
    if known is not None and known.identity == reg.identity:
        return known
    _REGISTERED[reg.kind][reg.name] = reg
    table[reg.name] = reg.entry
    return reg


def register_surrogate(
    name: str,
    fn: Callable[..., Any] | None = None,
    *,
    formula: str,
    interval: Interval | tuple[float | None, float | None, bool] | None = None,
    params: dict[str, float] | None = None,
    positive: Sequence[str] = (),
) -> Surrogate:
    """Register a surrogate derivative sigma~'(h) under ``name`` (``train.ste = name``).

    Parameters
    ----------
    name : str
        An identifier that is not a built-in surrogate.
    fn : callable, optional
        Continuous surrogate ``fn(h, **params) -> Tensor``: same shape and dtype as the float
        tensor ``h`` (the pre-activations). It runs on the dense engine only.
    formula : str
        sigma~'(h) as text, e.g. ``"exp(-h^2 / 2)"`` (shown in summaries and messages).
    interval : Interval or (lo, hi, closed), optional
        For a {0, 1}-valued surrogate instead of ``fn``: sigma~'(h) = 1[lo < h < hi] (``<=``
        when closed; None = unbounded). Every engine runs it with exact decisions.
    params : dict of str to float, optional
        Parameters of ``fn`` with their defaults (``train.ste_params`` overrides them).
    positive : sequence of str
        The parameters that must be > 0.

    Returns
    -------
    Surrogate
        The registered entry. ConfigError (one line) for a bad name, a built-in name, a
        function that cannot be shipped to a worker, or one that does not return a finite
        tensor of the input's shape.
    """
    _check_name(name, "surrogate", SURROGATES)
    if isinstance(interval, tuple):
        interval = Interval(*interval)
    if (fn is None) == (interval is None):
        raise ConfigError("register_surrogate: give fn (continuous) or interval ({0, 1}), not both")
    entry = Surrogate(name, str(formula), interval=interval, fn=fn,
                      params=_check_params(params or {}, "surrogate"), positive=tuple(positive))
    if fn is not None:
        _try_surrogate(entry)
    _shippable(entry, f"register_surrogate: {name!r}")
    identity = identity_of(fn or (lambda: None), entry.formula, interval and (
        interval.lo, interval.hi, interval.closed), tuple(sorted(entry.params.items())),
        entry.positive)
    return _store(Registration("surrogate", name, entry, identity), REGISTERED_SURROGATES).entry


def _try_surrogate(entry: Surrogate) -> None:
    import torch

    h = torch.linspace(-3.0, 3.0, 13)
    try:
        out = entry(h)
    except Exception as err:  # noqa: BLE001 - reported as the one line below
        raise ConfigError(f"register_surrogate: {entry.name!r} fails on h = linspace(-3, 3, 13) "
                          f"({type(err).__name__}: {err})") from None
    if not isinstance(out, torch.Tensor) or out.shape != h.shape or not bool(
        torch.isfinite(out).all()
    ):
        raise ConfigError(f"register_surrogate: {entry.name!r} must return a finite tensor of the "
                          "input's shape")


def register_distribution(
    name: str,
    sampler: Callable[..., Any],
    *,
    params: dict[str, float] | None = None,
    bounds: dict[str, tuple[float, float]] | None = None,
) -> Distribution:
    """Register an input law under ``name`` (``data.distribution = name``).

    Parameters
    ----------
    name : str
        An identifier that is not a built-in distribution.
    sampler : callable
        ``sampler(rng, shape, **params) -> ndarray``: float32 draws of ``shape`` (last axis d)
        from the ``numpy.random.Generator`` ``rng`` only (so one seed gives the same data
        everywhere).
    params : dict of str to float, optional
        Its parameters with their defaults (``data.params`` overrides them).
    bounds : dict of str to (low, high), optional
        Inclusive allowed range of each parameter (default: any finite number).

    Returns
    -------
    Distribution
        The registered entry; ConfigError (one line) for a bad or built-in name, a sampler that
        cannot be shipped, or one that does not return finite float32 draws of the shape asked.
    """
    import numpy as np

    _check_name(name, "distribution", DISTRIBUTIONS)
    params = _check_params(params or {}, "distribution")
    bounds = {k: (float(v[0]), float(v[1])) for k, v in (bounds or {}).items()}
    stray = sorted(set(bounds) - set(params))
    if stray:
        raise ConfigError(f"register_distribution: bounds for {stray[0]!r}, which is not in params")
    bounds = {k: bounds.get(k, (-math.inf, math.inf)) for k in params}
    entry = Distribution(name, sampler, params, bounds)
    try:
        draw = entry.sample(np.random.default_rng(0), (3, 4))
    except Exception as err:  # noqa: BLE001 - reported as the one line below
        raise ConfigError(f"register_distribution: {name!r} fails to draw a (3, 4) sample "
                          f"({type(err).__name__}: {err})") from None
    if not isinstance(draw, np.ndarray) or draw.shape != (3, 4) or draw.dtype != np.float32 or (
        not np.isfinite(draw).all()
    ):
        raise ConfigError(f"register_distribution: {name!r} must return finite float32 draws of "
                          "the shape asked")
    _shippable(entry, f"register_distribution: {name!r}")
    identity = identity_of(sampler, tuple(sorted(params.items())), tuple(sorted(bounds.items())))
    return _store(Registration("distribution", name, entry, identity),
                  REGISTERED_DISTRIBUTIONS).entry


def _used_by(config: Any) -> list[Registration]:
    found = []
    surrogate = _REGISTERED["surrogate"].get(config.train.ste)
    if surrogate is not None:
        found.append(surrogate)
    law = _REGISTERED["distribution"].get(config.data.distribution)
    if law is not None:
        found.append(law)
    return found


def digest_suffix(config: Any) -> str:
    """What a config's digest adds for the registered entries it names: ``""`` when it names
    built-ins only (digests of built-in configs never change)."""
    return "".join(f"|{r.kind}:{r.name}:{r.identity}" for r in _used_by(config))


def payload_for(config: Any) -> bytes | None:
    """The registered entries ``config`` names, pickled by value for a worker; None if none."""
    used = _used_by(config)
    if not used:
        return None
    import cloudpickle

    return cloudpickle.dumps(used)


def install(payload: bytes | None) -> None:
    """Register, in this process (a worker), the entries of a :func:`payload_for` payload."""
    if not payload:
        return
    import cloudpickle

    tables = {"surrogate": REGISTERED_SURROGATES, "distribution": REGISTERED_DISTRIBUTIONS}
    for reg in cloudpickle.loads(payload):
        _store(reg, tables[reg.kind])
