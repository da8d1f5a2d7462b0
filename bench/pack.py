"""Benchmark 'pack' of `stelab bench pack` on its own (see src/stelab/bench/pack.py):
packed 1-bit inference against torch float32, torch dynamic int8 and ONNX Runtime, one thread
and all threads.

    PYTHONPATH=src python bench/pack.py [--quick] [--json OUT.json]
"""

import argparse
import os

# torch's and numba's OpenMP pools take turns in a packed model: waiters must sleep, not spin
# (read once, when torch loads libgomp, so before the imports below)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from stelab.bench.pack import run_pack, write_json  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--quick", action="store_true", help="smaller workloads, fewer repeats")
parser.add_argument("--json", default=None, help="also write the results as JSON")
args = parser.parse_args()
results = run_pack(quick=args.quick)
if args.json:
    print("wrote", write_json(results, args.json))
