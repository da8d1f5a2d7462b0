"""Experiment configuration: TOML -> validated pydantic models -> flat row fields.

A config has the sections ``[model] [data] [noise] [train] [run] [record]`` (see
``examples/quickstart.toml``). Unknown keys, wrong types and values outside their allowed range
raise :class:`~stelab.errors.ConfigError` with one line naming the field and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stelab.data import get_distribution
from stelab.engine_registry import engine_names
from stelab.errors import ConfigError
from stelab.registration import digest_suffix
from stelab.surrogates import get_surrogate

#: the input normalizations of :mod:`stelab.normalize`, least to most invasive (the one list of
#: their names: ``diagnose`` recommends the first one predicted healthy, and figures order their
#: panels in this order)
Normalization = Literal["none", "center", "standardize", "batchnorm", "whiten"]
NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)


#: the largest integer a config may hold: every integer is stored in 64-bit columns and seeds
INT64_MAX = 2**63 - 1
#: the most trials of one config: their rows are held in memory (about 1 kB each)
MAX_TRIALS = 10**9
#: the largest memory budget accepted (1 EiB): beyond it the number can only be a typo
MAX_MEMORY_BUDGET_MB = 2.0**40


class _Section(BaseModel):
    # strict: a boolean is not an integer, a string is not a number (TOML types are kept);
    # allow_inf_nan=False: inf and NaN are refused in every float, parameter tables included
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ModelConfig(_Section):
    d: int = Field(gt=0, le=INT64_MAX, description="input dimension")
    m: int = Field(1, gt=0, le=INT64_MAX, description="hidden units (rows of one sample)")
    activation: Literal["sign", "step"] = "sign"
    teacher_balance: float = Field(0.5, ge=0.0, le=1.0, description="fraction of +1 in w*")


class DataConfig(_Section):
    distribution: str = "gaussian"
    params: dict[str, float] = Field(default_factory=dict)
    normalization: Normalization = "none"

    @model_validator(mode="after")
    def _known_distribution(self) -> DataConfig:
        get_distribution(self.distribution).resolve(self.params)
        return self


class NoiseConfig(_Section):
    kind: Literal["none", "flip", "gaussian"] = "none"
    level: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _level_needs_kind(self) -> NoiseConfig:
        if self.kind == "none" and self.level != 0.0:
            raise ConfigError(
                f"noise.level: {self.level} given with noise.kind = 'none'; "
                "set kind to 'flip' or 'gaussian', or level to 0"
            )
        return self


class TrainConfig(_Section):
    n: int = Field(gt=0, le=INT64_MAX, description="training sample size")
    steps: int = Field(gt=0, le=INT64_MAX, description="iterations T")
    ste: str = "identity"
    ste_params: dict[str, float] = Field(default_factory=dict)
    weight_ste: Literal["identity", "clipped"] = "identity"
    step_size: float = Field(0.5, gt=0.0, description="c in eta = c sqrt(pi d/2) m kappa")
    init: Literal["zero", "small"] = "small"
    init_scale: float = Field(1e-3, ge=0.0)
    batch_size: int | None = Field(None, gt=0, le=INT64_MAX, description="absent = full batch")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        surrogate = get_surrogate(self.ste)
        unknown = sorted(set(self.ste_params) - set(surrogate.params))
        if unknown:
            allowed = ", ".join(sorted(surrogate.params)) or "none"
            raise ConfigError(
                f"train.ste_params.{unknown[0]}: not a parameter of {self.ste!r}; "
                f"allowed: {allowed}"
            )
        for name in surrogate.positive:
            if name in self.ste_params and not self.ste_params[name] > 0:
                raise ConfigError(
                    f"train.ste_params.{name}: {self.ste_params[name]} is not allowed; "
                    "allowed: a finite number > 0"
                )
        if self.ste_params:
            _check_surrogate_finite(surrogate, self.ste_params)
        if self.batch_size is not None and self.batch_size > self.n:
            raise ConfigError(
                f"train.batch_size: {self.batch_size} exceeds train.n = {self.n}; "
                "allowed: 1..n, or absent for full batch"
            )
        return self


def _check_surrogate_finite(surrogate: Any, params: dict[str, float]) -> None:
    """Refuse surrogate parameters that make sigma~'(h) inf or NaN (e.g. a swish beta so
    large that cosh(beta h) overflows): the coarse gradient would be NaN, never a sign."""
    import torch

    h = torch.cat([-torch.logspace(-6, 6, 49), torch.zeros(1), torch.logspace(-6, 6, 49)])
    for dtype in (torch.float32, torch.float64):
        values = surrogate(h.to(dtype), **params)
        bad = ~torch.isfinite(values)
        if bool(bad.any()):
            name = sorted(params)[0]
            at = float(h[bad.nonzero()[0, 0]])
            raise ConfigError(
                f"train.ste_params.{name}: {params[name]} makes the surrogate "
                f"{surrogate.name!r} inf or NaN (at h = {at:g}, {dtype}); allowed: values for "
                "which it stays finite"
            )


class RunConfig(_Section):
    trials: int = Field(1, gt=0, le=MAX_TRIALS)
    seed: int = Field(0, ge=0, le=INT64_MAX)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    engine: str = Field(
        "auto", description="a registered engine (stelab.engine_registry), or auto = the "
        "supported engine with the lowest cost estimate"
    )
    memory_budget_mb: float | None = Field(
        None, gt=0, le=MAX_MEMORY_BUDGET_MB,
        description="data budget per chunk of trials; absent = 1/4 of free RAM",
    )


    @model_validator(mode="after")
    def _known_engine(self) -> RunConfig:
        allowed = ("auto", *engine_names())
        if self.engine not in allowed:
            raise ConfigError(f"run.engine: {self.engine!r} is not allowed; allowed: "
                              + ", ".join(allowed))
        return self


class RecordConfig(_Section):
    trajectory: bool = Field(False, description="store the Hamming trajectory in each row")
    loss_trajectory: bool = Field(False, description="store the loss trajectory in each row")
    absorb_window: int = Field(
        0, ge=0, le=INT64_MAX,
        description="K of 'absorbed' (H = 0 in the last K steps); 0 = ceil(T / 10)",
    )
    checkpoints: list[int] = Field(
        default_factory=list,
        description="horizons T' <= T at which the ergodic average is also evaluated",
    )


class Config(_Section):
    """One experiment: a single point of the parameter space, run for ``run.trials`` trials."""

    model: ModelConfig
    data: DataConfig = DataConfig()
    noise: NoiseConfig = NoiseConfig()
    train: TrainConfig
    run: RunConfig = RunConfig()
    record: RecordConfig = RecordConfig()

    @model_validator(mode="after")
    def _checkpoints_within_horizon(self) -> Config:
        bad = [c for c in self.record.checkpoints if not 1 <= c <= self.train.steps]
        if bad:
            raise ConfigError(
                f"record.checkpoints: {bad[0]} is outside the allowed range 1..train.steps "
                f"= {self.train.steps}"
            )
        return self

    def flat(self) -> dict[str, Any]:
        """The config as flat scalar row columns (see :data:`FLAT_FIELDS`)."""
        return {
            "d": self.model.d,
            "m": self.model.m,
            "activation": self.model.activation,
            "teacher_balance": self.model.teacher_balance,
            "distribution": self.data.distribution,
            "data_params": json.dumps(self.data.params, sort_keys=True),
            "normalization": self.data.normalization,
            "noise_kind": self.noise.kind,
            "noise_level": self.noise.level,
            "n": self.train.n,
            "steps": self.train.steps,
            "ste": self.train.ste,
            "ste_params": json.dumps(self.train.ste_params, sort_keys=True),
            "weight_ste": self.train.weight_ste,
            "step_size": self.train.step_size,
            "init": self.train.init,
            "init_scale": self.train.init_scale,
            "batch_size": self.train.batch_size if self.train.batch_size is not None else 0,
            "trials": self.run.trials,
            "seed": self.run.seed,
            "device": self.run.device,
            "dtype": self.run.dtype,
        }

    def canonical_json(self) -> str:
        """A canonical JSON text of every field (stable key order), for hashing and manifests."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """A short stable hash of the full config (identifies a sweep cell); a surrogate or input
        law registered at run time enters it by the identity of its function
        (:func:`stelab.registration.digest_suffix`; nothing for the built-ins)."""
        text = self.canonical_json() + digest_suffix(self)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def absorb_window(self) -> int:
        k = self.record.absorb_window
        return k if k > 0 else max(1, -(-self.train.steps // 10))


def _field_info(loc: tuple[Any, ...]) -> Any:
    """The pydantic FieldInfo at ``loc`` (a section and key), or None inside tables and lists."""
    model: type[BaseModel] = Config
    info = None
    for part in loc:
        if info is not None:
            return None  # deeper than a field: a parameter table entry or a list item
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            model, info = info.annotation, None
    return info


def _number(x: float) -> str:
    """A bound as text: whole numbers in full (2**63 - 1, not 9.22e+18), others with :g."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _allowed(loc: tuple[Any, ...], kind: str) -> str:
    """The values a numeric field allows, as text: ``an integer in [1, 9223372036854775807]``."""
    info = _field_info(loc)
    bounds = {}
    for item in getattr(info, "metadata", []):
        for name in ("gt", "ge", "lt", "le"):
            if getattr(item, name, None) is not None:
                bounds[name] = getattr(item, name)
    noun = "an integer" if kind == "int" else "a finite number"
    low = f"> {_number(bounds['gt'])}" if "gt" in bounds else (
        f">= {_number(bounds['ge'])}" if "ge" in bounds else None)
    high = f"<= {_number(bounds['le'])}" if "le" in bounds else (
        f"< {_number(bounds['lt'])}" if "lt" in bounds else None)
    parts = [p for p in (low, high) if p]
    text = f"{noun} {' and '.join(parts)}" if parts else noun
    annotation = getattr(info, "annotation", None)
    return text + (", or absent" if annotation is not None and "None" in str(annotation) else "")


def _format_validation_error(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    where = ".".join(str(p) for p in loc) or "config"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key"
    if kind == "missing":
        return f"{where}: required field is missing"
    ctx_error = first.get("ctx", {}).get("error")
    if isinstance(ctx_error, ConfigError):
        return str(ctx_error)
    got = first.get("input")
    if kind.startswith("int_") or kind in ("greater_than", "greater_than_equal", "less_than",
                                          "less_than_equal", "finite_number") or kind.startswith(
            "float_"):
        info = _field_info(loc)
        annotation = str(getattr(info, "annotation", ""))
        numeric = "int" if kind.startswith("int_") or "int" in annotation else "float"
        return f"{where}: {got!r} is not allowed; allowed: {_allowed(loc, numeric)}"
    if kind == "bool_type":
        return f"{where}: {got!r} is not allowed; allowed: true or false"
    got_text = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{where}: {first['msg']}{got_text}"


def _allowed_keys_hint(err: ValidationError) -> str:
    """For an unknown key, name the keys its section allows."""
    first = err.errors()[0]
    if first["type"] != "extra_forbidden":
        return ""
    section_model: type[BaseModel] = Config
    for part in first["loc"][:-1]:
        field = section_model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            return ""
        section_model = field.annotation
    return "; allowed: " + ", ".join(section_model.model_fields)


def sample_size_of(n_over_d: Any, d: Any) -> int:
    """n = round(n_over_d * d), halves to even (Python's ``round``: 2.5 -> 2, 3.5 -> 4).

    Parameters
    ----------
    n_over_d : float
        Samples per dimension, > 0 and finite.
    d : int
        The dimension (``model.d``).

    Returns
    -------
    int
        n >= 1; ConfigError (naming ``train.n_over_d``) when ``n_over_d`` is not a positive
        number or when ``n_over_d * d`` rounds to 0.
    """
    if isinstance(n_over_d, bool) or not isinstance(n_over_d, int | float) or not (
        math.isfinite(n_over_d) and n_over_d > 0
    ):
        raise ConfigError(f"train.n_over_d: {n_over_d!r} is not allowed; allowed: a number > 0")
    if isinstance(d, bool) or not isinstance(d, int):
        raise ConfigError("train.n_over_d: needs an integer model.d to give n = round(n_over_d d)")
    n = round(n_over_d * d)
    if n < 1:
        raise ConfigError(
            f"train.n_over_d: {n_over_d!r} x model.d = {d} rounds to n = 0; allowed: "
            "n_over_d * d >= 0.5"
        )
    return n


def resolve_n_over_d(tree: dict[str, Any]) -> dict[str, Any]:
    """The config mapping with ``train.n_over_d`` replaced by ``train.n`` (:func:`sample_size_of`;
    ``tree`` itself is left as it is). Giving both ``train.n`` and ``train.n_over_d`` is a
    ConfigError."""
    train = tree.get("train") if isinstance(tree, dict) else None
    if not isinstance(train, dict) or "n_over_d" not in train:
        return tree
    if "n" in train:
        raise ConfigError("train.n_over_d: give train.n or train.n_over_d, not both")
    model = tree.get("model")
    d = model.get("d") if isinstance(model, dict) else None
    train = {key: value for key, value in train.items() if key != "n_over_d"}
    train["n"] = sample_size_of(tree["train"]["n_over_d"], d)
    return {**tree, "train": train}


def parse_config(raw: dict[str, Any]) -> Config:
    """Validate a config mapping (the TOML tables as nested dicts).

    Parameters
    ----------
    raw : dict
        Sections ``model``, ``data``, ``noise``, ``train``, ``run``, ``record`` (each a dict of
        keys; absent keys take their defaults; ``model.d``, ``train.n`` (or ``train.n_over_d``,
        :func:`resolve_n_over_d`) and ``train.steps`` are required).

    Returns
    -------
    Config
        The validated, frozen config.

    Raises
    ------
    ConfigError
        One line naming the field and what it allows (unknown key, wrong type, out of range).

    Examples
    --------
    >>> cfg = parse_config({"model": {"d": 32}, "train": {"n": 100, "steps": 50}})
    >>> cfg.model.d, cfg.train.n, cfg.run.engine
    (32, 100, 'auto')
    >>> parse_config({"model": {"d": 32}, "train": {"n": 100, "steps": 50},
    ...               "run": {"engine": "gpu"}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stelab.errors.ConfigError: run.engine: 'gpu' is not allowed; allowed: auto, dense, ...
    """
    raw = resolve_n_over_d(raw)
    try:
        return Config.model_validate(raw)
    except ConfigError:
        raise
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err) + _allowed_keys_hint(err)) from None


def read_toml(path: str | Path, field: str = "config") -> dict[str, Any]:
    """Read a TOML file, turning I/O, encoding and syntax problems into ConfigError whose line
    starts with ``field`` (what the file was given as: a config, ``--profile``)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{field}: file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{field}: {path} is a folder; give a TOML file") from None
    except PermissionError:
        raise ConfigError(f"{field}: cannot read {path}: permission denied") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{field}: {path} is not a text file (not UTF-8); give a TOML file") \
            from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{field}: {path} is not valid TOML: {err}") from None
    except OSError as err:
        raise ConfigError(f"{field}: cannot read {path}: {err.strerror or err}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate one experiment config from a TOML file.

    Parameters
    ----------
    path : str or Path
        A TOML file with the sections of :func:`parse_config` (``examples/quickstart.toml``).

    Returns
    -------
    Config
        The validated config.

    Raises
    ------
    ConfigError
        The file cannot be read or parsed, or a field is invalid (one line naming it).
    """
    return parse_config(read_toml(path))
