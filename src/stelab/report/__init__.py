"""The reproduce report: derived tables, claims.json, figures and report.md, all from the stored
per-trial tables of a reproduce folder (so ``stelab plot DIR`` can redo it without rerunning)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stelab.report import markdown as md
from stelab.report.derive import derive
from stelab.report.evidence import verdicts
from stelab.report.figures import draw_figures
from stelab.results import write_table

__all__ = ["write_report", "redraw_figures"]


def _manifest(out: Path) -> dict[str, Any]:
    path = out / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _header(out: Path, manifest: dict[str, Any]) -> str:
    from stelab.sweep.store import code_label

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


def redraw_figures(out: Path, n_boot: int = 1000) -> dict[str, Path]:
    """Recompute the derived tables and redraw every figure of ``out`` from its stored tables."""
    from stelab.reproduce import load_tables

    tables = load_tables(out)
    return draw_figures(tables, derive(tables, n_boot), out / "figures")


def write_report(
    out: str | Path, n_boot: int = 1000, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Derived tables, claims.json, figures and report.md for the reproduce folder ``out``."""
    from stelab.reproduce import TABLES, check_reproduce_folder, load_tables, write_text

    out = Path(out)
    check_reproduce_folder(out)
    tables = load_tables(out)
    log("analysing stored tables")
    derived = derive(tables, n_boot)
    for name, frame in derived.items():
        write_table(frame, out / TABLES / f"summary_{name}.parquet")
    claims = verdicts(derived)
    claims_json = {"claims": [v.as_json() for v in claims]}
    write_text(out / "claims.json", json.dumps(claims_json, indent=2, default=str))
    log("drawing figures")
    figures = draw_figures(tables, derived, out / "figures")
    by_id = {v.id: v for v in claims}
    sections = [_header(out, _manifest(out)), md.verdict_section(claims)]
    if "e1_thresholds" in derived:
        sections.append(md.e1_section(derived, figures, out))
    if "e1_horizon_thresholds" in derived:
        sections.append(md.e1_horizon_section(derived, figures, out))
    if "e2_success_vs_horizon" in derived:
        sections.append(md.e2_section(derived, figures, out))
    if "e3_growth" in derived:
        sections.append(md.e3_section(derived, figures, out))
    if "e4_success" in derived:
        sections.append(md.e4_section(derived, by_id.get("C4"), figures, out))
    if "e5_summary" in derived:
        sections.append(md.e5_section(derived, figures, out))
    write_text(out / "report.md", "\n".join(sections))
    log(f"wrote {out / 'report.md'}, {out / 'claims.json'} and {len(figures)} figures")
    return claims_json
