"""The reproduce report of a folder: derived tables, claims.json, figures and report.md, all from
the stored per-trial tables (so ``stelab plot DIR`` can redo it without rerunning).

It loops over the registry of experiments (:func:`stelab.experiments.experiments`): each
experiment whose tables are present derives its tables, draws its figures and writes its
section; the claims are judged from the derived tables (:mod:`stelab.report.evidence`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from stelab.experiments import SectionContext, experiments
from stelab.integrity import read_checked
from stelab.provenance import code_label
from stelab.render import markdown as md
from stelab.report.evidence import verdicts
from stelab.report.folder import SUMMARY, TABLES, check_reproduce_folder, load_tables, write_text
from stelab.results import write_table


def _manifest(out: Path) -> dict[str, Any]:
    """The folder's manifest.json, verified (IntegrityError, one line naming it, on damage)."""
    path = out / "manifest.json"
    return json.loads(read_checked(path)) if path.exists() else {}


def _header(out: Path, manifest: dict[str, Any]) -> str:
    version = code_label(manifest["code"]) if "code" in manifest else "unknown"
    seconds = manifest.get("seconds_total")
    took = f"{seconds / 60:.1f} min" if seconds else "unknown"
    return "\n".join(
        [
            "# stelab reproduction report",
            "",
            "Measurements of the claims of arXiv 2505.18113 (STE for 1-bit quantization) with "
            "stelab. Every number below is computed from the stored per-trial tables in `tables/`; "
            "every estimate carries a 95% interval.",
            "",
            f"- profile: `{manifest.get('profile', '?')}` (exact text: `profile.toml`; rerun or "
            f"resume with `stelab reproduce --profile {out}/profile.toml --out {out}`)",
            f"- code version: `{version}`; environment and timings: `manifest.json`",
            f"- wall time of the runs: {took}",
            f"- report written: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; redraw "
            f"figures and this report with `stelab plot {out}`",
            "",
        ]
    )


def derive_all(tables: dict[str, pd.DataFrame], n_boot: int = 1000) -> dict[str, pd.DataFrame]:
    """Every derived table of the experiments whose stored tables are present."""
    derived: dict[str, pd.DataFrame] = {}
    for exp in experiments():
        if exp.present(tables):
            derived.update(exp.derive_checked(tables, n_boot))
    return derived


def write_report(
    out: str | Path, n_boot: int = 1000, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Derived tables, claims.json, figures and report.md for a reproduce folder.

    Parameters
    ----------
    out : str or Path
        A folder written by :func:`stelab.reproduce` (its ``tables/``).
    n_boot : int
        Bootstrap replicates of the thresholds' and exponents' CIs.
    log : callable
        Called with one line of progress text at a time.

    Returns
    -------
    dict
        The content of ``claims.json``: each claim's verdict and its evidence.
    """
    out = Path(out)
    check_reproduce_folder(out)
    tables = load_tables(out, log)
    manifest = _manifest(out)  # before anything is rewritten: damage is refused first
    present = [exp for exp in experiments() if exp.present(tables)]
    log("analysing stored tables")
    derived = derive_all(tables, n_boot)
    for name, frame in derived.items():
        write_table(frame, out / TABLES / f"{SUMMARY}{name}.parquet")
    claims = verdicts(derived)
    claims_json = {"claims": [v.as_json() for v in claims]}
    write_text(out / "claims.json", json.dumps(claims_json, indent=2, default=str))
    log("drawing figures")
    figures: dict[str, Path] = {}
    for exp in present:
        figures.update(exp.figures(exp.own(tables), derived, out / "figures"))
    by_id = {v.id: v for v in claims}
    sections = [_header(out, manifest), md.verdict_section(claims)]
    for exp in present:
        context = SectionContext(derived, figures, out,
                                 {c: by_id[c] for c in exp.claims if c in by_id})
        sections.append(exp.section(context))
    write_text(out / "report.md", "\n".join(sections))
    log(f"wrote {out / 'report.md'}, {out / 'claims.json'} and {len(figures)} figures")
    return claims_json
