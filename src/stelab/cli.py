"""The ``stelab`` command line: a thin layer over the library.

Every stelab error becomes one red line on stderr and exit code 2; never a traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from stelab.errors import StelabError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="1-bit quantization-aware training with the straight-through estimator (STE).",
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """stelab: reproduce, measure and use STE training of binary networks."""


@app.command()
def run(
    config: Path = typer.Argument(..., help="experiment config (TOML)"),
    out: Path = typer.Option(..., "--out", help="output folder; gets results.parquet"),
) -> None:
    """Run one experiment: DIR/results.parquet gets one row per trial."""
    from stelab.config import load_config
    from stelab.engine import run_experiment
    from stelab.results import summarize, write_table

    cfg = load_config(config)
    began = time.perf_counter()
    with console.status("running trials") as status:

        def progress(done: int, total: int) -> None:
            status.update(f"trials {done}/{total}")

        rows = run_experiment(cfg, progress=progress)
    seconds = time.perf_counter() - began
    path = write_table(rows, Path(out) / "results.parquet")
    console.print(summarize(rows, title=f"{config.name}: {len(rows)} trials in {seconds:.1f} s"))
    console.print(f"wrote {path}")


def main() -> None:
    """Console-script entry point: turn stelab errors into one line and exit code 2."""
    try:
        app()
    except StelabError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
