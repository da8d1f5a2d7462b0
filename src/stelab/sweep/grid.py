"""Sweep configs -> configs -> cells.

A sweep config has the sections of a run config (``[model] [data] [noise] [train] [run]
[record]``) where a value may be a list, plus a ``[sweep]`` table::

    [sweep]
    axes = ["model.d", "train.n"]      # each listed key holds a list: a grid axis
    zip = [["noise.kind", "noise.level"]]  # optional: lists of equal length varied together
    block_trials = 64                  # optional: trials per cell (default: from the work size)

The grid is the Cartesian product of the axes in the order listed (the last varies fastest),
then the zip groups, each counting as one axis. A list under a key that is not an axis is an
error, so a typo never silently multiplies the work. Dotted keys reach into tables too
(``data.params.df``).

``train.n_over_d`` (a number, or a list as an axis) gives the sample size per dimension instead
of ``train.n``: each cell gets n = round(n_over_d * model.d), halves rounded to even (Python's
``round``), at least 1 (see :func:`sample_size_of`). The rows hold that n.

A :class:`Cell` is one config and one block of trial ids ``range(start, stop)``; its key is
``f"{config.digest()}-t{start}-{stop}"``, a function of the full config and of the block only.
Because a trial's result does not depend on its batch (:mod:`stelab.seeds`), the rows of a
config are the same however its trials are split into blocks.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stelab.config import Config, parse_config, resolve_n_over_d, sample_size_of
from stelab.errors import ConfigError

SWEEP_KEYS = ("axes", "zip", "block_trials", "name")

#: default work per cell (flops-ish, see :func:`trial_flops`): a few seconds on one core, so a
#: cell amortizes its scheduling and file overhead while large trial counts still spread out.
TARGET_CELL_FLOPS = 2e10
#: least input data per cell (values n m d, summed over its trials). The flops above count every
#: step, but most trials stop long before ``train.steps``: such a trial costs about building its
#: problem, ~6 ns a value (measured: 13 ms at d = 256, n = 8192), while a cell costs ~15 ms more
#: (worker round trip, cell file, merge). Cells of at least this many values (>= ~0.2 s even
#: when every trial stops at once) keep that overhead under a tenth; measured on an E4-like
#: sweep of 128 trials on 2 workers, 16 cells instead of 128 took 6.5 s instead of 9.1 s.
MIN_CELL_VALUES = 1 << 25
#: ... but no more dense work than this per cell (~100 s at the dense engine's two passes over
#: the data at 20 GB/s): trials that are small in data but never stop (label noise, long
#: horizons) stay spread over enough cells to keep every worker busy to the end.
MAX_CELL_FLOPS = 50 * TARGET_CELL_FLOPS


@dataclass(frozen=True)
class Cell:
    """One unit of sweep work: the trials ``range(start, stop)`` of ``config``.

    ``labels`` (the grid coordinates, for messages) are not part of the identity.
    """

    config: Config
    start: int
    stop: int
    labels: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """``<config digest>-t<start>-<stop>``: names the cell's file under DIR/cells/."""
        return f"{self.config.digest()}-t{self.start}-{self.stop}"

    @property
    def trials(self) -> range:
        return range(self.start, self.stop)

    def describe(self) -> str:
        """The grid coordinates and trial block, for messages: ``model.d=16, train.n=64 [0:8)``."""
        coords = ", ".join(f"{k}={v!r}" for k, v in self.labels)
        block = f"trials [{self.start}:{self.stop})"
        return f"{coords}, {block}" if coords else f"config {self.config.digest()}, {block}"


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep config: the configs of the grid, their coordinates and the block size."""

    configs: list[Config]
    labels: list[tuple[tuple[str, Any], ...]]
    axes: list[str]
    block_trials: int | None
    name: str | None = None


def trial_flops(cfg: Config) -> float:
    """Flops-ish of one trial: T steps x two passes over the batch, 4 B m d (+ one loss pass).

    B = train.batch_size or n. This is an estimate of the arithmetic, not a measurement.
    """
    batch = cfg.train.batch_size or cfg.train.n
    per_step = 4.0 * batch * cfg.model.m * cfg.model.d
    return per_step * cfg.train.steps + 2.0 * cfg.train.n * cfg.model.m * cfg.model.d


def trial_values(cfg: Config) -> int:
    """Input values of one trial: n x m x d (the floats its data tensor holds)."""
    return cfg.train.n * cfg.model.m * cfg.model.d


def default_block_trials(cfg: Config) -> int:
    """Trials per cell when not given: the largest power of two whose work stays under
    :data:`TARGET_CELL_FLOPS`; or, if that is more, the smallest whose inputs reach
    :data:`MIN_CELL_VALUES`, capped by :data:`MAX_CELL_FLOPS`; at most ``run.trials``. Depends
    on the config only, never on the executor, so a resumed sweep finds the same cells."""
    flops = max(trial_flops(cfg), 1.0)
    by_work = _power_of_two_at_most(TARGET_CELL_FLOPS // flops)
    by_data = min(_power_of_two_at_least(-(-MIN_CELL_VALUES // trial_values(cfg))),
                  _power_of_two_at_most(MAX_CELL_FLOPS // flops))
    return min(cfg.run.trials, max(by_work, by_data))


def _power_of_two_at_most(x: float) -> int:
    """The largest power of two <= x, and 1 when x < 2."""
    return 1 << (max(1, int(x)).bit_length() - 1)


def _power_of_two_at_least(k: int) -> int:
    """The smallest power of two >= k (k >= 1)."""
    return 1 << (k - 1).bit_length()


def make_cells(
    configs: Iterable[Config],
    block_trials: int | None = None,
    labels: Sequence[tuple[tuple[str, Any], ...]] | None = None,
) -> list[Cell]:
    """Split each config's trials ``0 .. run.trials-1`` into consecutive blocks of
    ``block_trials`` (default :func:`default_block_trials`); one cell per block."""
    if block_trials is not None and block_trials < 1:
        raise ConfigError(f"sweep.block_trials: {block_trials} is not allowed; allowed: >= 1")
    configs = list(configs)
    cells: list[Cell] = []
    for i, cfg in enumerate(configs):
        size = block_trials or default_block_trials(cfg)
        label = labels[i] if labels is not None else ()
        for start in range(0, cfg.run.trials, size):
            cells.append(Cell(cfg, start, min(start + size, cfg.run.trials), label))
    return cells


def _list_paths(node: Any, prefix: str = "") -> dict[str, list]:
    """Dotted paths of every list value inside nested tables."""
    found: dict[str, list] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, list):
                found[path] = value
            elif isinstance(value, dict):
                found.update(_list_paths(value, path))
    return found


def _set_path(tree: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        tree = tree[part]
    tree[parts[-1]] = value


def _same_value(a: Any, b: Any) -> bool:
    # TOML 1 and 1.0 are different values for the user but the same config after validation
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) or (
        isinstance(a, int | float) and isinstance(b, int | float) and a == b
        and not isinstance(a, bool) and not isinstance(b, bool)
    )


def _axis_values(name: str, lists: dict[str, list], used: set[str]) -> list:
    if name in used:
        raise ConfigError(f"sweep.axes: {name!r} is listed twice; each key may be one axis only")
    used.add(name)
    if name not in lists:
        raise ConfigError(
            f"sweep.axes: {name!r} has no list of values in the config; "
            f"give it one, e.g. {name.rsplit('.', 1)[-1]} = [a, b]"
        )
    values = lists[name]
    if not values:
        raise ConfigError(f"{name}: the axis has no values; allowed: a non-empty list")
    for i, a in enumerate(values):
        for b in values[:i]:
            if _same_value(a, b):
                raise ConfigError(f"{name}: the axis lists the value {a!r} twice")
    return values


def _parse_sweep_table(table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError("sweep: must be a table, e.g. [sweep] axes = [\"model.d\"]")
    unknown = sorted(set(table) - set(SWEEP_KEYS))
    if unknown:
        raise ConfigError(f"sweep.{unknown[0]}: unknown key; allowed: {', '.join(SWEEP_KEYS)}")
    axes = table.get("axes", [])
    if not isinstance(axes, list) or not all(isinstance(a, str) for a in axes):
        raise ConfigError('sweep.axes: must be a list of dotted keys, e.g. ["model.d", "train.n"]')
    groups = table.get("zip", [])
    if groups and all(isinstance(g, str) for g in groups):
        groups = [groups]  # zip = ["a", "b"] is one group
    if not isinstance(groups, list) or not all(
        isinstance(g, list) and g and all(isinstance(k, str) for k in g) for g in groups
    ):
        raise ConfigError(
            "sweep.zip: must be a list of key groups, e.g. [[\"model.d\", \"train.n\"]]"
        )
    block = table.get("block_trials")
    if block is not None and (isinstance(block, bool) or not isinstance(block, int) or block < 1):
        raise ConfigError(f"sweep.block_trials: {block!r} is not allowed; allowed: an integer >= 1")
    name = table.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError("sweep.name: must be a string")
    return {"axes": axes, "zip": groups, "block_trials": block, "name": name}


def parse_sweep(raw: dict[str, Any]) -> SweepSpec:
    """Validate a sweep config mapping and expand its grid (every cell config validated)."""
    raw = json.loads(json.dumps(raw))  # a deep copy we may edit
    sweep = _parse_sweep_table(raw.pop("sweep", {}))
    lists = _list_paths(raw)
    used: set[str] = set()
    dims: list[list[tuple[tuple[str, Any], ...]]] = []
    for name in sweep["axes"]:
        dims.append([((name, v),) for v in _axis_values(name, lists, used)])
    for group in sweep["zip"]:
        columns = [_axis_values(name, lists, used) for name in group]
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            sizes = ", ".join(f"{n}: {len(c)}" for n, c in zip(group, columns, strict=True))
            raise ConfigError(f"sweep.zip: the lists of a group must have equal lengths ({sizes})")
        dims.append([tuple(zip(group, row, strict=True)) for row in zip(*columns, strict=True)])
    stray = sorted(set(lists) - used)
    if stray:
        raise ConfigError(
            f"{stray[0]}: a list of values ({lists[stray[0]]!r}) but not a sweep axis; "
            f"add \"{stray[0]}\" to [sweep] axes, or give a single value"
        )
    configs: list[Config] = []
    labels: list[tuple[tuple[str, Any], ...]] = []
    seen: dict[str, tuple] = {}
    for combo in itertools.product(*dims):
        coords = tuple(pair for group in combo for pair in group)
        tree = json.loads(json.dumps(raw))
        for path, value in coords:
            _set_path(tree, path, value)
        where = ", ".join(f"{k}={v!r}" for k, v in coords)
        try:
            cfg = parse_config(tree)
        except ConfigError as err:
            text = f"{err} (in the sweep cell {where})" if coords else str(err)
            raise ConfigError(text) from None
        digest = cfg.digest()
        if digest in seen:
            other = ", ".join(f"{k}={v!r}" for k, v in seen[digest])
            raise ConfigError(f"sweep: the cells {other} and {where} are the same config")
        seen[digest] = coords
        configs.append(cfg)
        labels.append(coords)
    axes = [name for dim in dims for name, _ in dim[0]] if dims else []
    return SweepSpec(configs, labels, axes, sweep["block_trials"], sweep["name"])


def expand_grid(raw: dict[str, Any]) -> list[Config]:
    """The configs of a sweep config mapping (TOML dict), in grid order."""
    return parse_sweep(raw).configs


def sweep_cells(spec: SweepSpec) -> list[Cell]:
    """The cells of a parsed sweep, in grid order, each config's trial blocks consecutive."""
    return make_cells(spec.configs, spec.block_trials, spec.labels)


__all__ = [
    "Cell",
    "SweepSpec",
    "MAX_CELL_FLOPS",
    "MIN_CELL_VALUES",
    "TARGET_CELL_FLOPS",
    "default_block_trials",
    "expand_grid",
    "make_cells",
    "parse_sweep",
    "resolve_n_over_d",
    "sample_size_of",
    "sweep_cells",
    "trial_flops",
]
