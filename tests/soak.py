"""The soak test of a long resumable run (issue 23, item 3), shared by tests/test_soak.py (a short
version in the default suite, the long one marked slow) and the campaign (tests/campaign.py).

* :func:`kill_and_resume`: ``stelab reproduce`` killed with SIGKILL (the whole process group)
  at random moments, each phase of the run included (cells, tables, figures, claims, report),
  and resumed each time; the outputs must equal those of an uninterrupted run (:func:`outputs`).
* :func:`two_at_once`: two ``stelab reproduce`` on one folder at once: one runs, the other is
  refused with one line.
* :func:`oom_worker`: one worker of a local-pool sweep gets a memory limit (RLIMIT_AS through
  ``prlimit``, as the kernel would stop it): only the cells it was running fail; the rerun
  recomputes them and the table equals the uninterrupted one.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from stelab.sweep import drop_timing
from stelab.verify import verify_path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_profile.toml"
#: report lines that say when and how long, not what: left out of the comparison
VOLATILE = ("- wall time of the runs:", "- report written:")
#: what the log says last -> the phase a kill fell in
PHASES = (("wrote ", "done"), ("drawing figures", "figures and report"),
          ("analysing stored tables", "derived tables and claims"), ("[", "cells and tables"))
TARGETS = ("start-up", "cells and tables", "derived tables and claims", "figures and report")


def stelab(*args: str) -> list[str]:
    return [sys.executable, "-c", "from stelab.cli import main; main()", *args]


def start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT / "src")}
    with open(log, "wb") as fh:
        return subprocess.Popen(stelab(*args), stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=ROOT)


def reproduce_args(out: Path, only: tuple[str, ...], executor: str) -> list[str]:
    extra = [a for name in only for a in ("--only", name)]
    return ["reproduce", "--profile", str(TINY), "--out", str(out), "--executor", executor,
            *extra]


def outputs(folder: Path) -> dict[str, object]:
    """What an uninterrupted run must equal: every table (timing columns left out), claims.json
    and report.md (its two lines of dates and durations left out)."""
    found: dict[str, object] = {}
    for path in sorted((folder / "tables").glob("*.parquet")):
        found[path.name] = drop_timing(pd.read_parquet(path))
    found["claims.json"] = json.loads((folder / "claims.json").read_text())
    text = (folder / "report.md").read_text().replace(str(folder), "DIR")
    found["report.md"] = [line for line in text.splitlines() if not line.startswith(VOLATILE)]
    found["figures"] = sorted(p.name for p in (folder / "figures").glob("*.png"))
    return found


def differences(a: dict[str, object], b: dict[str, object]) -> list[str]:
    """Names of the outputs that differ between two runs (empty: identical)."""
    diff = sorted(set(a) ^ set(b))
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if isinstance(x, pd.DataFrame):
            try:
                pd.testing.assert_frame_equal(x, y)
            except AssertionError:
                diff.append(name)
        elif x != y:
            diff.append(name)
    return diff


def _phase(log: Path) -> str:
    text = log.read_text(errors="replace")
    last = max(((text.rfind(marker), phase) for marker, phase in PHASES), default=(-1, ""))
    return last[1] if last[0] >= 0 else "start-up"


@dataclass
class SoakCounts:
    """What a soak run did: kills per phase, resumes, and the outputs that differed."""

    kills: Counter[str] = field(default_factory=Counter)
    finished_before_kill: int = 0
    differing: list[str] = field(default_factory=list)
    damaged: int = 0


def baseline_run(out: Path, only: tuple[str, ...], executor: str = "serial") -> None:
    """An uninterrupted run into ``out``."""
    proc = start(reproduce_args(out, only, executor), out.parent / f"{out.name}.log")
    assert proc.wait(timeout=900) == 0, (out.parent / f"{out.name}.log").read_text()[-2000:]


def kill_and_resume(out: Path, baseline: Path, kills: int, seed: int,
                    only: tuple[str, ...] = ("e2",), executor: str = "serial") -> SoakCounts:
    """SIGKILL ``stelab reproduce`` into ``out`` ``kills`` times, each at a random moment of a
    phase drawn at random (start-up, cells and tables, derived tables and claims, figures and
    report: the log says which has begun), then let it finish; compare with ``baseline``."""
    rng = random.Random(seed)
    counts = SoakCounts()
    log = out.parent / f"{out.name}.log"
    for _ in range(kills):
        target = TARGETS.index(rng.choice(TARGETS))
        proc = start(reproduce_args(out, only, executor), log)
        while proc.poll() is None and (TARGETS.index(_phase(log)) if _phase(log) in TARGETS
                                       else len(TARGETS)) < target:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.4 if target in (0, 3) else 1.5))
        if proc.poll() is not None:
            counts.finished_before_kill += 1
            continue
        counts.kills[_phase(log)] += 1
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    proc = start(reproduce_args(out, only, executor), log)
    assert proc.wait(timeout=900) == 0, log.read_text()[-2000:]
    counts.differing = differences(outputs(out), outputs(baseline))
    counts.damaged = len(verify_path(out).damaged)
    return counts


def two_at_once(out: Path, only: tuple[str, ...] = ("e2",)) -> tuple[list[int], list[str]]:
    """Start two ``stelab reproduce`` on ``out`` at once; their exit codes and last lines."""
    procs = [start(reproduce_args(out, only, "serial"), out.parent / f"twin{i}.log")
             for i in range(2)]
    codes = [p.wait(timeout=600) for p in procs]
    lines = [(out.parent / f"twin{i}.log").read_text().strip().splitlines()[-1]
             for i in range(2)]
    return codes, lines


SWEEP_TOML = """
[model]
d = 32
m = [1, 3]
[noise]
kind = "flip"
level = [0.0, 0.1]
[train]
n = [128, 256]
steps = 300
[run]
trials = 4
device = "cpu"
[sweep]
axes = ["model.m", "train.n", "noise.level"]
block_trials = 2
"""


def _workers(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _vm_size(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no VmSize for {pid}")


def oom_worker(folder: Path) -> dict[str, object]:
    """Run a local-pool sweep; when its first cell is stored, cap one worker's address space at
    what it uses (so its next allocation fails, as memory running out would), lift the cap when
    that worker's cell has failed; then rerun. Returns what happened."""
    config = folder / "sweep.toml"
    config.write_text(SWEEP_TOML)
    out = folder / "out"
    args = ["sweep", str(config), "--out", str(out), "--executor", "local", "--workers", "2"]
    proc = start(args, folder / "first.log")
    deadline = time.monotonic() + 120
    while not list((out / "cells").glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.02)
    workers = _workers(proc.pid)
    victim = workers[0] if workers else None
    limited = False
    if victim is not None:
        try:
            resource.prlimit(victim, resource.RLIMIT_AS, (_vm_size(victim), resource.RLIM_INFINITY))
            limited = True
            while not list((out / "errors").glob("*.json")) and proc.poll() is None:
                time.sleep(0.01)
            resource.prlimit(victim, resource.RLIMIT_AS,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (OSError, ProcessLookupError):
            pass  # the worker died of it: the pool reruns its cells
    first = proc.wait(timeout=600)
    errors = [json.loads(p.read_text()) for p in (out / "errors").glob("*.json")]
    stored_after_first = len(list((out / "cells").glob("*.parquet")))
    again = start(args, folder / "second.log")
    second = again.wait(timeout=600)
    return {"limited": limited, "first_status": first, "errors": errors,
            "stored_after_first": stored_after_first, "second_status": second,
            "rows": pd.read_parquet(out / "results.parquet") if second == 0 else None,
            "config": config, "log": (folder / "first.log").read_text()}
