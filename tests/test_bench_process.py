"""`stelab bench --only process` on a tiny workload (a smoke test of the machinery: no timing is
asserted), and the numpy loop's own process, which must load neither torch nor numba."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from stelab.bench.process import bench_process


def test_the_process_benchmark_times_both_processes_and_compares_their_outcomes():
    lines: list[str] = []
    result = bench_process(tiny=True, say=lines.append)
    assert result.name == "process" and len(result.values) == 1
    assert all(math.isfinite(v) and v > 0 for v in result.values)
    assert result.detail["flags_total"] == 4 and 0 <= result.detail["flags_agree"] <= 4
    assert result.values[0] == result.detail["loop_s"][0] / result.detail["sweep_s"][0]
    assert any("success flags (last iterate) agree" in line for line in lines)


def test_the_numpy_loop_process_draws_the_engines_problems_without_torch_or_numba():
    code = ("import runpy, sys\nsys.argv = ['x', '--d', '32', '--n', '40', '80', '--trials', '3',"
            " '--steps', '30', '--seed', '5']\n"
            "runpy.run_module('stelab.bench.numpy_loop', run_name='__main__')\n"
            "print(sorted(m for m in ('torch', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    report, loaded = out.stdout.strip().splitlines()
    assert loaded == "[]"
    payload = json.loads(report)
    assert payload["n"] == [40, 80] and [len(f) for f in payload["success_last"]] == [3, 3]

    import numpy as np

    import stelab
    from stelab.bench.numpy_loop import draw_trial
    from stelab.engine.host_problem import build_host_problem

    cfg = stelab.parse_config({"model": {"d": 32}, "train": {"n": 40, "steps": 30},
                               "run": {"trials": 3, "seed": 5, "device": "cpu"}})
    engine = build_host_problem(cfg, [0, 1, 2])
    for k in range(3):  # the same teacher, inputs and u_0 as the engine's problem
        Z, _, u0, w_star = draw_trial(32, 40, 5, k)
        assert np.array_equal(Z, engine.Z[k]) and np.array_equal(u0, engine.u0[k])
        assert np.array_equal(w_star, engine.teacher[k])
