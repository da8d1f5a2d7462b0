"""The registry of experiments: every module of this package that defines
``EXPERIMENT = Experiment(...)`` (:mod:`stelab.experiments.registry`) is an experiment.

Adding an experiment is one new module here plus its table in the profiles
(``stelab/configs/reproduce_*.toml``): ``stelab reproduce``, ``stelab plot`` and the report loop
over :func:`experiments` and know none by name. :func:`register` adds one from elsewhere (tests,
a user's own study) for the running process.

Modules are found and imported on first use, not when this package is imported: the profile
and registry modules are imported by every experiment module, and importing the package must
not import them all (nor matplotlib).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

from stelab.experiments.registry import Experiment, SectionContext, Table

__all__ = ["Experiment", "SectionContext", "Table", "cell_tables", "experiments", "find",
           "register", "unregister"]

_found: list[Experiment] | None = None
_registered: dict[str, Experiment] = {}


def _order(experiment: Experiment) -> list:
    """Natural order of names: e1 < e1_horizon < e2 < ... < e10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", experiment.name)]


def _discover() -> list[Experiment]:
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "EXPERIMENT", None), Experiment):
            found.append(module.EXPERIMENT)
    return found


def _check_unique(registry: list[Experiment]) -> None:
    """Two experiments must not share a name, a table or a derived table."""
    seen: dict[str, str] = {}
    for exp in registry:
        for kind, names in (("experiment", [exp.name]), ("table", [t.name for t in exp.tables]),
                            ("derived table", exp.provides)):
            for name in names:
                key = f"{kind} {name!r}"
                if key in seen:
                    raise ValueError(f"{key} is defined by both experiment {seen[key]!r} "
                                     f"and {exp.name!r}")
                seen[key] = exp.name


def experiments() -> tuple[Experiment, ...]:
    """Every registered experiment, in name order."""
    global _found
    if _found is None:
        _found = _discover()
    registry = sorted([*_found, *_registered.values()], key=_order)
    _check_unique(registry)
    return tuple(registry)


def find(name: str) -> Experiment:
    """The experiment called ``name`` (KeyError if none)."""
    for exp in experiments():
        if exp.name == name:
            return exp
    raise KeyError(name)


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry of this process (replacing one of the same name that
    was registered this way); return it."""
    _registered[experiment.name] = experiment
    try:
        experiments()
    except ValueError:
        del _registered[experiment.name]
        raise
    return experiment


def unregister(name: str) -> None:
    """Remove an experiment added by :func:`register` (nothing if there is none)."""
    _registered.pop(name, None)


def cell_tables() -> dict[str, tuple[Any, str]]:
    """The engine-cell tables of every experiment: table name -> (cells builder, description).
    A builder maps a profile to the list of configs of the table."""
    return {t.name: (t.cells, t.description) for exp in experiments() for t in exp.tables
            if t.cells is not None}


def __getattr__(name: str) -> Any:
    # EXPERIMENTS: the mapping older code iterates (table -> (builder, description)); computed on
    # first use, since it imports every experiment module
    if name == "EXPERIMENTS":
        return cell_tables()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
