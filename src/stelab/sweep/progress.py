"""The progress display of a running sweep: a rich bar on a terminal, plain lines in a log."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["SweepProgress"]


class SweepProgress:
    """A rich progress bar (cells done / total, trials per second, ETA from the work left); in a
    non-interactive log (Slurm output file) a plain line every 10% or 30 s instead."""

    def __init__(self, console: Console | None, total_cells: int, total_flops: float) -> None:
        self.console = console
        self.total_cells = total_cells
        self.cells = self.trials = self.failed = 0
        self.began = time.perf_counter()
        self.last_line = self.began
        self.last_step = -1
        self.progress: Progress | None = None
        if console is not None and console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]sweep"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("cells {task.fields[cells]}"),
                TextColumn("{task.fields[rate]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self.task = self.progress.add_task(
                "sweep", total=max(total_flops, 1.0), cells=f"0/{total_cells}", rate=""
            )
            self.progress.start()

    def rate(self) -> float:
        return self.trials / max(time.perf_counter() - self.began, 1e-9)

    def update(self, trials: int, flops: float, failed: bool) -> None:
        self.cells += 1
        self.trials += trials
        self.failed += int(failed)
        fail = f", {self.failed} failed" if self.failed else ""
        if self.progress is not None:
            self.progress.update(
                self.task, advance=flops, cells=f"{self.cells}/{self.total_cells}{fail}",
                rate=f"{self.rate():.1f} trials/s",
            )
        elif self.console is not None:
            now = time.perf_counter()
            step = 10 * self.cells // max(1, self.total_cells)
            last = self.cells == self.total_cells
            if step != self.last_step or now - self.last_line > 30 or last:
                self.last_step, self.last_line = step, now
                self.console.print(
                    f"cells {self.cells}/{self.total_cells}{fail}, {self.rate():.1f} trials/s, "
                    f"{now - self.began:.0f} s", highlight=False
                )

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
