"""Benchmark 'bandwidth' of `stelab bench` on its own (see src/stelab/bench/__init__.py).

    PYTHONPATH=src python bench/bandwidth.py [--quick] [--threads N]
"""

import argparse

from stelab.bench import run_all

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--quick", action="store_true", help="smaller workload, fewer repeats")
parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
args = parser.parse_args()
run_all(quick=args.quick, threads=args.threads, names=["bandwidth"])
