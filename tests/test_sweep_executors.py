"""Executors and crashes: local pool and Dask give the rows of the serial run; a sweep killed with
SIGKILL (the whole command, or one worker process) or stopped with Ctrl-C resumes to the table of
an uninterrupted run; an error inside a worker is recorded and the other cells finish."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from stelab.config import read_toml
from stelab.sweep import (
    DaskExecutor,
    Execution,
    LocalExecutor,
    drop_timing,
    execute_sweep,
    parse_sweep,
    run_cells,
    sweep_cells,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(drop_timing(a), drop_timing(b))


def tiny_cells(trials: int = 3):
    raw = {
        "model": {"d": 16, "m": [1, 3]},
        "noise": {"kind": "flip", "level": [0.0, 0.1]},
        "train": {"n": [32, 64], "steps": 20},
        "run": {"trials": trials, "device": "cpu"},
        "sweep": {"axes": ["model.m", "train.n", "noise.level"], "block_trials": 2},
    }
    return sweep_cells(parse_sweep(raw))


def test_local_pool_and_dask_give_the_serial_rows(tmp_path):
    cells = tiny_cells()
    assert len(cells) == 16
    serial = run_cells(cells, tmp_path / "serial", executor="serial", progress=False)
    local = run_cells(cells, tmp_path / "local", executor=LocalExecutor(workers=2), progress=False)
    dask = run_cells(cells, tmp_path / "dask", executor=DaskExecutor(workers=2, processes=False),
                     progress=False)
    same(serial, local)
    same(serial, dask)
    assert len(serial) == 8 * 3


def _worker_threads(_: int) -> tuple[int, list[int]]:
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), [i["num_threads"] for i in threadpool_info()
                                     if i["user_api"] == "blas"]


def test_local_workers_give_torch_and_blas_their_share_of_the_cores():
    """Each of k local workers runs torch and numpy's BLAS on cores // k threads: a BLAS with a
    thread per core in every worker would oversubscribe them (and spin after each call)."""
    pool = LocalExecutor(workers=2)
    share = pool.threads_per_slot()
    with pool:
        results = [r for _, r in pool.map_unordered(_worker_threads, [0, 1])]
    for torch_threads, blas_threads in results:
        assert torch_threads == share
        assert blas_threads and set(blas_threads) == {share}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_error_inside_a_worker_is_recorded_with_the_cell_config(tmp_path):
    raw = {
        "model": {"d": 16},
        "train": {"n": [32, 64], "steps": 20},
        "run": {"trials": 2, "device": ["cpu", "cuda"]},  # cuda fails inside the worker here
        "sweep": {"axes": ["train.n", "run.device"]},
    }
    cells = sweep_cells(parse_sweep(raw))
    report = execute_sweep(cells, tmp_path, Execution(LocalExecutor(workers=1), progress=False))
    assert report.computed == 2 and len(report.failures) == 2
    assert len(report.rows) == 4 and set(report.rows["device"]) == {"cpu"}
    records = [json.loads(p.read_text()) for p in (tmp_path / "errors").glob("*.json")]
    assert {r["config"]["run"]["device"] for r in records} == {"cuda"}
    assert all(r["error_type"] == "ConfigError" and "run.device" in r["message"] for r in records)
    assert all(r["pid"] != os.getpid() for r in records)  # it ran in a worker process


# -- the CLI in a subprocess, interrupted ---------------------------------------------------------
SWEEP_TOML = """
[model]
d = 16
m = [1, 2, 3, 4]
[noise]
kind = "flip"
level = [0.0, 0.05, 0.1, 0.2, 0.3]
[train]
n = [48, 64, 96, 128]
steps = 10000
[run]
trials = 16
device = "cpu"
[sweep]
axes = ["model.m", "noise.level", "train.n"]
"""  # 80 small cells: ~5-6 s of writing cells after the third one on 2 idle cores, the window in
# which the tests below interrupt the sweep. With 1000 steps and 2 trials the engine's speed-ups
# had shrunk it to ~0.4 s, and a pause of the test process inside a long suite let the sweep
# finish before its SIGINT (exit 0); 8 trials (~2.8 s, measured from the cell files' times)
# still did once, in a suite run beside a long simulation on both cores


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}


def start_sweep(config: Path, out: Path, workers: int = 2,
                sigint_ignored: bool = False) -> subprocess.Popen:
    """``stelab sweep`` in its own session; ``sigint_ignored``: started with SIGINT ignored, as
    a background job of a non-interactive shell is (the disposition is inherited)."""
    cmd = [sys.executable, "-m", "stelab", "sweep", str(config), "--out", str(out),
           "--workers", str(workers)]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if sigint_ignored else None
    try:
        return subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    finally:
        if sigint_ignored:
            signal.signal(signal.SIGINT, previous)


def stored(out: Path) -> int:
    return len(list((out / "cells").glob("*.parquet")))


def wait_for_cells(proc: subprocess.Popen, out: Path, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = stored(out)
        if count >= at_least:
            return count
        if proc.poll() is not None:
            raise AssertionError(f"sweep ended early: {proc.communicate()}")
        time.sleep(0.005)
    raise AssertionError("no progress")


def session_processes(sid: int) -> list[int]:
    """Live (non-zombie) processes of a session (Linux /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(stat.parent.name))
    return pids


def wait_until_gone(sid: int, timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and session_processes(sid):
        time.sleep(0.1)
    return session_processes(sid)


def baseline(config: Path, out: Path) -> pd.DataFrame:
    cells = sweep_cells(parse_sweep(read_toml(config)))
    return run_cells(cells, out, executor="serial", progress=False)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_ctrl_c_then_kill_9_then_resume_gives_the_uninterrupted_table(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP_TOML)
    out = tmp_path / "out"
    total = 80

    proc = start_sweep(config, out)  # 1. Ctrl-C: a clean stop that says how to resume
    wait_for_cells(proc, out, 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "interrupted" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    assert wait_until_gone(proc.pid) == []
    after_ctrl_c = stored(out)
    assert 3 <= after_ctrl_c < total

    proc = start_sweep(config, out)  # 2. kill -9 of the command in the middle
    wait_for_cells(proc, out, after_ctrl_c + 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert wait_until_gone(proc.pid) == [], "worker processes outlived the killed sweep"
    after_kill = stored(out)
    assert after_kill < total and not (out / "results.parquet").exists()

    proc = start_sweep(config, out)  # 3. the same command resumes and completes
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    summary = " ".join(stdout.split())
    assert f"{after_kill} stored before, {total - after_kill} computed now" in summary
    resumed = pd.read_parquet(out / "results.parquet")
    same(resumed, baseline(config, tmp_path / "baseline"))
    assert not list((out / "cells").glob(".*.tmp"))


def test_ctrl_c_stops_a_sweep_started_with_sigint_ignored(tmp_path):
    """A process inherits an ignored SIGINT (background jobs of scripts, some parents): the sweep
    used to run to its end and exit 0 on Ctrl-C (seen as a rare failure of the test above in
    whole-suite runs); every command now restores Ctrl-C."""
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP_TOML)
    out = tmp_path / "out"
    proc = start_sweep(config, out, sigint_ignored=True)
    wait_for_cells(proc, out, 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "interrupted" in err and stored(out) < 80


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_killed_worker_process_does_not_lose_the_sweep(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP_TOML)
    out = tmp_path / "out"
    proc = start_sweep(config, out)
    wait_for_cells(proc, out, 3)
    workers = [pid for pid in session_processes(proc.pid)
               if pid != proc.pid and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert workers, "no worker process found"
    os.kill(workers[0], signal.SIGKILL)
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "worker processes died 1 time" in " ".join(stdout.split())
    same(pd.read_parquet(out / "results.parquet"), baseline(config, tmp_path / "baseline"))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_kill_9_at_random_moments_then_resume(tmp_path):
    """SIGKILL at moments spread over start-up, pool start, computing and merging."""
    import random

    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP_TOML)
    out = tmp_path / "out"
    delays = [0.05, 0.5, 1.5] + [random.Random(k).uniform(0.5, 8.0) for k in range(5)]
    for delay in delays:
        proc = start_sweep(config, out)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        assert wait_until_gone(proc.pid) == []
        if (out / "manifest.json").exists():
            json.loads((out / "manifest.json").read_text())  # never half written
    proc = start_sweep(config, out)
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    same(pd.read_parquet(out / "results.parquet"), baseline(config, tmp_path / "baseline"))


def _hold(seconds: float) -> tuple[float, float]:
    """Sleep; when it began and ended (the memory queue test)."""
    began = time.time()
    time.sleep(seconds)
    return began, time.time()


def test_cells_queue_by_memory_when_the_plan_gives_a_capacity():
    """Two cells whose peaks together exceed the capacity never run at once; every cell runs,
    the small ones beside a large one."""
    pool = LocalExecutor(workers=2)
    memory, capacity = [6, 6, 3, 3], 9
    with pool:
        spans = dict(pool.map_unordered(_hold, [0.3] * 4, memory=memory, capacity=capacity))
    assert sorted(spans) == [0, 1, 2, 3]
    first, second = sorted([spans[0], spans[1]])
    assert first[1] <= second[0]


def test_a_cell_too_large_for_a_workers_share_is_planned_with_the_pools():
    from stelab.engine.budget import UNBOUNDED, plan_chunks
    from stelab.errors import MemoryBudgetError
    from stelab.sweep.plan import plan_cells

    cells = tiny_cells()[:1]
    peak = plan_chunks(cells[0].config, UNBOUNDED, trials=1).peak_bytes(1)
    alone = plan_cells(cells, set(), memory_per_slot=2 * peak)  # a budget of half of it
    assert alone.capacity is None
    with pytest.raises(MemoryBudgetError, match="fewer --workers"):
        plan_cells(cells, set(), memory_per_slot=peak)
    wide = plan_cells(cells, set(), memory_per_slot=peak, memory_shared=4 * peak)
    assert wide.capacity == 2 * peak and "memory of the pool" in wide.budget_note
    with pytest.raises(MemoryBudgetError) as err:
        plan_cells(cells, set(), memory_per_slot=peak, memory_shared=peak)
    assert "fewer --workers" not in str(err.value)
