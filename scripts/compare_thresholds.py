"""Do two reproduce folders agree on n50? (issue 21: the adaptive design against results/full)

For every (d, success notion) both folders measured, print each n50 with its 95% CI, the ratio,
and z = ln(n50_a / n50_b) / sqrt(s_a^2 + s_b^2), with each s the standard error of ln n50 read
from its CI (width / 3.92, a normal approximation of the bootstrap interval). |z| > 1.96 is a
disagreement at the 5% level.

    python scripts/compare_thresholds.py results/scale results/full \\
        [--case-a m1_sign] [--case-b m1_sign_identity]

Thresholds are read from the derived tables (``summary_scale_thresholds`` or
``summary_e1_thresholds``), so the intervals are the ones each report states.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

TABLES = ("summary_scale_thresholds.parquet", "summary_e1_thresholds.parquet")
Z95 = 1.959963984540054


def thresholds(folder: Path, case: str) -> pd.DataFrame:
    """The n50 table of ``case`` in a reproduce folder (scale's, else E1's)."""
    for name in TABLES:
        path = folder / "tables" / name
        if path.is_file():
            table = pd.read_parquet(path, columns=["case", "d", "success", "n50", "ci_low",
                                                   "ci_high"])
            own = table[table["case"] == case]
            if own.empty:
                raise SystemExit(f"--case: {case!r} not in {path}; cases there: "
                                 f"{', '.join(sorted(table['case'].unique()))}")
            return own.drop(columns="case")
    raise SystemExit(f"{folder}: no {' or '.join(TABLES)} under tables/")


def compare(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    both = a.merge(b, on=["d", "success"], suffixes=("_a", "_b")).dropna()
    se = {side: (both[f"ci_high_{side}"].map(math.log) - both[f"ci_low_{side}"].map(math.log))
          / (2 * Z95) for side in "ab"}
    both["ratio"] = both["n50_a"] / both["n50_b"]
    both["z"] = both["ratio"].map(math.log) / (se["a"] ** 2 + se["b"] ** 2) ** 0.5
    both["agree"] = both["z"].abs() <= Z95
    return both.sort_values(["success", "d"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--case-a", default="m1_sign")
    parser.add_argument("--case-b", default="m1_sign_identity")
    args = parser.parse_args()
    table = compare(thresholds(args.a, args.case_a), thresholds(args.b, args.case_b))
    print(f"| success | d | n50 {args.a} [95% CI] | n50 {args.b} [95% CI] | ratio | z | agree |")
    print("|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(f"| {r.success} | {r.d} | {r.n50_a:.4g} [{r.ci_low_a:.4g}, {r.ci_high_a:.4g}] | "
              f"{r.n50_b:.4g} [{r.ci_low_b:.4g}, {r.ci_high_b:.4g}] | {r.ratio:.3f} | "
              f"{r.z:+.2f} | {'yes' if r.agree else 'NO'} |")
    print(f"\n{int(table['agree'].sum())} of {len(table)} agree at the 5% level")


if __name__ == "__main__":
    main()
