"""One source for each surrogate's formula: the registry (``stelab.quantizers.SURROGATES``).

docs/model.md's surrogate table and the ``quantizers`` module docstring are checked against it:
the same names, each formula starting with the registry's ``Surrogate.formula``, the values
column saying whether it is {0, 1}-valued, and every default parameter written out.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import stelab.quantizers as quantizers
from stelab.quantizers import SURROGATES

ROOT = Path(__file__).resolve().parents[1]


def _builtin_names() -> list[str]:
    """The surrogates of a fresh process (a test may have registered more in this one)."""
    code = "from stelab.quantizers import SURROGATES; print(' '.join(SURROGATES))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return out.stdout.split()


def _docs_table() -> dict[str, tuple[str, str]]:
    """name -> (formula cell, values cell) of docs/model.md's table under '## Surrogates'."""
    text = (ROOT / "docs" / "model.md").read_text()
    section = text.split("## Surrogates", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[1].replace("\\|", "|"), cells[2])
    return rows


def _docstring_list() -> dict[str, str]:
    """name -> formula of the surrogate list in the quantizers module docstring."""
    doc = quantizers.__doc__ or ""
    section = doc.split("Surrogate derivatives", 1)[1].split("Weight STE", 1)[0]
    return dict(re.findall(r"^\* ``(\w+)``\s*:\s*(.+)$", section, flags=re.M))


def test_docs_table_and_docstring_name_every_builtin_surrogate():
    names = _builtin_names()
    assert names and set(names) <= set(SURROGATES)
    assert sorted(_docs_table()) == sorted(names)
    assert sorted(_docstring_list()) == sorted(names)


def test_each_written_formula_is_the_registrys():
    table, listed = _docs_table(), _docstring_list()
    for name in _builtin_names():
        surrogate = SURROGATES[name]
        formula, values = table[name]
        assert formula.startswith(surrogate.formula), (name, formula)
        assert listed[name].startswith(surrogate.formula), (name, listed[name])
        assert values == ("{0, 1}" if surrogate.discrete else "continuous"), name
        for param, default in surrogate.params.items():
            assert f"{param} = {default:g}" in formula, (name, param)


def test_the_check_reads_the_table():
    table = _docs_table()
    assert table["hardtanh"] == ("1[|h| <= w], width = 1", "{0, 1}")
    assert table["swish"][1] == "continuous"
