"""diagnose: --label, a warning for a column that looks like labels, full-width output when
piped, and a verdict that says what it models (issue 25)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from stelab.cli import app
from stelab.diagnosis import load_data
from stelab.diagnosis.loading import LabelColumnWarning
from stelab.errors import DataError


@pytest.fixture
def csv_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = rng.integers(0, 3, 60)
    path = tmp_path / "data.csv"
    header = "a,b,c,d,e,label"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=header, comments="",
               fmt=["%.6f"] * 5 + ["%d"])
    return path


def test_label_column_is_left_out_with_label(csv_with_labels):
    assert load_data(csv_with_labels, label="label").shape == (60, 5)
    with pytest.raises(DataError, match="--label: no column 'target'"):
        load_data(csv_with_labels, label="target")


def test_a_kept_label_column_warns(csv_with_labels):
    with pytest.warns(LabelColumnWarning, match="'label' of data.csv looks like labels"):
        X = load_data(csv_with_labels)
    assert X.shape == (60, 6)


def test_no_warning_for_integer_features(tmp_path):
    path = tmp_path / "counts.csv"
    rng = np.random.default_rng(1)
    np.savetxt(path, rng.integers(0, 4, (40, 6)), delimiter=",", fmt="%d",
               header="p,q,r,s,t,u", comments="")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelColumnWarning)
        load_data(path)


def test_cli_label_option_piped_output_is_full_width_and_says_what_it_models(csv_with_labels):
    result = CliRunner().invoke(app, ["diagnose", str(csv_with_labels), "--label", "label",
                                      "--gaussian-n50", "40", "--teachers", "2", "--steps", "50"])
    assert result.exit_code == 0, result.output
    assert "60 samples x 5 features" in result.output
    for column in ("disc/nbr", "verdict", "unpinned"):
        assert column in result.output  # no 80-column truncation to 'disc/n…', 'verdi…'
    assert "…" not in result.output
    assert "identity STE" in result.output and "batch norm" in result.output
    warned = CliRunner().invoke(app, ["diagnose", str(csv_with_labels), "--gaussian-n50", "40",
                                      "--teachers", "2", "--steps", "50"])
    assert "looks like labels" in warned.output and "--label label" in warned.output
