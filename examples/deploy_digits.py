"""Train a binary MLP and a binary ConvNet on scikit-learn's digits with stelab.nn, deploy each
four ways (torch float32, torch dynamic int8, ONNX Runtime, packed 1-bit) and compare test
accuracy, latency at batch 1 and 64 (one thread and all threads) and file size.

    python examples/deploy_digits.py [--out results/bench/deploy_digits] [--epochs 20]

With --out it writes table.md (the table), deploy_digits.json (every timing repeat, the
machine, the code version) and manifest.json (the command, the code version, the environment
and the machine's load average before and after). Needs the deploy extra for ONNX Runtime:
pip install -e ".[deploy]". What each deployment is: stelab.bench.pack_contenders.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# torch's and numba's OpenMP pools take turns in a packed model: let waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from stelab.bench.common import machine_description, write_payload  # noqa: E402
from stelab.bench.deploy import deploy_rows, markdown_table  # noqa: E402
from stelab.provenance import code_version, environment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="folder for the table and JSON")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    load_before = os.getloadavg()
    began = time.time()
    rows = deploy_rows(epochs=args.epochs, repeats=args.repeats)
    table = markdown_table(rows)
    print(table)
    if args.out is None:
        return
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(table + "\n")
    write_payload(args.out / "deploy_digits.json", {"rows": rows})
    manifest = {
        "command": "python examples/deploy_digits.py " + " ".join(sys.argv[1:]),
        "code": code_version(), "environment": environment(), "machine": machine_description(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": time.time() - began,
        "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {args.out}/table.md, deploy_digits.json, manifest.json")


if __name__ == "__main__":
    main()
