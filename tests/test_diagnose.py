"""stelab diagnose: the n_eff predictor, its agreement with the engine (E4), bad inputs, CLI."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from stelab.cli import main
from stelab.data import DISTRIBUTIONS
from stelab.diagnosis import (
    diagnose,
    engine_agreement,
    gaussian_discrimination_probability,
    load_data,
    simulate,
    validate_data,
)
from stelab.errors import ConfigError, DataError


def _gaussian(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


def test_discrimination_probability_matches_monte_carlo():
    d = 8
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200_000, d))
    w = np.ones(d)
    q = w.copy()
    q[0] = -1
    empirical = np.mean(np.sign(x @ w) != np.sign(x @ q))
    assert empirical == pytest.approx(gaussian_discrimination_probability(d), abs=0.004)


def test_gaussian_data_have_n_eff_close_to_n():
    X = _gaussian(2000, 16)
    dg = diagnose(X, n50=50.0, normalizations=("none", "standardize"))
    for c in dg.checks:
        assert c.n_eff == pytest.approx(2000, rel=0.1)
        assert c.predicted_healthy and c.unpinned_share == 0
    assert dg.healthy_raw and dg.recommended == "none"
    assert dg.projection_ks_mean < 3 * dg.projection_ks_reference


def test_prediction_uses_the_statistics_and_the_reference_threshold():
    X = _gaussian(300, 16)
    assert diagnose(X, (0.5,), ("none",), n50=250.0).predicted("none")
    assert not diagnose(X, (0.5,), ("none",), n50=400.0).predicted("none")


def test_nonnegative_data_with_unbalanced_teacher_fail_raw_and_recover_centred():
    X = np.random.default_rng(2).random((1000, 32))  # uniform on [0, 1]
    dg = diagnose(X, n50=51.0)
    raw = dg.check("none", 0.75)
    assert raw.minority_label_share < 0.01 and raw.unpinned_share > 0.5
    assert not raw.predicted_healthy and dg.check("none", 0.5).predicted_healthy
    assert dg.recommended == "center"


def test_constant_features_are_left_out_of_the_checks():
    X = _gaussian(500, 10)
    X[:, 3] = 7.0
    dg = diagnose(X, n50=20.0)
    assert (dg.d, dg.d_analysed, dg.constant_features) == (10, 9, 1)
    assert dg.healthy_raw


def test_json_output_round_trips():
    dg = diagnose(_gaussian(200, 8), n50=20.0)
    data = json.loads(dg.to_json())
    assert data["recommended"] == dg.recommended
    assert len(data["checks"]) == len(dg.checks) == 10


def test_simulate_measures_success_on_the_data_itself():
    assert simulate(_gaussian(400, 16), "none", 0.5, trials=8, steps=200) == 1.0
    assert simulate(_gaussian(6, 16), "none", 0.5, trials=8, steps=200) == 0.0


def test_diagnose_agrees_with_e4_for_every_distribution():
    """For each registry distribution, both teacher balances and every normalization: the
    engine's measured success (rate >= 0.5 over 16 trials at d = 32, n = 1000 ~ 20 x the Gaussian
    n50, T = 500) against diagnose's prediction on an independent sample."""
    table = engine_agreement(d=32, n=1000, steps=500, trials=16)
    assert set(table["distribution"]) == set(DISTRIBUTIONS)
    assert len(table) == len(DISTRIBUTIONS) * 2 * 5
    # both outcomes occur, so agreement is not trivial
    assert table["measured_healthy"].any() and not table["measured_healthy"].all()
    disagreements = table[~table["agree"]]
    assert disagreements.empty, disagreements.to_string()


# ------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    "X, match",
    [
        (np.arange(5.0), "expected a 2-D array"),
        (np.zeros((2, 3, 4)), "expected a 2-D array"),
        (np.zeros((1, 3)), "need at least 2 samples"),
        (np.zeros((0, 3)), "need at least 2 samples"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), "1 entries are NaN or infinite .first at row 0, column 1"),
        (np.array([[1.0, 2.0], [np.inf, 3.0]]), "NaN or infinite .first at row 1, column 0"),
        (np.array([["a", "b"], ["c", "d"]]), "expected numbers"),
        ([[1.0, 2.0], [3.0]], "cannot be read as an array|expected numbers"),
    ],
)
def test_bad_arrays_raise_one_line_data_errors(X, match):
    with pytest.raises(DataError, match=match) as info:
        validate_data(X)
    assert "\n" not in str(info.value)


def test_all_constant_data_and_bad_options():
    with pytest.raises(DataError, match="all 3 features are constant"):
        diagnose(np.ones((10, 3)), n50=5.0)
    with pytest.raises(ConfigError, match="teacher_balance"):
        diagnose(_gaussian(10, 3), (1.5,), n50=5.0)
    with pytest.raises(ConfigError, match="normalization: unknown value 'zca'"):
        diagnose(_gaussian(10, 3), normalizations=("zca",), n50=5.0)


def test_load_data_formats(tmp_path):
    X = _gaussian(5, 3)
    np.save(tmp_path / "a.npy", X)
    np.savez(tmp_path / "b.npz", X=X, y=np.arange(5))
    np.savez(tmp_path / "c.npz", features=X)
    (tmp_path / "d.csv").write_text("a,b,c,label\n" + "\n".join(
        ",".join(f"{v:.17g}" for v in row) + ",x" for row in X))
    (tmp_path / "e.csv").write_text("\n".join(",".join(f"{v:.17g}" for v in row) for row in X))
    assert np.array_equal(load_data(tmp_path / "a.npy"), X)
    assert np.array_equal(load_data(tmp_path / "b.npz"), X)
    assert np.array_equal(load_data(tmp_path / "c.npz"), X)
    assert np.allclose(load_data(tmp_path / "d.csv", drop=("label",)), X)
    assert np.allclose(load_data(tmp_path / "e.csv"), X)  # no header row


@pytest.mark.parametrize(
    "name, content, kwargs, match",
    [
        ("empty.csv", "", {}, "is empty"),
        ("header.csv", "a,b\n", {}, "has a header but no rows"),
        ("text.csv", "a,b\n1,x\n2,y\n", {}, "column 'b' of text.csv is not numeric"),
        ("drop.csv", "a,b\n1,2\n", {"drop": ("c",)}, "--drop: no column 'c'"),
        ("data.txt", "1 2\n", {}, "unsupported file type '.txt'"),
        ("nan.csv", "a,b\n1,2\n3,\n", {}, "NaN or infinite"),
        ("bad.npy", "not numpy", {}, "cannot read"),
    ],
)
def test_bad_files_raise_one_line_data_errors(tmp_path, name, content, kwargs, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        load_data(path, **kwargs)
    assert "\n" not in str(info.value)


def test_npz_key_errors(tmp_path):
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 2)), b=np.zeros((3, 2)))
    with pytest.raises(DataError, match="--key: two.npz holds several arrays.*allowed: a, b"):
        load_data(tmp_path / "two.npz")
    with pytest.raises(DataError, match="--key: no array 'c'"):
        load_data(tmp_path / "two.npz", key="c")
    assert load_data(tmp_path / "two.npz", key="b").shape == (3, 2)
    with pytest.raises(DataError, match="file not found"):
        load_data(tmp_path / "missing.npz")


# ------------------------------------------------------------------------------ CLI
def _run_cli(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["stelab", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code


def test_cli_bad_input_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,[x]\n")
    assert _run_cli(monkeypatch, "diagnose", str(path)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "column 'b' of bad.csv is not numeric" in err
    assert "'[x]'" in err  # brackets survive the rich console


def test_cli_json_and_table(tmp_path, monkeypatch, capsys):
    path = tmp_path / "x.npy"
    np.save(path, _gaussian(300, 8))
    code = _run_cli(monkeypatch, "diagnose", str(path), "--json", "--gaussian-n50", "30")
    assert code in (0, None)
    data = json.loads(capsys.readouterr().out)
    assert data["healthy_raw"] and math.isclose(data["gaussian_n50"], 30.0)
    code = _run_cli(monkeypatch, "diagnose", str(path), "--gaussian-n50", "30", "--balance", "0.5")
    assert code in (0, None)
    out = capsys.readouterr().out
    assert "recommended: none" in out and "n_eff" in out
