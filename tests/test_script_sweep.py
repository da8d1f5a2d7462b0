"""The README's Python example runs as a plain script (no main guard) and in a notebook kernel.

Spawned sweep workers used to re-import the script that started the sweep; without an
``if __name__ == "__main__":`` guard every worker re-ran the sweep, hit the folder lock and died,
and every cell failed (issue 25). The example is taken from the README itself, up to its sweep
line (the quick reproduction after it has its own tests).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The README's "From Python" block, up to and including its run_sweep line."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## From Python\s+```python\n(.*?)```", text, re.S)
    assert block, "README: the 'From Python' example is gone"
    lines = block.group(1).splitlines()
    end = next(i for i, line in enumerate(lines) if "stelab.run_sweep(" in line)
    code = "\n".join(lines[: end + 1])
    assert "__main__" not in code  # the point: a script without a guard
    return code + "\nprint('ROWS', len(grid))\n"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def _link_examples(where: Path) -> None:
    (where / "examples").symlink_to(ROOT / "examples", target_is_directory=True)


@pytest.mark.parametrize("workers", [None, 2])
def test_readme_example_runs_as_a_plain_script(tmp_path: Path, workers: int | None) -> None:
    """As written (its cells may run in the script's process), and on a pool of spawned workers
    (the case that used to re-import the script)."""
    _link_examples(tmp_path)
    script = tmp_path / "s.py"
    code = readme_example()
    if workers is not None:
        pooled = code.replace('"runs/small")',
                              f'"runs/small", execution=stelab.Execution(workers={workers}))')
        assert pooled != code, "README: the run_sweep line changed; update this test"
        code = pooled
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ROWS 512" in done.stdout  # 16 configs x 32 trials
    rows = pd.read_parquet(tmp_path / "runs/small/results.parquet")
    assert len(rows) == 512
    assert not (tmp_path / "runs/small/errors").exists() or not any(
        (tmp_path / "runs/small/errors").iterdir()
    )


def test_readme_example_runs_in_a_notebook_kernel(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="needs the notebook extra: .[notebook]")
    nbclient = pytest.importorskip("nbclient", reason="needs the notebook extra: .[notebook]")
    pytest.importorskip("ipykernel", reason="needs the notebook extra: .[notebook]")
    _link_examples(tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(readme_example())]
    old = {k: os.environ.get(k) for k in ("PYTHONPATH", "OMP_NUM_THREADS")}
    os.environ.update({k: _env()[k] for k in old})
    try:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    text = "".join(out.get("text", "") for out in nb.cells[0].outputs)
    assert "ROWS 512" in text


DASK_SCRIPT = """
import stelab
raw = {"model": {"d": 16}, "train": {"n": [32, 64], "steps": 20},
       "run": {"trials": 2, "device": "cpu"}, "sweep": {"axes": ["train.n"]}}
stelab.run_sweep(raw, "runs/d", execution=stelab.Execution("dask", workers=1, progress=False))
"""


def test_an_unguarded_script_on_a_dask_local_cluster_stops_with_one_line(tmp_path: Path) -> None:
    """Dask starts its worker processes the standard way (they re-run the script): where the
    guard cannot be avoided, the run stops at once with one line naming the cause and the fix,
    and leaves no results table."""
    pytest.importorskip("distributed")
    script = tmp_path / "s.py"
    script.write_text(DASK_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "ExecutorError: --executor dask: the Dask LocalCluster did not start" in last
    assert "re-run your script" in last and "__main__" in last
    assert not (tmp_path / "runs/d/results.parquet").exists()
