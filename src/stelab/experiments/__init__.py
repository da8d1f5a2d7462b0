"""The paper's experiments E1-E4 (and the horizon/step-size axes of E1) as cell builders.

Each entry maps a table name to a function profile -> list of Config. ``stelab reproduce`` runs
every table's cells through the sweep store (resumable) and keeps the merged rows as
``DIR/tables/<name>.parquet``; analysis, figures and claims are computed from those tables only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stelab.config import Config
from stelab.experiments import e1, e2, e3, e4

CellBuilder = Callable[[dict[str, Any]], list[Config]]

#: table name -> (cell builder, one-line description)
EXPERIMENTS: dict[str, tuple[CellBuilder, str]] = {
    "e1": (e1.build_cells, "E1 sample complexity: success vs n for several d (C1, C2)"),
    "e1_horizon": (e1.build_horizon_cells, "E1 axes at one d: step size c and horizon T (C2)"),
    "e2": (e2.build_cells, "E2 convergence: Hamming distance and loss vs iteration"),
    "e3": (e3.build_cells, "E3 recurrence under flip label noise (C3)"),
    "e4": (e4.build_cells, "E4 non-Gaussian data x normalization x teacher balance (C4)"),
}
