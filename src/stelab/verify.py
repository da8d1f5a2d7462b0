"""``stelab verify DIR``: check every stored file of a folder (or one packed model) against the
checksum written with it (:mod:`stelab.integrity`) and say what was found.

Each file is "ok", "unchecked" (written without a checksum: a folder from before checksums) or
"damaged" (its bytes, or its checksum file, changed after writing; or it cannot be read). For a
damaged file the report says what happens to it: a sweep cell is quarantined and recomputed by
the next run, a per-trial table is rebuilt from its store, derived tables, figures, claims.json
and report.md are rewritten by ``stelab plot DIR``; the others (manifests, profile.toml, the
results of ``stelab run``, packed models) cannot be rebuilt and are refused when read.
Skipped: the checksum files themselves, the lock, temporary files of an interrupted write and
``quarantine/`` (files already set aside).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from stelab.errors import StelabError
from stelab.integrity import SUFFIX, Check, check_file, is_sidecar

_SKIPPED_NAMES = {".lock"}


@dataclass
class VerifyReport:
    """What :func:`verify_path` found: one :class:`~stelab.integrity.Check` per stored file,
    and the checksum files whose file is absent (left by a write interrupted before the file
    was renamed into place: harmless)."""

    root: Path
    checks: list[Check] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(c.status for c in self.checks)

    @property
    def damaged(self) -> list[Check]:
        return [c for c in self.checks if c.status == "damaged"]

    def lines(self) -> list[str]:
        """The report: one line per damaged or unchecked file, then the counts."""
        out = [f"damaged: {c.detail} -> {remedy(c.path, self.root)}" for c in self.damaged]
        unchecked = [c for c in self.checks if c.status == "unchecked"]
        out += [f"unchecked (no checksum): {c.path}" for c in unchecked[:20]]
        if len(unchecked) > 20:
            out.append(f"unchecked (no checksum): {len(unchecked) - 20} more")
        n = self.counts
        out.append(f"{self.root}: {len(self.checks)} files: {n['ok']} ok, {n['unchecked']} "
                   f"unchecked (no checksum), {n['damaged']} damaged"
                   + (f"; {len(self.orphans)} checksum files of an interrupted write"
                      if self.orphans else ""))
        return out


def remedy(path: Path, root: Path) -> str:
    """What stelab does with a damaged stored file at ``path`` (inside ``root``)."""
    parts = path.relative_to(root).parts if path != root else (path.name,)
    name = path.name
    if len(parts) >= 2 and parts[-2] == "cells":
        return "quarantined and recomputed by the next run of the same command"
    if len(parts) >= 2 and parts[-2] == "tables":
        if name.startswith("summary_"):
            return "rebuilt from the per-trial tables by 'stelab plot DIR'"
        return "rebuilt from store/<table>/ by 'stelab plot DIR' or 'stelab reproduce'"
    if len(parts) >= 2 and parts[-2] == "figures" or name in ("claims.json", "report.md"):
        return "rebuilt by 'stelab plot DIR'"
    if len(parts) >= 2 and parts[-2] == "errors":
        return "the failed cell is retried by the next run"
    if name == "results.parquet" and (path.parent / "cells").is_dir():
        return "rebuilt from the cells by the next run of the same command"
    return ("cannot be rebuilt; refused when read (restore it from a copy, or rerun into a "
            "new folder)")


def _skipped(path: Path, root: Path) -> bool:
    rel = path.relative_to(root).parts
    name = path.name
    return ("quarantine" in rel[:-1] or name in _SKIPPED_NAMES or name.startswith(".probe.")
            or (name.startswith(".") and name.endswith(".tmp")) or name.endswith(".partial"))


def verify_path(root: str | Path) -> VerifyReport:
    """Check every stored file under ``root`` (a folder of ``stelab run``, ``sweep`` or
    ``reproduce``, or one file such as a packed model).

    Raises
    ------
    StelabError
        ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise StelabError(f"DIR: {root} does not exist; give a folder or a packed model file")
    if root.is_file():
        return VerifyReport(root, [check_file(root)])
    report = VerifyReport(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if _skipped(path, root):
            continue
        if is_sidecar(path):
            if not path.with_name(path.name.removesuffix(SUFFIX)).exists():
                report.orphans.append(path)
            continue
        report.checks.append(check_file(path))
    return report


__all__ = ["VerifyReport", "remedy", "verify_path"]
