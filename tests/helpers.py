"""Helpers the tests share (a module of its own: conftest.py holds the fixtures only)."""

from __future__ import annotations

from typing import Any

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
