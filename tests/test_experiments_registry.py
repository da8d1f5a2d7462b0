"""The registry of experiments: an experiment defined in one place (here, a toy registered by the
test) runs through ``reproduce``, the report and ``plot`` with no other file knowing it; the
pipeline modules name no experiment; src/stelab has no import cycles."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from stelab import analysis
from stelab.errors import StelabError
from stelab.experiments import (
    Experiment,
    SectionContext,
    Table,
    cell_tables,
    experiments,
    register,
    unregister,
)
from stelab.experiments.profile import cell, section
from stelab.render import plotting
from stelab.render.markdown import interval, table
from stelab.report.write import write_report
from stelab.reproduction import reproduce
from stelab.sweep import Execution

SRC = Path(__file__).resolve().parents[1] / "src" / "stelab"
QUIET = {"execution": Execution("serial", progress=False), "log": lambda _msg: None}


def _toy_cells(profile):
    spec = section(profile, "toy")
    return [cell(profile, model={"d": 8}, train={"n": n, "steps": 20},
                 run={"trials": spec["trials"]}) for n in spec["n"]]


def _toy_notes(profile):
    """A table made by the experiment's own runner, not by engine cells."""
    return pd.DataFrame({"note": ["made by run="], "trials": [section(profile, "toy")["trials"]]})


def _toy_derive(tables, n_boot):
    return {"toy_success": analysis.success_table(tables["toy"], by="n",
                                                  success="success_last")}


def _toy_figures(tables, derived, folder):
    fig, axes = plotting.figure(1)
    rates = derived["toy_success"]
    axes[0].plot(rates["n"], rates["rate"], "o-")
    return {"toy_rate": plotting.save(fig, folder / "toy_rate.png")}


def _toy_section(ctx: SectionContext) -> str:
    rates = ctx.derived["toy_success"]
    return "\n".join([
        "## Toy experiment\n",
        table(("n", "success [CI]"), [(str(int(r.n)), interval(r.rate, r.ci_low, r.ci_high))
                                      for r in rates.itertuples()]),
        "",
        ctx.image("toy_rate", "toy success vs n"),
    ])


TOY = Experiment(
    name="toy",
    title="a toy experiment defined in a test",
    profile_table="toy",
    tables=(Table("toy", "toy: success vs n at d = 8", cells=_toy_cells),
            Table("toy_notes", "toy: a table of its own runner", run=_toy_notes,
                  columns=("note",), optional=True)),
    derive=_toy_derive,
    provides=("toy_success",),
    figures=_toy_figures,
    section=_toy_section,
)

TOY_PROFILE = """
[base.run]
seed = 3
device = "cpu"

[toy]
n = [4, 64]
trials = 3
"""


@pytest.fixture()
def toy(tmp_path):
    register(TOY)
    profile = tmp_path / "toy.toml"
    profile.write_text(TOY_PROFILE)
    yield profile
    unregister("toy")


def test_a_registered_experiment_runs_through_reproduce_report_and_plot(toy, tmp_path):
    assert "toy" in cell_tables() and experiments()[-1] is TOY
    out = tmp_path / "run"
    claims = reproduce(toy, out, **QUIET)
    assert claims == {"claims": []}  # the toy gives evidence for no claim
    rows = pd.read_parquet(out / "tables" / "toy.parquet")
    assert len(rows) == 6 and sorted(rows["n"].unique()) == [4, 64]
    assert pd.read_parquet(out / "tables" / "toy_notes.parquet")["note"].tolist() == [
        "made by run="]
    assert len(list((out / "store" / "toy" / "cells").glob("*.parquet"))) == 2
    derived = pd.read_parquet(out / "tables" / "summary_toy_success.parquet")
    assert derived["trials"].tolist() == [3, 3]
    report = (out / "report.md").read_text()
    assert "## Toy experiment" in report and "![toy success vs n](figures/toy_rate.png)" in report
    assert (out / "figures" / "toy_rate.png").stat().st_size > 1000

    copy = tmp_path / "copy"  # plot redraws it from the stored tables alone
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "store")
    shutil.rmtree(copy / "figures")
    (copy / "report.md").unlink()
    write_report(copy, log=lambda _msg: None)
    assert (copy / "figures" / "toy_rate.png").exists()
    assert "## Toy experiment" in (copy / "report.md").read_text()
    assert json.loads((copy / "claims.json").read_text()) == {"claims": []}


def test_only_selects_experiments_or_tables_of_the_registry(toy, tmp_path):
    out = tmp_path / "only"
    reproduce(toy, out, only=["toy_notes"], **QUIET)
    assert sorted(p.name for p in (out / "tables").glob("*.parquet")) == ["toy_notes.parquet"]
    with pytest.raises(StelabError, match=r"--only: unknown table 'nope'; allowed: .*toy_notes"):
        reproduce(toy, tmp_path / "x", only=["nope"], **QUIET)


def test_a_derived_table_not_declared_is_refused(toy, tmp_path):
    out = tmp_path / "run"
    reproduce(toy, out, **QUIET)
    register(replace(TOY, provides=()))
    with pytest.raises(TypeError, match="derive returned 'toy_success', which is not in"):
        write_report(out, log=lambda _msg: None)


def test_two_experiments_cannot_share_a_table():
    clash = replace(TOY, name="clash", tables=(Table("e1", "a second e1", cells=_toy_cells),))
    with pytest.raises(ValueError, match="table 'e1' is defined by both experiment"):
        register(clash)
    assert "clash" not in [exp.name for exp in experiments()]


def test_a_table_has_exactly_one_producer():
    with pytest.raises(TypeError, match="exactly one of cells=, design= and run="):
        Table("x", "neither")
    with pytest.raises(TypeError, match="exactly one of cells=, design= and run="):
        Table("x", "both", cells=_toy_cells, run=_toy_notes)
    with pytest.raises(TypeError, match="exactly one of cells=, design= and run="):
        Table("x", "both", cells=_toy_cells, design=lambda profile, rows: [])


@pytest.mark.parametrize("module", ["reproduction.py", "cli.py", "report/__init__.py",
                                    "report/write.py", "report/folder.py",
                                    "render/markdown.py", "render/plotting.py"])
def test_the_pipeline_names_no_experiment(module):
    """reproduce, plot and the report know experiments only through the registry (the claims
    read derived tables by name, e.g. e1_scaling, never an experiment)."""
    text = (SRC / module).read_text()
    assert not re.findall(r"\b[Ee][1-9]\b|\[e[1-9]\]|experiments\.e[1-9]", text)
