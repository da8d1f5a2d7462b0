"""Where results come from: stelab's version, the git commit it runs from, and the software and
machine of a run (recorded in every manifest and stored benchmark)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

try:
    __version__ = version("stelab")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0+src"


def code_version() -> dict[str, Any]:
    """stelab's version and, when it runs from a git checkout, the commit and a dirty flag."""
    info: dict[str, Any] = {"stelab": __version__, "git_commit": None, "git_dirty": None}
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no", "."],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout
        info["git_commit"], info["git_dirty"] = commit, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def code_label(info: dict[str, Any]) -> str:
    """A short text of :func:`code_version`: ``0.1.0 (abc1234, dirty)``."""
    commit = info.get("git_commit")
    if not commit:
        return str(info.get("stelab"))
    return f"{info.get('stelab')} ({commit[:7]}{', dirty' if info.get('git_dirty') else ''})"


def environment() -> dict[str, Any]:
    """The software and machine a run used (recorded in the manifest)."""
    packages = {}
    for name in ("torch", "numpy", "pandas", "pyarrow", "pydantic", "dask", "distributed"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "packages": packages,
    }

