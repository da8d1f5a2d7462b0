"""The cost of the checksums of stored files (issue 23): a sweep with and without them, in one
process, alternating, and the time of ``stelab verify`` on its folder.

    python bench/integrity_cost.py              # 3 pairs of runs
    python bench/integrity_cost.py --pairs 5

"Without" replaces the sidecar write by a plain atomic write and the verified read by a plain
read (the store's code otherwise unchanged), so the difference is what the checksums cost:
hashing every byte written and read, and one more fsync'd small file per stored file.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stelab.atomic as atomic  # noqa: E402
import stelab.sweep.store as store  # noqa: E402
from stelab.config import read_toml  # noqa: E402
from stelab.sweep import parse_sweep, run_cells, sweep_cells  # noqa: E402
from stelab.verify import verify_path  # noqa: E402
from tests.soak import SWEEP_TOML  # noqa: E402


@contextlib.contextmanager
def checksums_off() -> Iterator[None]:
    saved = atomic.write_with_checksum, store.read_checked
    atomic.write_with_checksum = lambda path, data, write: write(path, data)
    store.read_checked = lambda path: Path(path).read_bytes()
    try:
        yield
    finally:
        atomic.write_with_checksum, store.read_checked = saved


def one_run(cells: list, folder: Path, checked: bool) -> float:
    shutil.rmtree(folder, ignore_errors=True)
    began = time.perf_counter()
    with checksums_off() if not checked else contextlib.nullcontext():
        run_cells(cells, folder, executor="serial", progress=False)
        run_cells(cells, folder, executor="serial", progress=False)  # a resume reads every cell
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "sweep.toml"
        config.write_text(SWEEP_TOML)
        cells = sweep_cells(parse_sweep(read_toml(config)))
        one_run(cells, Path(tmp) / "warm", True)  # imports and compiled kernels
        on, off = [], []
        for _ in range(args.pairs):
            off.append(one_run(cells, Path(tmp) / "off", False))
            on.append(one_run(cells, Path(tmp) / "on", True))
        began = time.perf_counter()
        report = verify_path(Path(tmp) / "on")
        verify_seconds = time.perf_counter() - began
        files = len(report.checks)
        size = sum(c.path.stat().st_size for c in report.checks)
    m_on, m_off = statistics.median(on), statistics.median(off)
    print(f"sweep of {len(cells)} cells, run + resume, serial, {args.pairs} pairs (median):")
    print(f"  without checksums {m_off:.3f} s, with {m_on:.3f} s: ratio {m_on / m_off:.3f} "
          f"({(m_on - m_off) / len(cells) * 1e3:+.2f} ms a cell)")
    print(f"  stelab verify of the folder ({files} files, {size / 1e6:.2f} MB): "
          f"{verify_seconds * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
