"""What a finished sweep says: :class:`SweepReport` (the record ``run_cells`` returns, and its
summary table) and :func:`print_failures` (one line per failed cell)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from stelab.sweep.plan import SweepPlan


@dataclass
class SweepReport:
    """What a sweep did; ``rows`` is the merged table (also in out_dir/results.parquet)."""

    out_dir: Path
    rows: pd.DataFrame
    n_cells: int
    stored_before: int
    computed: int
    failures: list[dict[str, Any]]
    corrupt: list[tuple[str, str]]
    seconds: float
    trials_computed: int
    executor: str
    warnings: list[str] = field(default_factory=list)
    plan: SweepPlan | None = None

    def table(self) -> Table:
        """The final summary as a rich table."""
        table = Table(title="sweep summary", show_header=False, title_justify="left")
        table.add_column("what")
        table.add_column("value", overflow="fold")
        table.add_row("cells", f"{self.n_cells}: {self.stored_before} stored before, "
                      f"{self.computed} computed now, {len(self.failures)} failed")
        if self.corrupt:
            table.add_row("corrupt cell files", f"{len(self.corrupt)} found, moved to "
                          f"{self.out_dir / 'quarantine'} and recomputed")
        rate = self.trials_computed / self.seconds if self.seconds > 0 else 0.0
        table.add_row("trials computed", f"{self.trials_computed:,} in {self.seconds:.1f} s "
                      f"({rate:.1f} trials/s, {self.executor})")
        if len(self.rows) or not self.failures:
            table.add_row("rows", f"{len(self.rows):,} in {self.out_dir / 'results.parquet'}")
        else:
            table.add_row("rows", "none: every cell failed, so no results.parquet was written")
        for text in self.warnings:
            table.add_row("[yellow]note[/]", text)
        return table


def print_failures(report: SweepReport, console: Console, limit: int = 5) -> None:
    """One line per failed cell (the first ``limit``) and where the full records are."""
    for failure in report.failures[:limit]:
        console.print(f"[red]failed[/] {failure['cell']}: {failure['error_type']}: "
                      f"{failure['message']}", highlight=False, soft_wrap=True)
    if len(report.failures) > limit:
        console.print(f"... and {len(report.failures) - limit} more", highlight=False)
    if report.failures:
        console.print(f"tracebacks and configs: {report.out_dir / 'errors'}/*.json; "
                      "run again to retry the failed cells", highlight=False)
