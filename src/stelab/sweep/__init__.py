"""Resumable parameter sweeps: grid expansion (``grid``), planning (``plan``), the work of one
cell (``worker``), executors (``executors``: serial, local pool; ``dask_executor``), the cell
store (``store``), the progress bar (``progress``) and the orchestration (``runner``).

Library API (what ``stelab sweep`` and ``stelab reproduce`` use)::

    from stelab.sweep import Execution, expand_grid, make_cells, run_cells
    configs = expand_grid(raw_toml_dict)          # list[Config], grid order
    rows = run_cells(configs, "runs/e1", executor="local", workers=None)
    rows = run_cells(configs, "runs/e1", execution=Execution("dask", scheduler="tcp://h:8786"))
    rows = run_sweep("examples/sweep_small.toml", "runs/small")  # a sweep TOML, as `stelab sweep`

See docs/sweeps.md for the config format, the folder layout and running on Slurm or Dask.
"""

from stelab.sweep.dask_executor import DaskExecutor
from stelab.sweep.execution_settings import Execution, make_executor
from stelab.sweep.executors import (
    Executor,
    LocalExecutor,
    SerialExecutor,
    WorkerDied,
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
from stelab.sweep.plan import SweepPlan, plan_cells
from stelab.sweep.runner import (
    TIMING_COLUMNS,
    SweepFailedError,
    SweepInterrupted,
    drop_timing,
    execute_sweep,
    run_cells,
    run_sweep,
)
from stelab.sweep.store import CorruptCellError, SweepStore, SweepStoreError
from stelab.sweep.summary import SweepReport, print_failures

__all__ = [
    "TIMING_COLUMNS",
    "Cell",
    "CorruptCellError",
    "DaskExecutor",
    "Execution",
    "Executor",
    "LocalExecutor",
    "SerialExecutor",
    "SweepFailedError",
    "SweepInterrupted",
    "SweepPlan",
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
    "print_failures",
    "run_cells",
    "run_sweep",
    "sweep_cells",
    "trial_flops",
]
