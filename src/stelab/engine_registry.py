"""The registry of engines: what the planner, ``run_experiment`` and the config know of an engine.

An engine is an object of a subclass of :class:`Engine` (the template: override its four
methods and set ``name``), held as ``ENGINE`` by its module. The built-in engines, identical
outputs bit for bit:

* ``dense`` (:mod:`stelab.engine.dense`): every step reads the whole sample; runs every config;
* ``incremental`` (:mod:`stelab.engine.incremental`): one step of all trials of a chunk at a
  time, updated from the flipped columns;
* ``trialwise`` (:mod:`stelab.engine.trialwise`): each trial's whole run in one compiled call.

``run.engine`` accepts ``auto`` and every registered name. ``auto`` takes, among the engines
that support the config, the one with the lowest :meth:`Engine.cost` (the first registered on a
tie). The planner (:mod:`stelab.engine.budget`) takes the first of the engine's
:meth:`Engine.layouts` in which a chunk of the minimum size fits the memory budget; under
``auto``, an engine none of whose layouts fits goes on to its ``fallback`` engine.

Adding an engine (docs/architecture.md, "Add an engine"): one module that defines
``ENGINE = MyEngine()``, plus its entry in :data:`BUILTIN`; or, from elsewhere (a test, a
user's own engine), :func:`register_engine` for the running process. The config, the planner
and ``run_experiment`` know no engine by name.

This module imports no engine (nor torch): :mod:`stelab.config` validates ``run.engine`` with
:func:`engine_names`, and a built-in engine's module is imported on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from stelab.config import Config
    from stelab.engine.problem import Problem
    from stelab.engine.recorder import ChunkOutput
    from stelab.engine.traffic import Traffic

__all__ = ["BUILTIN", "COST_FLOORS", "Engine", "Layout", "cost_floor", "engine_names",
           "engines", "get_engine", "register_engine", "unregister_engine"]

#: the built-in engines: name -> the module that defines ``ENGINE`` (in the order ``auto``
#: breaks ties of cost in)
BUILTIN: dict[str, str] = {
    "dense": "stelab.engine.dense",
    "incremental": "stelab.engine.incremental",
    "trialwise": "stelab.engine.trialwise",
}

#: the least :meth:`Engine.cost` each built-in engine returns for any config: ``auto`` does not
#: import an engine whose floor is above the best cost already found (a run that the
#: trial-wise engine takes loads neither batched engine, nor torch). Checked at selection.
COST_FLOORS: dict[str, float] = {"dense": 1.0, "incremental": 0.5, "trialwise": 0.25}

_loaded: dict[str, Engine] = {}
_registered: dict[str, Engine] = {}


@dataclass(frozen=True)
class Layout:
    """How an engine holds a chunk in memory.

    Parameters
    ----------
    name : str
        The layout's name (the rows do not record it; ``stelab bench`` prints it).
    per_trial : int
        Bytes per trial of a chunk: its data and state (:func:`stelab.engine.problem.\
trial_bytes`) plus what the engine adds per trial.
    fixed : int
        Bytes once per chunk that the engine adds (the planner adds the build's own
        temporaries, :func:`stelab.engine.problem.build_peak_extra`).
    """

    name: str
    per_trial: int
    fixed: int = 0


class Engine:
    """The template of an engine: a subclass sets ``name`` and overrides the four methods.

    ``fallback`` names the engine the planner goes on with, under ``run.engine = "auto"``, when
    none of this engine's layouts holds a chunk of the minimum size within the budget (None:
    the engine then runs in its last layout, with the chunk that fits). ``host_arrays``: the
    engine also runs a chunk built in numpy (it then needs no torch).
    """

    name: ClassVar[str] = ""
    fallback: ClassVar[str | None] = None
    #: whether :meth:`run` takes a chunk built in numpy
    #: (:class:`stelab.engine.host_problem.HostProblem`, no torch) where the config allows
    host_arrays: ClassVar[bool] = False

    def unsupported(self, cfg: Config) -> str | None:
        """Why this engine cannot run ``cfg``: one line that starts with the field
        (``"train.ste: ..."``), or None when it can."""
        return None

    def cost(self, cfg: Config) -> float:
        """Estimated time of a trial-step of ``cfg``, relative to the dense engine's (1.0):
        ``auto`` takes the supported engine with the lowest estimate."""
        raise NotImplementedError

    def layouts(self, cfg: Config) -> tuple[Layout, ...]:
        """The memory layouts of ``cfg`` on this engine, in the planner's order of preference
        (the last one needs the least memory)."""
        raise NotImplementedError

    def run(self, cfg: Config, problem: Problem, layout: str,
            traffic: Traffic | None = None) -> ChunkOutput:
        """Run ``cfg.train.steps`` steps of every trial of ``problem`` (one planned chunk) in
        ``layout``; ``traffic``, when given, counts what was read."""
        raise NotImplementedError


def engine_names() -> tuple[str, ...]:
    """The name of every engine: the built-in ones, then those registered (no import)."""
    return tuple(dict.fromkeys([*BUILTIN, *_registered]))


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (KeyError naming the registered ones if there is none)."""
    if name in _registered:
        return _registered[name]
    if name not in BUILTIN:
        raise KeyError(f"no engine {name!r}; registered: {', '.join(engine_names())}")
    if name not in _loaded:
        engine = importlib.import_module(BUILTIN[name]).ENGINE
        if engine.name != name:
            raise TypeError(f"{BUILTIN[name]}.ENGINE is called {engine.name!r}, not {name!r}")
        _loaded[name] = engine
    return _loaded[name]


def cost_floor(name: str) -> float:
    """The least cost the engine ``name`` can declare (:data:`COST_FLOORS`; 0 for an engine
    registered at run time, which is therefore always asked)."""
    return 0.0 if name in _registered else COST_FLOORS.get(name, 0.0)


def engines() -> tuple[Engine, ...]:
    """Every engine, in the order of :func:`engine_names` (imports the built-in ones)."""
    return tuple(get_engine(name) for name in engine_names())


def register_engine(engine: Engine) -> Engine:
    """Add ``engine`` for the running process (it replaces a built-in one of the same name while
    registered); return it."""
    if not isinstance(engine, Engine) or not engine.name or engine.name == "auto":
        raise TypeError("register_engine: give an Engine instance with a name other than 'auto'")
    _registered[engine.name] = engine
    return engine


def unregister_engine(name: str) -> None:
    """Remove an engine added by :func:`register_engine` (nothing if there is none)."""
    _registered.pop(name, None)
