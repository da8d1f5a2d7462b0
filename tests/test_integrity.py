"""Checksums of stored files (issue 23, item 1): every kind of stored file carries one, a single
flipped bit anywhere is found, and a damaged file is never served: a cell is recomputed, a table
rebuilt, anything else refused with one line naming it."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stelab.atomic import atomic_write
from stelab.errors import OutputError, PackError, StelabError
from stelab.integrity import IntegrityError, check_file, read_checked, sidecar
from stelab.report.write import write_report
from stelab.reproduction import reproduce
from stelab.results import check_run_output, read_run_results, write_run_results
from stelab.sweep import Execution, drop_timing, execute_sweep, parse_sweep, run_cells, sweep_cells
from stelab.verify import verify_path
from tests.conftest import make_config

SERIAL = Execution("serial", progress=False)
TINY = Path(__file__).parent / "data" / "tiny_profile.toml"
QUIET = {"log": lambda _msg: None}


def flip(path: Path, rng: random.Random) -> tuple[int, int]:
    """Flip one random bit of ``path``; returns (offset, bit) to flip it back."""
    data = bytearray(path.read_bytes())
    offset, bit = rng.randrange(len(data)), rng.randrange(8)
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
    return offset, bit


def toggle(path: Path, where: tuple[int, int]) -> None:
    data = bytearray(path.read_bytes())
    data[where[0]] ^= 1 << where[1]
    path.write_bytes(bytes(data))


def sweep_cells_tiny():
    return sweep_cells(parse_sweep({
        "model": {"d": 16}, "noise": {"kind": "flip", "level": [0.0, 0.1]},
        "train": {"n": [32, 64], "steps": 20}, "run": {"trials": 3, "device": "cpu"},
        "sweep": {"axes": ["train.n", "noise.level"]},
    }))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("integrity") / "tiny"
    reproduce(TINY, out, SERIAL, only=["e2"], **QUIET)  # every kind of file, in seconds
    return out


@pytest.fixture
def packed(tmp_path) -> Path:
    from torch import nn

    from stelab.nn.layers import QuantLinear
    from stelab.pack import export_packed

    model = nn.Sequential(QuantLinear(33, 5, input_quantizer="sign"), nn.BatchNorm1d(5))
    return export_packed(model, tmp_path / "model.safetensors")


def test_every_bit_of_a_small_file_and_of_its_sidecar_counts(tmp_path):
    path = atomic_write(tmp_path / "x.json", lambda fh: fh.write(b'{"a": [1, 2.5e3]}\n'))
    assert check_file(path).status == "ok"
    for target in (path, sidecar(path)):
        for offset in range(target.stat().st_size):
            for bit in range(8):
                toggle(target, (offset, bit))
                assert check_file(path).status == "damaged", (target.name, offset, bit)
                toggle(target, (offset, bit))
    assert read_checked(path) == b'{"a": [1, 2.5e3]}\n'


def test_a_replacement_interrupted_between_its_steps_still_verifies(tmp_path):
    path = atomic_write(tmp_path / "t.txt", lambda fh: fh.write(b"old"))
    steps = []

    def write(p: Path, data: bytes) -> None:
        steps.append(p.name)
        if len(steps) == 2:
            raise KeyboardInterrupt  # killed after the sidecar, before the file
        p.write_bytes(data)

    from stelab.integrity import write_with_checksum

    with pytest.raises(KeyboardInterrupt):
        write_with_checksum(path, b"new", write)
    assert steps == ["t.txt.sha256", "t.txt"]
    assert read_checked(path) == b"old"  # the old bytes are still accepted
    atomic_write(path, lambda fh: fh.write(b"new"))
    assert sidecar(path).read_text().count("\n") == 1  # back to one digest
    path.write_bytes(b"old")
    with pytest.raises(IntegrityError):
        read_checked(path)


def test_every_stored_file_of_every_kind_is_checked(tiny_run, tmp_path, packed):
    cells = sweep_cells_tiny()
    run_cells(cells, tmp_path / "sweep", execution=SERIAL)
    write_run_results(pd.DataFrame({"trial": [0, 1], "final_hamming": [3, 4]}), tmp_path / "run",
                      make_config())
    rng = random.Random(23)
    kinds = set()
    for root in (tiny_run, tmp_path / "sweep", tmp_path / "run", packed):
        report = verify_path(root)
        assert not report.damaged and report.counts["unchecked"] == 0, report.lines()
        for check in report.checks:
            kinds.add(check.path.suffix)
            for _ in range(3):
                where = flip(check.path, rng)
                found = verify_path(root).damaged
                assert [c.path for c in found] == [check.path], where
                toggle(check.path, where)
    assert {".parquet", ".json", ".md", ".png", ".toml", ".safetensors"} <= kinds


def test_a_cell_rewritten_by_another_tool_is_recomputed(tmp_path):
    """The rows still decode (a column changed by a tool): the checksum alone finds it."""
    cells = sweep_cells_tiny()
    good = run_cells(cells, tmp_path, execution=SERIAL)
    victim = tmp_path / "cells" / f"{cells[2].key}.parquet"
    table = pq.read_table(victim)
    column = table.column_names.index("final_hamming")
    changed = pa.array([v + 1 for v in table.column(column).to_pylist()],
                       type=table.schema.field(column).type)
    pq.write_table(table.set_column(column, "final_hamming", changed), victim)
    report = execute_sweep(cells, tmp_path, SERIAL)
    assert [key for key, _ in report.corrupt] == [cells[2].key]
    assert "checksum mismatch" in report.corrupt[0][1] and report.computed == 1
    pd.testing.assert_frame_equal(drop_timing(good), drop_timing(report.rows))
    assert not verify_path(tmp_path).damaged


def test_a_damaged_table_is_rebuilt_from_its_store(tiny_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    table = copy / "tables" / "e2.parquet"
    before = pd.read_parquet(table)
    flip(table, random.Random(1))
    lines = []
    write_report(copy, log=lines.append)
    assert any("e2.parquet: checksum mismatch; rebuilt" in line for line in lines)
    pd.testing.assert_frame_equal(pd.read_parquet(table), before)
    assert json.loads((copy / "claims.json").read_text()) == json.loads(
        (tiny_run / "claims.json").read_text())
    assert not verify_path(copy).damaged


def test_a_table_without_an_intact_copy_is_refused_naming_it(tiny_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    flip(copy / "tables" / "e2.parquet", random.Random(2))
    flip(copy / "store" / "e2" / "results.parquet", random.Random(3))
    with pytest.raises(StelabError) as exc:
        write_report(copy, **QUIET)
    line = str(exc.value)
    assert "\n" not in line and "e2.parquet: checksum mismatch" in line
    assert "rerun 'stelab reproduce'" in line


@pytest.mark.parametrize("name", ["manifest.json", "profile.toml"])
def test_files_that_cannot_be_rebuilt_are_refused(tiny_run, tmp_path, name):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    flip(copy / name, random.Random(4))
    with pytest.raises(StelabError, match=f"{name}: checksum"):
        if name == "manifest.json":
            write_report(copy, **QUIET)
        else:
            reproduce(TINY, copy, SERIAL, only=["e2"], **QUIET)


def test_sweep_manifest_and_run_results_are_refused(tmp_path):
    cells = sweep_cells_tiny()
    run_cells(cells, tmp_path / "sweep", execution=SERIAL)
    flip(tmp_path / "sweep" / "manifest.json", random.Random(5))
    with pytest.raises(StelabError, match="manifest.json: checksum"):
        run_cells(cells, tmp_path / "sweep", execution=SERIAL)
    write_run_results(pd.DataFrame({"trial": [0, 1], "final_hamming": [3, 4]}), tmp_path / "run",
                      make_config())
    flip(tmp_path / "run" / "results.parquet", random.Random(6))
    with pytest.raises(IntegrityError, match="results.parquet: checksum"):
        read_run_results(tmp_path / "run")
    with pytest.raises(OutputError, match="holds a damaged table"):  # never 'the same results'
        check_run_output(tmp_path / "run", make_config(), overwrite=False)


def test_a_packed_model_with_a_flipped_bit_is_refused(packed):
    from stelab.pack import load_packed

    rng = random.Random(7)
    for _ in range(20):
        where = flip(packed, rng)
        with pytest.raises(PackError):
            load_packed(packed)
        toggle(packed, where)
    load_packed(packed)


def test_folders_written_before_checksums_load_and_say_unchecked(tiny_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    for side in copy.rglob("*.sha256"):
        side.unlink()
    report = verify_path(copy)
    assert report.counts["unchecked"] == len(report.checks) > 0 and not report.damaged
    write_report(copy, **QUIET)  # reads the unchecked tables, writes checked derived ones
    assert verify_path(copy / "tables" / "e2.parquet").counts["unchecked"] == 1
    summary = next((copy / "tables").glob("summary_*.parquet"))
    assert verify_path(summary).counts["ok"] == 1


def test_cli_verify_says_what_it_found_and_fails_on_damage(tiny_run, tmp_path, monkeypatch,
                                                           capsys):
    from tests.test_sweep_store import run_cli

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    assert run_cli(monkeypatch, "verify", str(copy)) == 0
    assert "0 damaged" in capsys.readouterr().out
    flip(copy / "store" / "e2" / "cells" / next(
        p.name for p in (copy / "store" / "e2" / "cells").glob("*.parquet")), random.Random(8))
    assert run_cli(monkeypatch, "verify", str(copy)) == 1
    out = capsys.readouterr().out
    assert "damaged:" in out and "recomputed by the next run" in out and "1 damaged" in out
    assert run_cli(monkeypatch, "verify", str(tmp_path / "nowhere")) == 2
