"""The registry of engines: a new engine is one class, registered, and nothing else changes.

The toy engine (tests/toy_engine.py, plain numpy, m = 1) runs through ``stelab run`` and
``stelab sweep`` and gives the dense engine's rows; ``auto`` picks by the declared cost;
``run.engine`` accepts exactly the registered names.
"""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from stelab.cli import app
from stelab.config import parse_config
from stelab.engine import run_experiment, select_engine
from stelab.engine.budget import plan_chunks
from stelab.engine_registry import engine_names, get_engine, register_engine, unregister_engine
from stelab.errors import ConfigError
from tests.helpers import make_config
from tests.toy_engine import NumpyEngine

TOY = """
[model]
d = 24
[train]
n = {n}
steps = 30
[run]
trials = 3
seed = 5
device = "cpu"
dtype = "float64"
engine = "{engine}"
[record]
trajectory = true
"""


@pytest.fixture
def toy():
    engine = register_engine(NumpyEngine())
    yield engine
    unregister_engine(engine.name)


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    drop = ["engine", "wall_seconds"]
    pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop))


def test_run_engine_accepts_every_registered_name_and_only_those(toy):
    assert engine_names() == ("dense", "incremental", "trialwise", "numpy")
    assert make_config(run={"engine": "numpy"}).run.engine == "numpy"
    unregister_engine("numpy")
    with pytest.raises(ConfigError) as err:
        make_config(run={"engine": "numpy"})
    assert str(err.value) == ("run.engine: 'numpy' is not allowed; allowed: auto, dense, "
                              "incremental, trialwise")


def test_the_toy_engine_runs_through_stelab_run(toy, tmp_path):
    for engine in ("numpy", "dense"):
        (tmp_path / f"{engine}.toml").write_text(TOY.format(n=200, engine=engine))
        result = CliRunner().invoke(app, ["run", str(tmp_path / f"{engine}.toml"), "--out",
                                          str(tmp_path / engine)])
        assert result.exit_code == 0, result.output
    toy_rows = pd.read_parquet(tmp_path / "numpy" / "results.parquet")
    dense_rows = pd.read_parquet(tmp_path / "dense" / "results.parquet")
    assert toy_rows["engine"].eq("numpy").all()  # the engine that ran
    assert dense_rows["engine"].eq("dense").all()
    # whole Hamming trajectories are compared, from a random start to w*
    assert all(h[0] > 0 and h[-1] == 0 for h in toy_rows["hamming_trajectory"])
    _same_rows(toy_rows, dense_rows)


def test_the_toy_engine_runs_through_a_sweep(toy, tmp_path):
    sweep = TOY.format(n="[100, 400]", engine="numpy") + '[sweep]\naxes = ["train.n"]\n'
    (tmp_path / "sweep.toml").write_text(sweep)
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "sweep.toml"), "--out",
                                      str(tmp_path / "out"), "--executor", "serial"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert sorted(rows["n"].unique()) == [100, 400] and rows["engine"].eq("numpy").all()
    dense = pd.concat([run_experiment(parse_config({
        "model": {"d": 24}, "train": {"n": n, "steps": 30}, "record": {"trajectory": True},
        "run": {"trials": 3, "seed": 5, "device": "cpu", "dtype": "float64",
                "engine": "dense"}})) for n in (100, 400)], ignore_index=True)
    ours = rows.sort_values(["n", "trial"]).reset_index(drop=True)[dense.columns]
    _same_rows(ours, dense)


def test_auto_takes_the_supported_engine_of_lowest_cost(toy):
    cfg = make_config(run={"dtype": "float64"})
    assert select_engine(cfg) == "dense"  # the toy costs 10, dense 1
    cheap = register_engine(NumpyEngine(cost=0.01))
    assert select_engine(cfg) == "numpy"
    assert plan_chunks(cfg, 1 << 30).engine == "numpy"
    assert select_engine(make_config(model={"m": 2})) != "numpy"  # unsupported there
    forced = make_config(model={"m": 2}, run={"engine": "numpy"})
    with pytest.raises(ConfigError, match=r"^run.engine: 'numpy' cannot run this config "
                                          r"\(model.m: .*allowed here: auto, dense, incremental, trialwise$"):
        select_engine(forced)
    assert cheap is get_engine("numpy")


def test_auto_falls_back_from_the_trialwise_engine_where_its_copies_do_not_fit():
    cfg = make_config(model={"d": 256}, train={"n": 4096, "steps": 5}, run={"trials": 8})
    data = 4 * 4096 * 256
    assert plan_chunks(cfg, 100 * data).engine == "trialwise"
    # the trial-wise engine's one copy per thread and four trials do not fit in 5 data tensors
    # with 16 threads; the batched incremental engine's columns layout does
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("torch.get_num_threads", lambda: 16)
        fallen = plan_chunks(cfg, 9 * data)
        assert (fallen.engine, fallen.layout) == ("incremental", "columns")
        forced = make_config(model={"d": 256}, train={"n": 4096, "steps": 5},
                             run={"trials": 8, "engine": "trialwise"})
        with pytest.raises(Exception, match="run.memory_budget_mb"):
            plan_chunks(forced, 9 * data)  # forced: no fallback, and one trial does not fit


def _stelab_imports(module: str) -> set[str]:
    """The stelab modules ``module`` imports (anywhere in it, functions included)."""
    import ast
    from pathlib import Path

    import stelab

    path = Path(stelab.__file__).parent.joinpath(*module.split(".")[1:]).with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stelab"):
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("stelab")}
    return found


def test_engines_stand_side_by_side_and_the_planner_knows_none():
    from stelab.engine_registry import BUILTIN

    modules = set(BUILTIN.values())
    for name in ("stelab.engine.budget", "stelab.engine.run", *modules):
        imported = _stelab_imports(name) & (modules - {name})
        assert imported == set(), (name, imported)
