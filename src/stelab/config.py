"""Experiment configuration: TOML -> validated pydantic models -> flat row fields.

A config has the sections ``[model] [data] [noise] [train] [run] [record]`` (see
``examples/quickstart.toml``). Unknown keys, wrong types and values outside their allowed range
raise :class:`~stelab.errors.ConfigError` with one line naming the field and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stelab.data import get_distribution
from stelab.errors import ConfigError
from stelab.quantizers import get_surrogate

NORMALIZATIONS = ("none", "center", "standardize", "whiten", "batchnorm")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Section):
    d: int = Field(gt=0, description="input dimension")
    m: int = Field(1, gt=0, description="hidden units (rows of one sample)")
    activation: Literal["sign", "step"] = "sign"
    teacher_balance: float = Field(0.5, ge=0.0, le=1.0, description="fraction of +1 in w*")


class DataConfig(_Section):
    distribution: str = "gaussian"
    params: dict[str, float] = Field(default_factory=dict)
    normalization: Literal["none", "center", "standardize", "whiten", "batchnorm"] = "none"

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
    n: int = Field(gt=0, description="training sample size")
    steps: int = Field(gt=0, description="iterations T")
    ste: str = "identity"
    ste_params: dict[str, float] = Field(default_factory=dict)
    weight_ste: Literal["identity", "clipped"] = "identity"
    step_size: float = Field(0.5, gt=0.0, description="c in eta = c sqrt(pi d/2) m kappa")
    init: Literal["zero", "small"] = "small"
    init_scale: float = Field(1e-3, ge=0.0)
    batch_size: int | None = Field(None, gt=0, description="absent = full batch")

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
        if self.batch_size is not None and self.batch_size > self.n:
            raise ConfigError(
                f"train.batch_size: {self.batch_size} exceeds train.n = {self.n}; "
                "allowed: 1..n, or absent for full batch"
            )
        return self


class RunConfig(_Section):
    trials: int = Field(1, gt=0)
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    engine: Literal["auto", "dense"] = "auto"
    memory_budget_mb: float | None = Field(
        None, gt=0, description="data budget per chunk of trials; absent = 1/4 of free RAM"
    )


class RecordConfig(_Section):
    trajectory: bool = Field(False, description="store the Hamming trajectory in each row")
    loss_trajectory: bool = Field(False, description="store the loss trajectory in each row")
    absorb_window: int = Field(
        0, ge=0, description="K of 'absorbed' (H = 0 in the last K steps); 0 = ceil(T / 10)"
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
        """A short stable hash of the full config (identifies a sweep cell)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @property
    def absorb_window(self) -> int:
        k = self.record.absorb_window
        return k if k > 0 else max(1, -(-self.train.steps // 10))


def _format_validation_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    if first["type"] == "missing":
        return f"{where}: required field is missing"
    ctx_error = first.get("ctx", {}).get("error")
    if isinstance(ctx_error, ConfigError):
        return str(ctx_error)
    got = first.get("input")
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


def parse_config(raw: dict[str, Any]) -> Config:
    """Validate a config mapping; raise ConfigError with one line naming the field."""
    try:
        return Config.model_validate(raw)
    except ConfigError:
        raise
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err) + _allowed_keys_hint(err)) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning I/O and syntax problems into ConfigError."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config: {path} is not valid TOML: {err}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate one experiment config from a TOML file."""
    return parse_config(read_toml(path))
