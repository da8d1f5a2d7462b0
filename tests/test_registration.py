"""stelab.register_surrogate / register_distribution: shipped to workers by value, part of the
config digest, refused with one line when they cannot travel; windowed surrogates' width
(issue 25)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import stelab
from stelab import registration
from stelab.data import REGISTERED_DISTRIBUTIONS
from stelab.errors import ConfigError
from stelab.quantizers import REGISTERED_SURROGATES, get_surrogate
from stelab.sweep import Execution, LocalExecutor, SerialExecutor, drop_timing, run_cells


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    for table in (REGISTERED_SURROGATES, REGISTERED_DISTRIBUTIONS):
        table.clear()
    for kind in registration._REGISTERED.values():
        kind.clear()


def _config(**train):
    return stelab.parse_config({"model": {"d": 24}, "train": {"n": 96, "steps": 30, **train},
                                "run": {"trials": 4, "device": "cpu"}})


def test_registered_surrogate_runs_on_a_worker_process_that_never_saw_it(tmp_path):
    def gauss(h, a=1.0):  # local: a worker cannot import it by name
        return torch.exp(-a * h * h)

    stelab.register_surrogate("gauss_bump", gauss, formula="exp(-a h^2)", params={"a": 1.0})
    cfg = _config(ste="gauss_bump", ste_params={"a": 0.5})
    serial = run_cells([cfg], tmp_path / "s", execution=Execution(SerialExecutor(), progress=False))
    pooled = run_cells([cfg], tmp_path / "p",
                       execution=Execution(LocalExecutor(workers=1), progress=False))
    assert len(pooled) == 4 and set(pooled["ste"]) == {"gauss_bump"}
    assert drop_timing(serial).equals(drop_timing(pooled))


def test_registered_distribution_runs_on_a_worker_process(tmp_path):
    def two_point(rng, shape, p=0.3):
        return np.where(rng.random(shape) < p, 1.0, -0.5).astype(np.float32)

    stelab.register_distribution("two_point", two_point, params={"p": 0.3}, bounds={"p": (0, 1)})
    cfg = stelab.parse_config({"model": {"d": 16}, "data": {"distribution": "two_point"},
                               "train": {"n": 64, "steps": 20}, "run": {"trials": 2}})
    rows = run_cells([cfg], tmp_path, execution=Execution(LocalExecutor(workers=1),
                                                          progress=False))
    assert list(rows["distribution"]) == ["two_point"] * 2


def test_the_function_enters_the_digest_and_builtins_do_not_change():
    builtin = _config(ste="hardtanh").digest()
    stelab.register_surrogate("bump", lambda h: torch.exp(-h * h), formula="exp(-h^2)")
    first = _config(ste="bump").digest()
    stelab.register_surrogate("bump", lambda h: torch.exp(-h * h), formula="exp(-h^2)")
    assert _config(ste="bump").digest() == first  # the same definition again: same cells
    stelab.register_surrogate("bump", lambda h: torch.exp(-2 * h * h), formula="exp(-h^2)")
    assert _config(ste="bump").digest() != first  # an edit: new cells, never the old ones
    assert _config(ste="hardtanh").digest() == builtin


def test_refused_with_one_line():
    lock = threading.Lock()

    def locked(h):
        with lock:
            return torch.ones_like(h)

    with pytest.raises(ConfigError, match="cannot be shipped to a worker") as err:
        stelab.register_surrogate("locked", locked, formula="1")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="built in"):
        stelab.register_surrogate("hardtanh", lambda h: h, formula="h")
    with pytest.raises(ConfigError, match="finite tensor"):
        stelab.register_surrogate("bad", lambda h: h.sum(), formula="sum")
    with pytest.raises(ConfigError, match="float32"):
        stelab.register_distribution("bad", lambda rng, shape: rng.random(shape))  # float64


def test_payload_installs_in_a_fresh_registry():
    stelab.register_surrogate("window", interval=(-0.5, 0.5, True), formula="1[|h| <= 1/2]")
    cfg = _config(ste="window")
    payload = registration.payload_for(cfg)
    digest = cfg.digest()
    REGISTERED_SURROGATES.clear()
    registration._REGISTERED["surrogate"].clear()  # a worker that never saw it
    registration.install(payload)
    assert get_surrogate("window").interval.ends == (-0.5, 0.5)
    assert cfg.digest() == digest


def test_hardtanh_width_one_is_todays_surrogate_and_a_width_is_exact_on_every_engine():
    default = stelab.run_experiment(_config(ste="hardtanh"))
    explicit = stelab.run_experiment(_config(ste="hardtanh", ste_params={"width": 1.0}))
    same = ["success_last", "final_hamming", "min_hamming", "first_hit_step"]
    assert default[same].equals(explicit[same])
    h = torch.tensor([-0.6, -0.5, 0.0, 0.5, 0.6])
    assert get_surrogate("hardtanh")(h, width=0.5).tolist() == [0, 1, 1, 1, 0]
    assert get_surrogate("clipped_relu")(h, width=0.5).tolist() == [0, 0, 0, 0, 0]
    assert get_surrogate("clipped_relu")(h, width=0.6).tolist() == [0, 0, 0, 1, 0]
    rows = {
        engine: stelab.run_experiment(stelab.parse_config({
            "model": {"d": 24}, "train": {"n": 96, "steps": 30, "ste": "hardtanh",
                                          "ste_params": {"width": 3.0}},
            "run": {"trials": 4, "device": "cpu", "engine": engine}}))
        for engine in ("dense", "incremental")
    }
    assert rows["dense"][same].equals(rows["incremental"][same])
    assert not rows["dense"][same].equals(default[same])
    with pytest.raises(ConfigError, match="train.ste_params.width"):
        _config(ste="hardtanh", ste_params={"width": 0.0})


def test_registered_surrogate_runs_on_a_dask_worker_process(tmp_path):
    pytest.importorskip("distributed")
    from stelab.sweep import DaskExecutor

    def bump(h):
        return 1.0 / (1.0 + h * h)

    stelab.register_surrogate("cauchy_bump", bump, formula="1 / (1 + h^2)")
    cfg = _config(ste="cauchy_bump")
    serial = run_cells([cfg], tmp_path / "s", execution=Execution(SerialExecutor(), progress=False))
    dask = DaskExecutor(workers=1, processes=True)
    try:
        rows = run_cells([cfg], tmp_path / "d", execution=Execution(dask, progress=False))
    finally:
        dask.close()
    assert drop_timing(serial).equals(drop_timing(rows))
