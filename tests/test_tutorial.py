"""The tutorial (examples/tutorial.py paired with examples/tutorial.ipynb): the pair is in sync,
the notebook is committed without outputs, and it executes top to bottom in a kernel of this
test's Python (nbclient), writing only to a scratch folder. Needs the extra stelab[notebook],
which .ci/run installs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install 'stelab[notebook]'")
jupytext = pytest.importorskip("jupytext", reason="pip install 'stelab[notebook]'")
nbclient = pytest.importorskip("nbclient", reason="pip install 'stelab[notebook]'")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SOURCE, NOTEBOOK = EXAMPLES / "tutorial.py", EXAMPLES / "tutorial.ipynb"


def _cells(nb) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in nb.cells]


def test_pair_is_in_sync() -> None:
    """An edit of one side without ``jupytext --sync examples/tutorial.py`` fails here."""
    assert _cells(jupytext.read(SOURCE)) == _cells(jupytext.read(NOTEBOOK))


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_tutorial_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STELAB_TUTORIAL_OUT", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute()
    kernel_python = nb.cells[0].outputs[0]["text"].strip()
    assert Path(kernel_python).resolve() == Path(sys.executable).resolve()
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out["output_type"] == "error"]
    assert errors == []
    assert (tmp_path / "sweep" / "results.parquet").is_file()
    assert (tmp_path / "digits.safetensors").is_file()
    last = nb.cells[-1].outputs[-1]["text"]
    agreement = float(re.search(r"float model on ([\d.]+)% of the test images", last).group(1))
    assert agreement >= 99.0  # packed inference reproduces the float model's decisions
