"""The reliability campaign: hostile inputs and faults against the ``stelab`` command line.

Each case runs one command and is judged against an oracle written here, independently of
stelab's own validation (the rules below restate the documented allowed values):

* ``ok``         the command succeeded and the oracle expected it to;
* ``refusal``    the expected non-zero status (2: user, 1: machine) with exactly one line on
                 stderr that names the expected field or path;
* ``traceback``  'Traceback' on stderr, an "unexpected error" line, or an exception escaping;
* ``silent``     success where the oracle expects a refusal, or a stored table that differs
                 from the uninterrupted one;
* ``wrong``      a refusal with the wrong status, several lines, or not naming the field;
* ``lost``       a stored file changed (sha256 before and after) where nothing may change;
* ``hang``       past the case's time limit.

``tests/test_reliability.py`` runs the families under hypothesis (a fast part in the default
suite, the rest with ``-m slow``); ``bench/reliability_campaign.py`` runs them all and prints
the counts of docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

INT64_MAX = 2**63 - 1
MAX_TRIALS = 10**9
MAX_BUDGET_MB = 2.0**40

#: a tiny valid config: every value case mutates one key of it
BASE: dict[str, dict[str, Any]] = {
    "model": {"d": 4},
    "train": {"n": 8, "steps": 5},
    "run": {"trials": 2, "device": "cpu"},
}
SWEEP_BASE: dict[str, dict[str, Any]] = {
    "model": {"d": [3, 4, 5]},
    "train": {"n": 8, "steps": 20},
    "run": {"trials": 4, "device": "cpu"},
    "sweep": {"axes": ["model.d"], "block_trials": 2},
}
OUTCOMES = ("ok", "refusal", "traceback", "silent", "wrong", "lost", "hang")


# ----------------------------------------------------------------------------- TOML writing
def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    """A TOML literal of ``value`` (bool, int, float incl. inf/nan, str, list, dict)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_text(doc: dict[str, Any]) -> str:
    lines = []
    for section, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{section}]")
            lines += [f"{toml_string(str(k))} = {toml_value(v)}" for k, v in table.items()]
        else:
            lines.insert(0, f"{toml_string(str(section))} = {toml_value(table)}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the oracle
@dataclass(frozen=True)
class Rule:
    """The documented allowed values of one numeric or boolean config key."""

    kind: str  # "int" | "float" | "bool"
    low: float = -math.inf
    low_open: bool = False
    high: float = math.inf
    work: bool = False  # a size: large valid values may be refused for memory, never run

    def allows(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
        if isinstance(value, bool):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if self.kind == "float" and not isinstance(value, int | float):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high


RULES: dict[str, Rule] = {
    "model.d": Rule("int", 1, high=INT64_MAX, work=True),
    "model.m": Rule("int", 1, high=INT64_MAX, work=True),
    "model.teacher_balance": Rule("float", 0, high=1),
    "train.n": Rule("int", 1, high=INT64_MAX, work=True),
    "train.steps": Rule("int", 1, high=INT64_MAX, work=True),
    "train.step_size": Rule("float", 0, low_open=True),
    "train.init_scale": Rule("float", 0),
    "train.batch_size": Rule("int", 1, high=8),  # at most train.n = 8
    "run.trials": Rule("int", 1, high=MAX_TRIALS, work=True),
    "run.seed": Rule("int", 0, high=INT64_MAX),
    "run.memory_budget_mb": Rule("float", 0, low_open=True, high=MAX_BUDGET_MB),
    "record.absorb_window": Rule("int", 0, high=INT64_MAX),
    "record.trajectory": Rule("bool"),
    "noise.level": Rule("float", 0, high=1),
    "train.ste_params.beta": Rule("float", 0, low_open=True),  # with ste = "swish"
    "data.params.p": Rule("float", 0, high=1),  # with distribution = "sparse_bernoulli"
}

#: integers: small ones that run at once, huge ones (refused by range or by the memory plan);
#: never a mid-size valid size, which would only make the campaign slow
hostile_ints = st.one_of(
    st.integers(-3, 9),
    st.integers(2**62, 2**66),
    st.sampled_from([INT64_MAX, INT64_MAX + 1, -(2**63) - 1, 2**70, MAX_TRIALS + 1]),
)
hostile_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-300, 1e300, 1.7976931348623157e308, 3e38, 0.5, 1.0]),
)
hostile_values = st.one_of(
    hostile_ints, hostile_floats, st.booleans(),
    st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["a", "d"]), st.integers(0, 3), max_size=1),
)


def config_with(key: str, value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(BASE))
    if key == "train.ste_params.beta":
        doc["train"].update(ste="swish", ste_params={"beta": value})
        return doc
    if key == "data.params.p":
        doc["data"] = {"distribution": "sparse_bernoulli", "params": {"p": value}}
        return doc
    section, name = key.split(".")
    if key == "noise.level":
        doc["noise"] = {"kind": "flip"}
    doc.setdefault(section, {})[name] = value
    return doc


# ----------------------------------------------------------------------------- running
@dataclass
class Expect:
    """What the oracle allows: statuses, the text a refusal must name, files that must stay."""

    status: set[int]
    names: tuple[str, ...] = ()  # a refusal line must contain one of these
    guard: list[Path] = field(default_factory=list)  # files that must be unchanged
    #: after a success, given stdout: None, or why the answer is silently wrong
    check: Callable[[str], str | None] | None = None


@dataclass
class Result:
    family: str
    case: str
    outcome: str
    status: int | None
    stderr: str
    seconds: float


def digest(paths: Iterable[Path]) -> dict[str, str]:
    """sha256 of every file under ``paths`` (files or folders), by path."""
    out = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class _Timeout(BaseException):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def invoke(
    args: list[str], cwd: Path, limit: float = 60.0
) -> tuple[int | None, str, bool, str]:
    """Run ``stelab ARGS`` in this process exactly as the console script does
    (``stelab.cli.main`` with ``sys.argv`` set, stdout and stderr captured); returns (status,
    stderr, timed out, stdout). An exception escaping ``main`` counts as a traceback."""
    import contextlib
    import io
    import traceback

    from stelab.cli import main

    here, argv = os.getcwd(), sys.argv
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    status: int | None = 0
    try:
        os.chdir(cwd)
        sys.argv = ["stelab", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as stop:
                code = stop.code
                status = code if isinstance(code, int) else (0 if code is None else 1)
            except _Timeout:
                raise
            except BaseException:  # noqa: BLE001 - what the user would see as a traceback
                err.write(traceback.format_exc())
                status = 1
        return status, err.getvalue(), False, out.getvalue()
    except _Timeout:
        return None, err.getvalue(), True, out.getvalue()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.argv = argv
        os.chdir(here)


def stelab_command() -> list[str]:
    return [sys.executable, "-m", "stelab"]


def judge(status: int | None, stderr: str, timed_out: bool, expect: Expect,
          before: dict[str, str], stdout: str = "") -> str:
    """The outcome of one case (see the module docstring)."""
    if timed_out:
        return "hang"
    if "Traceback" in stderr or "unexpected error" in stderr:
        return "traceback"
    if before and digest(Path(p) for p in before if Path(p).exists()) != before or any(
        not Path(p).exists() for p in before
    ):
        return "lost"
    if status == 0:
        if 0 not in expect.status:
            return "silent"
        why = expect.check(stdout) if expect.check else None
        if why:
            expect.names = (why,)  # kept for the report line
        return "silent" if why else "ok"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if status not in expect.status or len(lines) != 1:
        return "wrong"
    if expect.names and not any(name in lines[0] for name in expect.names):
        return "wrong"
    return "refusal"


def run_case(family: str, case: str, args: list[str], cwd: Path, expect: Expect,
             limit: float = 60.0) -> Result:
    before = digest(expect.guard)
    began = time.perf_counter()
    status, stderr, timed_out, stdout = invoke(args, cwd, limit)
    seconds = time.perf_counter() - began
    outcome = judge(status, stderr, timed_out, expect, before, stdout)
    if outcome == "silent" and expect.names:
        stderr = f"{stderr.strip()} [silent: {expect.names[0]}]"
    return Result(family, case, outcome, status, stderr.strip(), seconds)


# ----------------------------------------------------------------------------- fixtures
def stored_run(root: Path) -> Path:
    """A folder holding the results of ``BASE`` (made once per root, copied per case)."""
    folder = root / "stored-run"
    if not (folder / "results.parquet").exists():
        (root / "base.toml").write_text(toml_text(BASE))
        status, stderr, *_ = invoke(["run", "base.toml", "--out", str(folder)], root)
        assert status == 0, stderr
    return folder


def fresh_copy(source: Path, root: Path, name: str) -> Path:
    target = root / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target


def stored_sweep(root: Path) -> tuple[Path, pd.DataFrame]:
    """A finished sweep of ``SWEEP_BASE`` and its table without the timing column."""
    folder = root / "stored-sweep"
    config = root / "sweep.toml"
    config.write_text(toml_text(SWEEP_BASE))
    if not (folder / "results.parquet").exists():
        status, stderr, *_ = invoke(["sweep", "sweep.toml", "--out", str(folder), "--executor",
                                    "serial"], root)
        assert status == 0, stderr
    return folder, table_of(folder)


def table_of(folder: Path) -> pd.DataFrame:
    rows = pd.read_parquet(folder / "results.parquet")
    return rows.drop(columns=["wall_seconds"], errors="ignore").reset_index(drop=True)


def same_table(folder: Path, baseline: pd.DataFrame) -> str | None:
    try:
        rows = table_of(folder)
    except Exception as err:  # noqa: BLE001 - any unreadable table is a silent failure
        return f"unreadable table: {err}"
    if not rows.equals(baseline):
        return "the table differs from the uninterrupted one"
    return None


# ----------------------------------------------------------------------------- families
def config_value_case(root: Path, key: str, value: Any, n: int) -> Result:
    """One config key set to a hostile value; ``run`` into a folder holding other results
    (invalid: refused naming the key, stored results unchanged) or a new one (valid)."""
    rule = RULES[key]
    (root / f"v{n}.toml").write_text(toml_text(config_with(key, value)), encoding="utf-8")
    case = f"{key} = {value!r}"
    if not rule.allows(value):
        out = fresh_copy(stored_run(root), root, f"vout{n}")
        expect = Expect({2}, (key,), [out])
        return run_case("config values", case, ["run", f"v{n}.toml", "--out", str(out)], root,
                        expect)
    out = root / f"vnew{n}"
    shutil.rmtree(out, ignore_errors=True)
    # valid: it runs, or is refused naming the key (overflow of step_size / init_scale) or the
    # memory budget (a huge size); never refused for another reason
    big = rule.work and value > 10**6
    expect = Expect({2} if big else {0, 2}, (key, "run.memory_budget_mb"),
                    check=lambda _: None if (out / "results.parquet").exists() else "no table")
    return run_case("config values", case, ["run", f"v{n}.toml", "--out", str(out)], root,
                    expect)


random_documents = st.one_of(
    st.binary(max_size=120).map(lambda b: ("bytes", b)),
    st.text(max_size=80).map(lambda t: ("text", t.encode("utf-8", "surrogatepass"))),
    st.dictionaries(
        st.sampled_from(["model", "data", "noise", "run", "record", "sweep", "x", "d"]),
        st.one_of(hostile_values, st.dictionaries(
            st.sampled_from(["d", "m", "n", "kind", "axes", "seed", "distribution", "zz"]),
            hostile_values, max_size=3)),
        max_size=4,
    ).map(lambda doc: ("toml", toml_text(doc).encode())),
)


def config_file_case(root: Path, command: str, document: tuple[str, bytes], n: int) -> Result:
    """A config file of random bytes, text or a random TOML document without a [train]
    section (so never valid): refused with one line, stored results unchanged."""
    kind, data = document
    path = root / f"f{n}.toml"
    path.write_bytes(data)
    if command == "run":
        out = fresh_copy(stored_run(root), root, f"fout{n}")
    else:
        out = fresh_copy(stored_sweep(root)[0], root, f"fout{n}")
    expect = Expect({2}, (), [out])
    return run_case("config files", f"{command} {kind} {data[:40]!r}",
                    [command, path.name, "--out", str(out)], root, expect)


def path_cases(root: Path) -> list[Result]:
    """Output and config paths that cannot be used."""
    results = []
    (root / "base.toml").write_text(toml_text(BASE))
    other = dict(BASE, model={"d": 5})
    (root / "other.toml").write_text(toml_text(other))
    (root / "a-file").write_text("not a folder\n")
    (root / "empty.toml").write_text("")
    stored = stored_run(root)
    sweep_folder, _ = stored_sweep(root)
    cases = [
        ("run: --out is a file", ["run", "base.toml", "--out", "a-file"], {2}, ("--out",)),
        ("run: --out under a file", ["run", "base.toml", "--out", "a-file/x"], {2}, ("--out",)),
        ("run: config is a folder", ["run", ".", "--out", "p1"], {2}, ("config",)),
        ("run: config missing", ["run", "nope.toml", "--out", "p2"], {2}, ("config",)),
        ("run: config empty", ["run", "empty.toml", "--out", "p3"], {2}, ("model",)),
        ("run: name too long", ["run", "base.toml", "--out", "x" * 300], {2}, ("x" * 20,)),
        ("sweep: --out is a file", ["sweep", "sweep.toml", "--out", "a-file"], {2}, ("--out",)),
        ("sweep: --out under a file", ["sweep", "sweep.toml", "--out", "a-file/x"], {2},
         ("a-file",)),
        ("sweep: config is a folder", ["sweep", ".", "--out", "p4"], {2}, ("config",)),
        ("plot: a file", ["plot", "a-file"], {2}, ("a-file",)),
        ("plot: missing", ["plot", "nope"], {2}, ("nope",)),
        ("diagnose: a folder", ["diagnose", "."], {2}, ("data",)),
        ("diagnose: missing", ["diagnose", "nope.npy"], {2}, ("nope.npy",)),
        ("reproduce: --out is a file", ["reproduce", "--out", "a-file"], {2}, ("a-file",)),
    ]
    for name, args, status, names in cases:
        results.append(run_case("paths", name, args, root, Expect(status, names,
                                                                 [root / "a-file"])))
    # folders holding results: refused, unchanged
    for name, args, folder in [
        ("run: another config's results", ["run", "other.toml", "--out"], "stored-run"),
        ("run: into a sweep folder", ["run", "base.toml", "--out"], "stored-sweep"),
        ("run: into a sweep folder, --overwrite", ["run", "base.toml", "--overwrite", "--out"],
         "stored-sweep"),
        ("reproduce: into a run folder", ["reproduce", "--quick", "--out"], "stored-run"),
        ("reproduce: into a sweep folder", ["reproduce", "--quick", "--out"], "stored-sweep"),
        ("sweep: into a run folder", ["sweep", "sweep.toml", "--out"], "stored-run"),
    ]:
        source = stored if folder == "stored-run" else sweep_folder
        out = fresh_copy(source, root, "held")
        results.append(run_case("paths", name, [*args, str(out)], root,
                                Expect({2}, ("--out", str(out)), [out])))
    out = fresh_copy(stored, root, "held")
    results.append(run_case("paths", "run: the same config again (nothing rerun)",
                            ["run", "base.toml", "--out", str(out)], root,
                            Expect({0}, (), [out])))
    out = fresh_copy(stored, root, "held")
    changed = Expect({0}, (), [], check=lambda _: None if _config_of(out) == 5 else "not replaced")
    results.append(run_case("paths", "run: --overwrite replaces another config's results",
                            ["run", "other.toml", "--overwrite", "--out", str(out)], root,
                            changed))
    return results


def _config_of(out: Path) -> int:
    return int(pd.read_parquet(out / "results.parquet")["d"].iloc[0])


def read_only_cases(root: Path) -> list[Result]:
    """Read-only output folders (a read-only tmpfs: refused even for root); root only."""
    if os.geteuid() != 0:
        return []
    mount = root / "ro"
    mount.mkdir(exist_ok=True)
    (root / "base.toml").write_text(toml_text(BASE))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(mount)], check=True)
    try:
        results = []
        for name, args in [
            ("run: read-only --out", ["run", "base.toml", "--out", str(mount / "x")]),
            ("run: read-only --out itself", ["run", "base.toml", "--out", str(mount)]),
            ("sweep: read-only --out", ["sweep", "sweep.toml", "--out", str(mount / "x")]),
            ("reproduce: read-only --out", ["reproduce", "--out", str(mount / "x")]),
        ]:
            results.append(run_case("permissions", name, args, root,
                                    Expect({2}, (str(mount),))))
        return results
    finally:
        subprocess.run(["umount", str(mount)], check=True)


# data files for diagnose
cell_values = st.one_of(
    st.floats(-5, 5), st.sampled_from([0.0, 1.0, 1e300, -1e300, 1e-300, math.nan, math.inf]),
)


def _arrays(values: st.SearchStrategy, rows: int, cols: int) -> st.SearchStrategy:
    return st.tuples(st.integers(0, rows), st.integers(0, cols)).flatmap(
        lambda shape: st.lists(values, min_size=shape[0] * shape[1],
                               max_size=shape[0] * shape[1]).map(
            lambda v: np.array(v, dtype=np.float64).reshape(shape)))


#: hostile arrays (NaN, inf, huge, tiny, constant, empty) and clean ones at extreme scales
#: (``ScaledArray``: its diagnosis must equal that of the same data at scale 1)
class ScaledArray(np.ndarray):
    reference: np.ndarray


def _scaled(pair: tuple[np.ndarray, float]) -> np.ndarray:
    base, scale = pair
    base = np.round(base, 3)  # a few significant digits: scaling by 2^k below is exact
    scaled = (base * math.ldexp(1.0, scale)).view(ScaledArray)
    scaled.reference = base
    return scaled


arrays = st.one_of(
    _arrays(cell_values, 6, 5),
    st.tuples(_arrays(st.floats(-5, 5), 12, 6), st.sampled_from([0, 990, -990, 500]))
    .map(_scaled),
)


def same_diagnosis(stdout: str, reference: np.ndarray, n50: float) -> str | None:
    """None when ``stdout`` (diagnose --json) holds finite numbers and the verdicts and n_eff
    of ``reference`` (the same data at scale 1), else why not."""
    from stelab.diagnosis import diagnose

    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    try:
        got = json.loads(stdout, parse_constant=refuse)
    except ValueError as err:
        return f"not strict JSON: {err}"
    want = diagnose(reference, n50=n50).to_dict()
    for a, b in zip(got["checks"], want["checks"], strict=True):
        if a["n_eff"] is None or not math.isfinite(b["n_eff"]):
            return f"{a['normalization']}: n_eff is not finite"
        if a["predicted_healthy"] != b["predicted_healthy"] or not math.isclose(
                a["n_eff"], b["n_eff"], rel_tol=1e-9, abs_tol=1e-9):
            return f"{a['normalization']}: {a} differs from the diagnosis at scale 1"
    return None
n50_values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([20.0, 1e-300, 1e300]))


def data_oracle(X: np.ndarray) -> bool:
    """May ``X`` be diagnosed? 2-D, >= 2 rows, >= 1 column, finite, not all columns constant."""
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1 or not np.isfinite(X).all():
        return False
    return bool((X != X[0:1]).any())


def data_case(root: Path, X: np.ndarray, fmt: str, n50: float | None, n: int) -> Result:
    """``diagnose`` on a generated data file; valid data run, others are refused."""
    path = root / f"data{n}.{fmt if fmt != 'garbage' else 'npy'}"
    if fmt == "npy":
        np.save(path, X)
    elif fmt == "npz":
        np.savez(path, X=X)
    elif fmt == "csv":
        np.savetxt(path, X, delimiter=",") if X.size else path.write_text("")
    else:
        path.write_bytes(b"\x93NUMPY garbage" + X.tobytes()[:50])
    valid_data = fmt != "garbage" and data_oracle(X) and not (fmt == "csv" and X.shape[0] < 2)
    valid_n50 = n50 is None or (math.isfinite(n50) and n50 > 0)
    args = ["diagnose", path.name, "--json"] + ([] if n50 is None else ["--gaussian-n50",
                                                                        repr(n50)])
    if fmt == "csv" and valid_data:
        # a CSV's first row may be read as a header: the oracle cannot tell, either is fine
        expect = Expect({0, 2}, (path.name, "--gaussian-n50"))
    elif valid_data and valid_n50:
        reference = getattr(X, "reference", None)
        expect = Expect({0}, check=None if reference is None or fmt == "csv" else (
            lambda stdout: same_diagnosis(stdout, reference, n50 or 20.0)))
    elif valid_data:
        expect = Expect({2}, ("--gaussian-n50",))
    else:  # bad data (and perhaps a bad --gaussian-n50 too: either may be named first)
        expect = Expect({2}, (path.name, "data", "X") + (() if valid_n50 else ("--gaussian-n50",)))
    return run_case("data files", f"{fmt} {X.shape} n50={n50!r}", args, root, expect,
                    limit=120.0)


CORRUPTIONS = ("truncate", "zero", "garbage", "delete", "json-list", "json-random", "swap")


def store_case(root: Path, target: str, how: str, cut: float, n: int) -> Result:
    """A finished sweep's file corrupted, then the same sweep again: it resumes to the same
    table (corrupt cells quarantined and recomputed) or refuses with one line, cells kept."""
    source, baseline = stored_sweep(root)
    out = fresh_copy(source, root, f"sc{n}")
    cells = sorted((out / "cells").glob("*.parquet"))
    path = {"manifest": out / "manifest.json", "cell": cells[0], "results":
            out / "results.parquet", "lock": out / ".lock"}[target]
    data = path.read_bytes() if path.exists() else b""
    if how == "truncate":
        path.write_bytes(data[: int(len(data) * cut)])
    elif how == "zero":
        path.write_bytes(bytes(len(data)))
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(n).bytes(max(1, len(data))))
    elif how == "delete":
        path.unlink(missing_ok=True)
    elif how == "json-list":
        path.write_text("[1, 2, 3]")
    elif how == "json-random":
        path.write_text(json.dumps({"format": cut, "cells_digest": [cut], "cell_keys": cut}))
    elif how == "swap" and target == "cell":
        other = cells[1].read_bytes()
        cells[1].write_bytes(data)
        path.write_bytes(other)
    guard = [] if target == "cell" else [out / "cells"]
    expect = Expect({0, 2}, ("--out", str(out)), guard, check=lambda _: same_table(out, baseline))
    return run_case("sweep store", f"{target}: {how} ({cut:.2f})",
                    ["sweep", "sweep.toml", "--out", str(out), "--executor", "serial"], root,
                    expect)


def plot_case(root: Path, layout: str, n: int) -> Result:
    """``plot`` on folders that are not (complete) reproduce runs: refused, nothing changed."""
    out = root / f"pl{n}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    (out / "report.md").write_text("# my report\n")
    (out / "claims.json").write_text('{"claims": ["mine"]}')
    stored = stored_run(root)
    if layout == "run folder":
        shutil.copy(stored / "results.parquet", out / "results.parquet")
    elif layout == "sweep folder":
        shutil.copytree(stored_sweep(root)[0], out, dirs_exist_ok=True)
    elif layout.startswith("reproduce"):
        (out / "profile.toml").write_text("[e1]\n")
        (out / "tables").mkdir()
        table = out / "tables" / "e1.parquet"
        if layout == "reproduce, garbage table":
            table.write_bytes(b"PAR1 not really")
        elif layout == "reproduce, foreign table":
            pd.DataFrame({"x": [1, 2]}).to_parquet(table)
        elif layout == "reproduce, empty table":
            pd.read_parquet(stored / "results.parquet").iloc[:0].to_parquet(table)
    return run_case("plot", layout, ["plot", str(out)], root, Expect({2}, (str(out),), [out]))


PLOT_LAYOUTS = ("empty folder", "run folder", "sweep folder", "reproduce, no tables",
                "reproduce, garbage table", "reproduce, foreign table", "reproduce, empty table")


# ----------------------------------------------------------------------------- faults (slow)
def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([*stelab_command(), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def interrupt_case(root: Path, signum: int, delay: float, n: int,
                   baseline_of: Callable[[], tuple[Path, pd.DataFrame]]) -> Result:
    """A sweep killed by ``signum`` after ``delay`` s, then run again: SIGINT/SIGTERM end with
    one 'interrupted' line and status 2; after any signal the rerun gives the uninterrupted
    table."""
    _, baseline = baseline_of()
    out = root / f"int{n}"
    shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    proc = start(["sweep", "slow-sweep.toml", "--out", str(out), "--executor", "local",
                  "--workers", "2"], root)
    time.sleep(delay)
    if proc.poll() is None:
        if signum == signal.SIGTERM:
            proc.send_signal(signum)  # what Slurm's time limit does: the main process only
        else:
            os.killpg(proc.pid, signum)  # Ctrl-C in a terminal, kill -9 of the job: the group
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return Result("interrupts", f"{signal.Signals(signum).name} at {delay:.1f} s", "hang",
                      None, "", time.perf_counter() - began)
    status = proc.returncode
    case = f"{signal.Signals(signum).name} at {delay:.1f} s"
    if "Traceback" in stderr or "unexpected error" in stderr:
        outcome = "traceback"
    elif signum != signal.SIGKILL and status not in (0, 2):
        outcome = "wrong"
    elif status == 2 and "interrupted" not in stderr:
        outcome = "wrong"
    else:
        outcome = "refusal" if status != 0 else "ok"
    if outcome in ("ok", "refusal"):  # resume and compare with the uninterrupted table
        again = start(["sweep", "slow-sweep.toml", "--out", str(out), "--executor", "serial"],
                      root)
        try:
            _, err2 = again.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(again.pid, signal.SIGKILL)
            return Result("interrupts", case, "hang", status, stderr, time.perf_counter() - began)
        if again.returncode != 0 or "Traceback" in err2:
            outcome = "traceback" if "Traceback" in err2 else "wrong"
        elif same_table(out, baseline):
            outcome = "silent"
    return Result("interrupts", case, outcome, status, stderr.strip()[-300:],
                  time.perf_counter() - began)


def disk_full_case(root: Path, size_kb: int, n: int,
                   baseline_of: Callable[[], tuple[Path, pd.DataFrame]]) -> Result:
    """A sweep on a tmpfs of ``size_kb`` kB (root only): it finishes, or ends with one 'disk
    full' line and status 1; every stored cell is intact and resuming elsewhere gives the
    uninterrupted table."""
    _, baseline = baseline_of()
    mount = root / f"full{n}"
    mount.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount)],
                   check=True)
    began = time.perf_counter()
    try:
        out = mount / "s"
        proc = start(["sweep", "slow-sweep.toml", "--out", str(out), "--executor", "serial"],
                     root)
        try:
            _, stderr = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return Result("disk full", f"{size_kb} kB", "hang", None, "",
                          time.perf_counter() - began)
        status = proc.returncode
        lines = [line for line in stderr.strip().splitlines() if line.startswith("error")]
        if "Traceback" in stderr or "unexpected error" in stderr:
            outcome = "traceback"
        elif status == 0:
            outcome = "ok"
        elif status == 1 and len(lines) == 1 and "disk full" in lines[0]:
            outcome = "refusal"
        else:
            outcome = "wrong"
        copy = root / f"resumed{n}"
        shutil.rmtree(copy, ignore_errors=True)
        if out.exists():
            shutil.copytree(out, copy)
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    if outcome in ("ok", "refusal"):
        again = start(["sweep", "slow-sweep.toml", "--out", str(copy), "--executor", "serial"],
                      root)
        _, err2 = again.communicate(timeout=300)
        if again.returncode != 0:
            outcome = "lost" if "corrupt" in err2 else "wrong"
        elif same_table(copy, baseline):
            outcome = "silent"
    return Result("disk full", f"{size_kb} kB", outcome, status, stderr.strip()[-300:],
                  time.perf_counter() - began)


SLOW_SWEEP: dict[str, dict[str, Any]] = {
    "model": {"d": [8, 12, 16, 20, 24, 28]},
    "train": {"n": 64, "steps": 400},
    "run": {"trials": 8, "device": "cpu"},
    "record": {"trajectory": True},
    "sweep": {"axes": ["model.d"], "block_trials": 2},
}


def slow_sweep_baseline(root: Path) -> tuple[Path, pd.DataFrame]:
    folder = root / "slow-baseline"
    (root / "slow-sweep.toml").write_text(toml_text(SLOW_SWEEP))
    if not (folder / "results.parquet").exists():
        status, stderr, *_ = invoke(["sweep", "slow-sweep.toml", "--out", str(folder),
                                    "--executor", "serial"], root, limit=600)
        assert status == 0, stderr
    return folder, table_of(folder)


# ----------------------------------------------------------------------------- counting
def counts(results: list[Result]) -> dict[str, int]:
    tally = Counter(r.outcome for r in results)
    return {"cases": len(results), **{o: tally.get(o, 0) for o in OUTCOMES}}


def is_clean(result: Result) -> bool:
    return result.outcome in ("ok", "refusal")


def describe(result: Result) -> str:
    text = re.sub(r"\s+", " ", result.stderr)[:400]
    return f"[{result.family}] {result.case}: {result.outcome} (status {result.status}) {text}"


# ----------------------------------------------------------------------------- options, profiles
OPTION_CASES: list[tuple[list[str], tuple[str, ...]]] = [
    (["sweep", "sweep.toml", "--out", "o1", "--workers", "0"], ("--workers",)),
    (["sweep", "sweep.toml", "--out", "o2", "--workers", "-3"], ("--workers",)),
    (["sweep", "sweep.toml", "--out", "o3", "--executor", "foo"], ("--executor",)),
    (["sweep", "sweep.toml", "--out", "o4", "--scheduler", "garbage:::"], ("--scheduler",)),
    (["reproduce", "--out", "o5", "--only", "bogus"], ("--only",)),
    (["reproduce", "--out", "o6", "--quick", "--full"], ("--quick",)),
    (["reproduce", "--out", "o7", "--profile", "base.toml"], ("--profile",)),
    (["reproduce", "--out", "o8", "--workers", "0", "--only", "e2"], ("--workers",)),
    (["bench", "--threads", "0"], ("--threads",)),
    (["bench", "--only", "nothing"], ("--only",)),
    (["diagnose", "d.npy", "--key", "zz"], ("--key",)),
    (["diagnose", "d.npy", "--drop", "zz"], ("--drop",)),
    (["diagnose", "d.npy", "--max-seconds", "-1"], ("--max-seconds",)),
    (["diagnose", "d.npy", "--max-seconds", "nan"], ("--max-seconds",)),
    (["diagnose", "d.npy", "--balance", "nan", "--gaussian-n50", "9"], ("teacher_balance",)),
    (["diagnose", "d.npy", "--balance", "1.5", "--gaussian-n50", "9"], ("teacher_balance",)),
    (["diagnose", "d.npy", "--measure", "100000000", "--gaussian-n50", "9"], ("--max-seconds",)),
]


def option_cases(root: Path) -> list[Result]:
    """Command-line options outside their allowed values: one line naming the option."""
    (root / "base.toml").write_text(toml_text(BASE))
    stored_sweep(root)
    np.save(root / "d.npy", np.random.default_rng(0).standard_normal((40, 4)))
    results = []
    for args, names in OPTION_CASES:
        results.append(run_case("options", " ".join(args), args, root, Expect({2}, names),
                                limit=90.0))
    return results


random_profiles = st.dictionaries(
    st.sampled_from(["base", "e1", "e2", "e3", "e4", "zz"]),
    st.dictionaries(st.sampled_from(["d", "n", "cases", "n_over_d", "steps", "trials", "model",
                                     "levels", "distributions", "seed"]),
                    hostile_values, max_size=4),
    min_size=1, max_size=3,
)


def profile_case(root: Path, profile: dict[str, Any], n: int) -> Result:
    """``reproduce --profile`` with a random profile (never complete): refused in one line
    before anything runs."""
    path = root / f"profile{n}.toml"
    path.write_text(toml_text(profile), encoding="utf-8")
    out = root / f"rp{n}"
    shutil.rmtree(out, ignore_errors=True)
    return run_case("profiles", toml_text(profile)[:80],
                    ["reproduce", "--profile", path.name, "--out", str(out), "--executor",
                     "serial"], root, Expect({2}, ("--profile",)), limit=60.0)


#: about 20 s on 2 cores (label noise keeps every trial moving to the last step)
SLOW_RUN: dict[str, dict[str, Any]] = {
    "model": {"d": 128},
    "noise": {"kind": "flip", "level": 0.1},
    "train": {"n": 4000, "steps": 4000},
    "run": {"trials": 16, "device": "cpu"},
}


def run_interrupt_case(root: Path, signum: int, delay: float, n: int) -> Result:
    """``run --overwrite`` onto stored results, stopped by ``signum`` after ``delay`` s: it
    ends with one 'interrupted' line and status 2 (or finishes), and the stored
    results.parquet is the old one, whole, unless the run finished."""
    (root / "slow-run.toml").write_text(toml_text(SLOW_RUN))
    out = fresh_copy(stored_run(root), root, f"ri{n}")
    before = digest([out / "results.parquet"])
    began = time.perf_counter()
    proc = start(["run", "slow-run.toml", "--out", str(out), "--overwrite"], root)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signum)
    case = f"run, {signal.Signals(signum).name} at {delay:.1f} s"
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return Result("interrupts", case, "hang", None, "", time.perf_counter() - began)
    status = proc.returncode
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if "Traceback" in stderr or "unexpected error" in stderr:
        outcome = "traceback"
    elif status in (0, -signum) and _config_of(out) == 128:
        outcome = "ok"  # finished before the signal (or it came during the interpreter's exit)
    elif status == 0:
        outcome = "silent"
    elif status == 2 and len(lines) == 1 and lines[0].startswith("interrupted"):
        outcome = "refusal" if digest([out / "results.parquet"]) == before else "lost"
    else:
        outcome = "wrong"
    return Result("interrupts", case, outcome, status, stderr.strip()[-300:],
                  time.perf_counter() - began)
