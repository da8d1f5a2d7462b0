"""Reproduction profiles: the embedded ``quick`` and ``full`` TOML files, or a user's own.

A profile has a ``[base]`` table (any config sections) and one table per experiment (its
``Experiment.profile_table``, e.g. ``[e1]``) holding its axes. Experiments turn it into cells
(one Config each) with :func:`cell`, which deep-merges overrides into the base and validates
the result.
"""

from __future__ import annotations

import copy
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from stelab.config import Config, parse_config, read_toml
from stelab.errors import ConfigError

EMBEDDED = ("quick", "full", "scale")


def load_profile(name_or_path: str | Path) -> dict[str, Any]:
    """The embedded profile ``quick``/``full``, or a profile TOML file given by path."""
    if str(name_or_path) in EMBEDDED:
        text = resources.files("stelab.configs").joinpath(f"reproduce_{name_or_path}.toml")
        return tomllib.loads(text.read_text())
    return read_toml(name_or_path, field="--profile")


def profile_text(name_or_path: str | Path) -> str:
    """The profile's TOML source, stored beside the results for exact reruns."""
    if str(name_or_path) in EMBEDDED:
        path = resources.files("stelab.configs").joinpath(f"reproduce_{name_or_path}.toml")
        return path.read_text()
    path = Path(name_or_path)
    if not path.is_file():  # a traceback otherwise: this is read before the TOML is parsed
        raise ConfigError(f"--profile: no such file {str(path)!r}; allowed: "
                          f"{', '.join(EMBEDDED)} or the path of a profile TOML file")
    return path.read_text()


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def cell(profile: dict[str, Any], **sections: dict[str, Any]) -> Config:
    """A validated Config: the profile's [base] with ``sections`` merged over it."""
    return parse_config(_merge(profile.get("base", {}), sections))


def section(profile: dict[str, Any], name: str) -> dict[str, Any]:
    """The experiment table ``name`` of the profile (ConfigError if missing)."""
    try:
        return profile[name]
    except KeyError:
        raise ConfigError(f"profile: missing table [{name}]") from None


def sample_size(d: int, n_over_d: float) -> int:
    """n = ceil(n_over_d * d), at least 1."""
    return max(1, math.ceil(n_over_d * d))
