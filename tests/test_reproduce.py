"""A tiny end-to-end reproduce run: tables, figures, claims.json and report.md are well formed,
'stelab plot' redraws them from the stored rows, and another profile is refused in the folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from stelab.claims import CLAIMS
from stelab.errors import StelabError
from stelab.experiments import EXPERIMENTS
from stelab.experiments.profile import EMBEDDED, load_profile
from stelab.report.write import write_report
from stelab.reproduction import reproduce, selected
from stelab.sweep import Execution

TINY = Path(__file__).parent / "data" / "tiny_profile.toml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reproduce") / "tiny"
    reproduce(TINY, out, Execution("serial", progress=False), log=lambda _msg: None)
    return out


def test_tables_hold_every_cell(tiny_run: Path):
    profile = load_profile(TINY)
    ran = {t.name for _exp, tables in selected(profile) for t in tables}
    for name, (build, _) in EXPERIMENTS.items():
        if name not in ran:  # the tiny profile lacks its experiment's table
            continue
        rows = pd.read_parquet(tiny_run / "tables" / f"{name}.parquet")
        cells = build(profile)
        assert len(rows) == sum(c.run.trials for c in cells)


def test_claims_json_is_well_formed(tiny_run: Path):
    claims = json.loads((tiny_run / "claims.json").read_text())["claims"]
    assert [c["id"] for c in claims] == sorted(CLAIMS)
    for claim in claims:
        assert claim["verdict"] in {"supported", "not supported", "inconclusive"}
        assert claim["evidence"] and claim["rule"] and claim["reason"]
    assert claims[3]["evidence"]["real_data_e5_accuracy"]
    c1 = claims[0]["evidence"]
    assert set(c1["n50"]["m1_sign"]) == {"8", "16", "32"}  # the profile's case name


def test_per_trial_tables_carry_the_profile_case_names(tiny_run: Path):
    e1 = pd.read_parquet(tiny_run / "tables" / "e1.parquet")
    e6 = pd.read_parquet(tiny_run / "tables" / "e6.parquet")
    assert set(e1["case"]) == {"m1_sign"}  # as in profile.toml, not m1_sign_identity
    assert set(e6["case"]) == {"m4_step"}
    thresholds = pd.read_parquet(tiny_run / "tables" / "summary_e1_thresholds.parquet")
    assert set(thresholds["case"]) == {"m1_sign"}


def test_report_embeds_existing_figures(tiny_run: Path):
    report = (tiny_run / "report.md").read_text()
    for heading in ("## Verdicts", "## E1", "## E2", "## E3", "## E4", "## E5", "## E6"):
        assert heading in report
    images = [line.split("](")[1].rstrip(")\n") for line in report.splitlines()
              if line.startswith("![")]
    assert len(images) >= 10
    for image in images:
        assert (tiny_run / image).stat().st_size > 1000


def test_plot_redraws_from_stored_rows(tiny_run: Path, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    shutil.rmtree(copy / "store")  # nothing can be rerun: only the tables remain
    shutil.rmtree(copy / "figures")
    (copy / "report.md").unlink()
    write_report(copy, log=lambda _msg: None)
    assert len(list((copy / "figures").glob("*.png"))) >= 10
    assert json.loads((copy / "claims.json").read_text()) == json.loads(
        (tiny_run / "claims.json").read_text()
    )


def test_another_profile_is_refused_in_the_same_folder(tiny_run: Path, tmp_path: Path):
    other = tmp_path / "other.toml"
    other.write_text(TINY.read_text().replace("seed = 7", "seed = 8"))
    with pytest.raises(StelabError, match="holds results of another profile"):
        reproduce(other, tiny_run, Execution("serial", progress=False), log=lambda _msg: None)


def test_embedded_profiles_build():
    for name in EMBEDDED:
        profile = load_profile(name)
        tables = [t for _exp, chosen in selected(profile) for t in chosen if t.runs_cells]
        assert tables and all(t.next_cells(profile, pd.DataFrame()) for t in tables)
