"""The ``stelab`` command line: a thin layer over the library.

Every failure becomes one red line on stderr, never a traceback: exit 2 for what the user can
fix (config, files, paths, permissions, an interruption), 1 for failures of the machine (disk
full, out of memory) and for bugs, whose traceback goes to a log file named in the line
(:mod:`stelab.exits`, docs/reliability.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from stelab.errors import StelabError
from stelab.exits import describe_failure, guarded

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="1-bit quantization-aware training with the straight-through estimator (STE).",
)
console = Console()
err_console = Console(stderr=True)


def _say(line: str, status: int) -> None:
    """Print a failure's one line (brackets in it are text, not rich markup)."""
    label = "interrupted" if line.startswith("interrupted") else "error"
    text = escape(line.removeprefix("interrupted: ") if label == "interrupted" else line)
    err_console.print(f"[bold red]{label}:[/] {text}", highlight=False, soft_wrap=True)


command = guarded(_say)


@app.callback()
def _root() -> None:
    """stelab: reproduce, measure and use STE training of binary networks."""


@app.command()
@command
def run(
    config: Path = typer.Argument(..., help="experiment config (TOML)"),
    out: Path = typer.Option(..., "--out", help="output folder; gets results.parquet"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="replace results of another config already in the folder"
    ),
) -> None:
    """Run one experiment: DIR/results.parquet gets one row per trial.

    A folder that already holds this config's results is left as it is (nothing is rerun); one
    holding other results is refused unless --overwrite.
    """
    from stelab.config import load_config
    from stelab.engine import run_experiment
    from stelab.results import check_run_output, read_run_results, summarize, write_run_results

    cfg = load_config(config)
    if check_run_output(out, cfg, overwrite) == "same":
        rows = read_run_results(out)
        console.print(summarize(rows, title=f"{config.name}: {len(rows)} trials (stored)"))
        console.print(f"{out / 'results.parquet'} already holds this config's results; "
                      "nothing rerun (delete it to recompute)")
        return
    began = time.perf_counter()
    with console.status("running trials") as status:

        def progress(done: int, total: int) -> None:
            status.update(f"trials {done}/{total}")

        rows = run_experiment(cfg, progress=progress)
    seconds = time.perf_counter() - began
    path = write_run_results(rows, Path(out), cfg)
    console.print(summarize(rows, title=f"{config.name}: {len(rows)} trials in {seconds:.1f} s"))
    console.print(f"wrote {path}")


@app.command()
@command
def sweep(
    config: Path = typer.Argument(..., help="sweep config (TOML with a [sweep] table)"),
    out: Path = typer.Option(..., "--out", help="output folder: cells/, results.parquet, manifest"),
    executor: str = typer.Option(
        None, "--executor", help="local (process pool, default), dask, or serial"
    ),
    scheduler: str = typer.Option(
        None, "--scheduler", help="Dask scheduler address (implies --executor dask)"
    ),
    workers: int = typer.Option(
        None, "--workers", help="local: processes (default: cores); dask: LocalCluster workers"
    ),
    plan: bool = typer.Option(False, "--plan", help="print the plan (work, memory) and exit"),
) -> None:
    """Run a parameter grid; rerunning the same command resumes (finished cells are kept)."""
    from stelab.config import read_toml
    from stelab.sweep import Execution, execute_sweep, parse_sweep, print_failures, sweep_cells

    raw = read_toml(config)
    spec = parse_sweep(raw)
    cells = sweep_cells(spec)
    execution = Execution(executor or ("dask" if scheduler else "local"), workers, scheduler)
    report = execute_sweep(
        cells, out, execution, console=console, sweep_config=raw, plan_only=plan
    )
    if plan:
        return
    console.print(report.table())
    print_failures(report, err_console)
    if report.failures:
        raise typer.Exit(1)


@app.command()
@command
def reproduce(
    out: Path = typer.Option(Path("runs/reproduce"), "--out", help="output folder"),
    quick: bool = typer.Option(False, "--quick", help="the 2-core profile (default)"),
    full: bool = typer.Option(False, "--full", help="paper scale (many cores or a cluster)"),
    profile: Path | None = typer.Option(None, "--profile", help="a profile TOML of your own"),
    executor: str = typer.Option("local", "--executor", help="local | dask | serial"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask scheduler address"),
    workers: int | None = typer.Option(None, "--workers", help="parallel workers"),
    only: list[str] | None = typer.Option(
        None, "--only", help="run only these experiments or tables"
    ),
    plan: bool = typer.Option(False, "--plan", help="print the tables' plans (trials, "
                              "worker-seconds, memory) and exit; nothing runs"),
) -> None:
    """Run the experiments of the registry and write report.md, figures and claims.json.

    Rerunning the same command resumes: finished cells are read back from DIR/store.
    """
    from stelab.reproduction import plan_profile
    from stelab.reproduction import reproduce as run_reproduce
    from stelab.sweep import Execution

    if quick and full:
        raise StelabError("--quick/--full: choose one")
    if profile is not None and (quick or full):
        raise StelabError("--profile: give either --profile or --quick/--full")
    chosen: str | Path = profile if profile is not None else ("full" if full else "quick")
    if plan:
        planned = plan_profile(chosen, Execution(executor, workers, scheduler), only=only,
                               log=lambda message: console.print(message, markup=False))
        if not planned:
            console.print("no table of this profile gives a plan", markup=False)
        return
    try:
        claims = run_reproduce(chosen, out, Execution(executor, workers, scheduler), only=only,
                               log=lambda message: console.print(message, markup=False))
    except KeyboardInterrupt as stop:  # typer would turn it into a silent exit 130
        message = getattr(stop, "message", "interrupted: finished cells are stored; run the "
                          "same command again to resume")
        err_console.print(f"[yellow]{escape(message)}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    for claim in claims["claims"]:
        console.print(f"{claim['id']}: [bold]{claim['verdict']}[/] ({claim['reason']})",
                      highlight=False)


@app.command()
@command
def plot(
    folder: Path = typer.Argument(..., help="a folder written by 'stelab reproduce'"),
) -> None:
    """Redraw every figure, claims.json and report.md from the stored tables (no rerun)."""
    from stelab.report.folder import check_reproduce_folder
    from stelab.report.write import write_report
    from stelab.reproduction import folder_lock

    check_reproduce_folder(folder)  # before the lock file is made: a wrong folder stays as it was
    with folder_lock(folder, "plot"):
        write_report(folder, log=console.print)


@app.command()
@command
def verify(
    folder: Path = typer.Argument(
        ..., help="a folder of stelab run, sweep or reproduce, or a packed model file"),
) -> None:
    """Check every stored file against the checksum written with it; exit 1 on damage."""
    from stelab.verify import verify_path

    report = verify_path(folder)
    for line in report.lines():
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    if report.damaged:
        raise typer.Exit(1)


@app.command()
@command
def bench(
    which: str | None = typer.Argument(
        None, help="'pack': packed 1-bit inference vs torch float32, dynamic int8 and ONNX "
        "Runtime (default: engine benchmarks)"
    ),
    quick: bool = typer.Option(False, "--quick", help="smaller workloads, fewer repeats"),
    threads: int = typer.Option(2, "--threads", help="CPU threads for engine and baselines"),
    only: list[str] | None = typer.Option(
        None, "--only", help="numpy | process | bandwidth | baseline | incremental"
    ),
    json_out: Path | None = typer.Option(None, "--json", help="also write the results as JSON"),
    tiny: bool = typer.Option(False, "--tiny", hidden=True, help="seconds-long smoke test"),
) -> None:
    """Performance benchmarks: ratios against baselines measured in the same process."""
    if which is not None:
        _bench_pack(which, quick, tiny, json_out)
        return
    from stelab.bench import BENCHMARKS, run_all, write_json

    unknown = sorted(set(only or []) - set(BENCHMARKS))
    if unknown:
        raise StelabError(f"--only: unknown benchmark {unknown[0]!r}; allowed: "
                          + ", ".join(BENCHMARKS))
    if threads < 1:
        raise StelabError(f"--threads: {threads} is not allowed; allowed: 1 or more")

    def say(text: str) -> None:
        console.print(text, soft_wrap=True, highlight=False)

    results = run_all(quick=quick, threads=threads, names=only, say=say, tiny=tiny)
    if json_out is not None:
        console.print(f"wrote {write_json(results, json_out)}")


def _bench_pack(which: str, quick: bool, tiny: bool, json_out: Path | None) -> None:
    """``stelab bench pack``: one thread and all threads (see stelab.bench.pack)."""
    import os

    if which != "pack":
        raise StelabError(f"bench: unknown benchmark {which!r}; allowed: pack (or none)")
    # torch's and numba's OpenMP pools take turns here; spinning waiters would starve each
    # other (libgomp reads this once, when torch loads it: set before the import below)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from stelab.bench.pack import run_pack, write_json

    results = run_pack(quick=quick, tiny=tiny, threads=[1] if tiny else None,
                       say=lambda text: console.print(text, soft_wrap=True, highlight=False,
                                                      markup=False))
    if json_out is not None:
        console.print(f"wrote {write_json(results, json_out)}")


@app.command()
@command
def diagnose(
    data: Path = typer.Argument(..., help="samples x features: .npz, .npy or .csv"),
    key: str = typer.Option(None, "--key", help="array in an .npz (default: the only one, or X)"),
    drop: list[str] = typer.Option([], "--drop", help="CSV column to leave out (repeatable)"),
    label: str = typer.Option(None, "--label", help="CSV column holding labels (left out)"),
    balance: list[float] = typer.Option(
        [0.5, 0.75], "--balance", help="teacher balance(s) to check (repeatable)"
    ),
    steps: int = typer.Option(500, "--steps", min=1, help="horizon T of the prediction"),
    gaussian_n50: float = typer.Option(
        None, "--gaussian-n50", help="Gaussian 50% sample size at this d and T (default: measure)"
    ),
    teachers: int = typer.Option(16, "--teachers", min=1, help="random teachers per check"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**63 - 1),
    measure: int = typer.Option(
        0, "--measure", min=0, help="also run STE on DATA with this many random teachers"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
    max_seconds: float = typer.Option(
        600.0, "--max-seconds", help="refuse when the estimated time is longer than this"
    ),
) -> None:
    """Predict whether STE training is healthy on DATA, raw and after each normalization.

    The time is estimated first and announced on stderr when over 10 s; past --max-seconds the
    diagnosis is refused with the part that costs the most.
    """
    import warnings

    from rich.measure import Measurement

    from stelab.config import NORMALIZATIONS
    from stelab.diagnosis import describe_cost, estimate_seconds, load_data
    from stelab.diagnosis import diagnose as run_diagnose

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = load_data(data, key=key, drop=tuple(drop), label=label)
    for warning in caught:
        err_console.print(f"[yellow]warning:[/] {warning.message}", highlight=False,
                          soft_wrap=True)
    cost = estimate_seconds(X.shape[0], X.shape[1], steps, gaussian_n50 is not None,
                            NORMALIZATIONS, len(balance), teachers, measure)
    if 10 < sum(cost.values()) <= max_seconds:
        err_console.print(f"diagnose: n = {X.shape[0]}, d = {X.shape[1]}: "
                          f"{describe_cost(cost)}", highlight=False, soft_wrap=True)
    options = dict(steps=steps, n50=gaussian_n50, teachers=teachers, seed=seed,
                   measure=measure, max_seconds=max_seconds)
    if as_json:
        typer.echo(run_diagnose(X, tuple(balance), **options).to_json())
        return
    with console.status("diagnosing (measuring the Gaussian reference if needed)"):
        result = run_diagnose(X, tuple(balance), **options)
    renderables = result.to_rich(title=data.name)
    if not console.is_terminal:  # piped: the tables at their natural width, not cut to 80
        wide = console.options.update_width(1000)
        console.width = max([80, *(Measurement.get(console, wide, r).maximum
                                   for r in renderables if not isinstance(r, str))])
    for renderable in renderables:
        console.print(renderable, soft_wrap=not console.is_terminal)


def main() -> None:
    """Console-script entry point. Commands end through :func:`stelab.exits.guarded`; this
    catches what happens outside them (an interrupt while the command line is parsed)."""
    try:
        app()
    except BaseException as err:  # noqa: BLE001 - one line, never a traceback
        if isinstance(err, SystemExit):
            raise
        status, line = describe_failure(err, [])
        _say(line, status)
        sys.exit(status)


if __name__ == "__main__":
    main()
