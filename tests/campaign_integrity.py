"""Campaign families of issue 23, judged like those of tests/campaign.py (same outcomes):

* **bit flips** (corruption that still parses): one bit flipped at a random offset of a stored
  file of every kind, then the command that reads it. Oracle, from the documented rules
  (docs/reliability.md, "Stored files carry checksums"): ``stelab verify`` exits 1 naming the
  file; then a damaged sweep cell is recomputed (the sweep ends with the uninterrupted table), a
  damaged per-trial table, derived table, figure, claims.json or report.md is rebuilt by
  ``stelab plot`` (claims equal to the undamaged ones, verify clean after), and a manifest,
  profile.toml, the results of ``stelab run`` or a packed model are refused with one line
  naming the file. Anything else that succeeds served damaged bytes: ``silent``.
* **interval ranges**: random small runs through ``stelab run``: every printed interval lies
  inside its quantity's range ([0, d] for a Hamming distance, [0, 1] for a rate or occupation,
  >= 0 for counts) and contains its estimate, or says the sample is too small.
* **kills** (slow): repeated SIGKILL of ``stelab reproduce`` and resume (tests/soak.py), two
  ``stelab reproduce`` at once on one folder.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

from tests import campaign as C
from tests import soak

#: the kind of stored file -> (folder it lives in, glob inside it)
KINDS = {
    "sweep cell": ("sweep", "cells/*.parquet"),
    "sweep results": ("sweep", "results.parquet"),
    "sweep manifest": ("sweep", "manifest.json"),
    "run results": ("run", "results.parquet"),
    "reproduce table": ("reproduce", "tables/e2.parquet"),
    "derived table": ("reproduce", "tables/summary_*.parquet"),
    "figure": ("reproduce", "figures/*.png"),
    "claims": ("reproduce", "claims.json"),
    "report": ("reproduce", "report.md"),
    "reproduce manifest": ("reproduce", "manifest.json"),
    "profile": ("reproduce", "profile.toml"),
    "packed model": ("packed", "model.safetensors"),
}
REFUSED = {"sweep manifest", "run results", "reproduce manifest", "profile", "packed model"}


def stored_reproduce(root: Path) -> Path:
    folder = root / "stored-reproduce"
    if not (folder / "report.md").exists():
        status, stderr, *_ = C.invoke(
            ["reproduce", "--profile", str(soak.TINY), "--out", str(folder), "--only", "e2",
             "--executor", "serial"], root, limit=600)
        assert status == 0, stderr
    return folder


def stored_packed(root: Path) -> Path:
    folder = root / "stored-packed"
    if not (folder / "model.safetensors").exists():
        from torch import nn

        from stelab.nn.layers import QuantLinear
        from stelab.pack import export_packed

        model = nn.Sequential(QuantLinear(33, 5, input_quantizer="sign"), nn.BatchNorm1d(5))
        export_packed(model, folder / "model.safetensors")
    return folder


def _source(root: Path, where: str) -> Path:
    return {"sweep": lambda: C.stored_sweep(root)[0], "run": lambda: C.stored_run(root),
            "reproduce": lambda: stored_reproduce(root),
            "packed": lambda: stored_packed(root)}[where]()


def flip_bit(path: Path, at: float, bit: int) -> int:
    data = bytearray(path.read_bytes())
    offset = min(int(at * len(data)), len(data) - 1)
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
    return offset


def _verify_names(folder: Path, path: Path) -> str | None:
    status, _err, _t, stdout = C.invoke(["verify", str(folder)], folder.parent)
    line = " ".join(stdout.split())
    if status != 1 or "damaged:" not in line or path.name not in line:
        return f"verify did not name the damaged {path.name} (status {status})"
    return None


def bit_flip_case(root: Path, kind: str, at: float, bit: int, n: int) -> C.Result:
    where, pattern = KINDS[kind]
    out = C.fresh_copy(_source(root, where), root, f"bf{n}")
    path = sorted(out.glob(pattern))[int(at * 1000) % len(sorted(out.glob(pattern)))]
    offset = flip_bit(path, at, bit)
    case = f"{kind}: {path.name} byte {offset} bit {bit}"
    why = _verify_names(out, path)
    if why:
        return C.Result("bit flips", case, "silent", 0, why, 0.0)
    if kind == "packed model":
        return _packed_case(path, case)
    expect = C.Expect({2} if kind in REFUSED else {0}, (path.name,))
    if where == "sweep":
        baseline = C.stored_sweep(root)[1]
        expect.check = lambda _: C.same_table(out, baseline) or _verify_clean(out)
        args = ["sweep", "sweep.toml", "--out", str(out), "--executor", "serial"]
    elif where == "run":
        args = ["run", "base.toml", "--out", str(out)]
    elif kind == "profile":
        args = ["reproduce", "--profile", str(soak.TINY), "--out", str(out), "--only", "e2"]
    else:
        reference = json.loads((_source(root, where) / "claims.json").read_text())
        expect.check = lambda _: _same_claims(out, reference) or _verify_clean(out)
        args = ["plot", str(out)]
    return C.run_case("bit flips", case, args, root, expect, limit=300)


def _same_claims(out: Path, reference: dict) -> str | None:
    if json.loads((out / "claims.json").read_text()) != reference:
        return "claims.json differs from the undamaged folder's"
    return None


def _verify_clean(out: Path) -> str | None:
    status, _err, _t, stdout = C.invoke(["verify", str(out)], out.parent)
    return None if status == 0 else f"still damaged after the command: {stdout.strip()[-200:]}"


def _packed_case(path: Path, case: str) -> C.Result:
    from stelab.errors import PackError
    from stelab.pack import load_packed

    try:
        load_packed(path)
    except PackError as err:
        line = str(err)
        ok = "\n" not in line and path.name in line
        return C.Result("bit flips", case, "refusal" if ok else "wrong", 2, line, 0.0)
    except Exception as err:  # noqa: BLE001 - anything else is what a user would see
        return C.Result("bit flips", case, "traceback", 1, repr(err), 0.0)
    return C.Result("bit flips", case, "silent", 0, "a damaged packed model loaded", 0.0)


# ----------------------------------------------------------------------------- interval ranges
_ROW = re.compile(r"│\s*(mean )?(\w+)\s*│\s*([-\d.e+]+)\s*│\s*(.+?)\s*│")


def interval_case(root: Path, d: int, trials: int, noise: float, n: int) -> C.Result:
    """``stelab run`` of a small config: every printed interval inside its range."""
    doc = {"model": {"d": d}, "train": {"n": 2 * d, "steps": 30},
           "noise": {"kind": "flip", "level": noise},
           "run": {"trials": trials, "device": "cpu", "seed": n}}
    config = root / f"iv{n}.toml"
    config.write_text(C.toml_text(doc))
    shutil.rmtree(root / f"iv{n}", ignore_errors=True)
    ranges = {"final_hamming": (0, d), "n_returns": (0, 30), "occupation": (0, 1),
              "final_loss": (0, float("inf"))}

    def check(stdout: str) -> str | None:
        seen = 0
        for _mean, metric, estimate, ci in _ROW.findall(stdout):
            lo, hi = ranges.get(metric, (0.0, 1.0))
            if ci.startswith("too few"):
                if trials >= 6:
                    return f"{metric}: no interval for {trials} trials"
                continue
            low, high = (float(x) for x in ci.strip("[]").split(","))
            est = float(estimate)
            tol = 1e-3 * max(1.0, abs(est))  # printed to 3-4 significant digits
            if not (lo <= low <= est + tol and est - tol <= high <= hi):
                return f"{metric}: [{low}, {high}] around {est} leaves [{lo}, {hi}]"
            seen += 1
        return None if seen or trials < 6 else "no interval printed"

    expect = C.Expect({0}, check=check)
    return C.run_case("interval ranges", f"d={d} trials={trials} noise={noise:.2f}",
                      ["run", str(config), "--out", str(root / f"iv{n}")], root, expect)


# ----------------------------------------------------------------------------- kills (slow)
def kills_case(root: Path, kills: int, seed: int, n: int) -> C.Result:
    baseline = root / "soak-baseline"
    if not (baseline / "report.md").exists():
        soak.baseline_run(baseline, ("e2",))
    out = root / f"soak{n}"
    shutil.rmtree(out, ignore_errors=True)
    counts = soak.kill_and_resume(out, baseline, kills, seed)
    case = f"{kills} kills ({dict(counts.kills)}), seed {seed}"
    if counts.differing or counts.damaged:
        return C.Result("kills", case, "silent", 0,
                        f"differs: {counts.differing}; damaged files: {counts.damaged}", 0.0)
    return C.Result("kills", case, "ok", 0, "", 0.0)


def twin_case(root: Path, n: int) -> C.Result:
    out = root / f"twin{n}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    codes, lines = soak.two_at_once(out / "o")
    refused = [line for code, line in zip(codes, lines, strict=True) if code == 2]
    ok = sorted(codes) == [0, 2] and "in use by another stelab reproduce" in refused[0]
    return C.Result("kills", "two reproduce at once", "refusal" if ok else "wrong",
                    max(codes), " | ".join(lines), 0.0)


def seeds(n: int, salt: int) -> list[random.Random]:
    return [random.Random(salt * 1000 + k) for k in range(n)]
