"""Shared test helpers."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from stelab.config import Config, parse_config


def make_config(**sections: dict[str, Any]) -> Config:
    """A small valid config; keyword arguments override whole-section keys."""
    raw: dict[str, dict[str, Any]] = {
        "model": {"d": 16},
        "train": {"n": 64, "steps": 20},
        "run": {"trials": 4, "seed": 0, "device": "cpu"},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return parse_config(raw)


@pytest.fixture(autouse=True)
def _deterministic_threads():
    """Keep torch on the machine's two cores, as CI runs it."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield
