"""Resumable parameter sweeps: grid expansion, cell store, executors (local pool, Dask), runner.

Library API (what ``stelab sweep`` and ``stelab reproduce`` use)::

    from stelab.sweep import expand_grid, make_cells, run_cells
    configs = expand_grid(raw_toml_dict)          # list[Config], grid order
    rows = run_cells(configs, "runs/e1", executor="local", workers=None)

See docs/sweeps.md for the config format, the folder layout and running on Slurm or Dask.
"""

from stelab.sweep.executors import (
    DaskExecutor,
    Executor,
    LocalExecutor,
    SerialExecutor,
    WorkerDied,
    make_executor,
)
from stelab.sweep.grid import (
    Cell,
    SweepSpec,
    default_block_trials,
    expand_grid,
    make_cells,
    parse_sweep,
    sweep_cells,
    trial_flops,
)
from stelab.sweep.runner import (
    TIMING_COLUMNS,
    SweepFailedError,
    SweepInterrupted,
    SweepReport,
    drop_timing,
    execute_sweep,
    plan_cells,
    run_cells,
)
from stelab.sweep.store import CorruptCellError, SweepStore, SweepStoreError

__all__ = [
    "TIMING_COLUMNS",
    "Cell",
    "CorruptCellError",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "SerialExecutor",
    "SweepFailedError",
    "SweepInterrupted",
    "SweepReport",
    "SweepSpec",
    "SweepStore",
    "SweepStoreError",
    "WorkerDied",
    "default_block_trials",
    "drop_timing",
    "execute_sweep",
    "expand_grid",
    "make_cells",
    "make_executor",
    "parse_sweep",
    "plan_cells",
    "run_cells",
    "sweep_cells",
    "trial_flops",
]
