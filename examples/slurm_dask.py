"""Run a stelab sweep on a Slurm cluster through dask-jobqueue (see docs/sweeps.md).

    pip install dask-jobqueue        # not a stelab dependency
    python examples/slurm_dask.py examples/sweep_small.toml --out runs/slurm --jobs 8

Run it on the login node (or in a small long-running job): it submits ``--jobs`` Slurm jobs, each
one Dask worker with ``--cores`` single-threaded processes, and feeds them the sweep's cells.
Only this process writes files: the workers send rows back, so ``--out`` needs no shared file
system (the workers need stelab installed, the same version as here). Rerun the same command to
resume after the allocation ended or the script was stopped; finished cells are kept.

Partition, account, memory and walltime below are placeholders: adapt them to your site.
"""

from __future__ import annotations

import argparse

from dask_jobqueue import SLURMCluster  # type: ignore[import-not-found]
from distributed import Client

from stelab.config import read_toml
from stelab.sweep import DaskExecutor, parse_sweep, run_cells, sweep_cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", required=True)
    parser.add_argument("--jobs", type=int, default=4, help="Slurm jobs (one Dask worker each)")
    parser.add_argument("--cores", type=int, default=16, help="cores (= processes) per job")
    parser.add_argument("--memory", default="64GB", help="memory per job")
    parser.add_argument("--walltime", default="02:00:00")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--account", default=None)
    args = parser.parse_args()

    raw = read_toml(args.config)
    cells = sweep_cells(parse_sweep(raw))  # validates the whole grid before asking for nodes

    cluster = SLURMCluster(
        queue=args.partition,
        account=args.account,
        cores=args.cores,
        processes=args.cores,  # one single-threaded process per core: one cell per core
        memory=args.memory,
        walltime=args.walltime,
        # one torch thread per process; dask sets these too, explicit is clearer
        job_script_prologue=["export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"],
    )
    cluster.scale(jobs=args.jobs)
    with Client(cluster) as client:
        client.wait_for_workers(1)
        rows = run_cells(cells, args.out, executor=DaskExecutor(client=client), sweep_config=raw)
    cluster.close()
    print(f"{len(rows)} rows in {args.out}/results.parquet")


if __name__ == "__main__":
    main()
