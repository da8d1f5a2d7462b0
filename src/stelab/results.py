"""Result tables: atomic Parquet writes and the run summary (success rates with Wilson CIs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.table import Table

from stelab.atomic import atomic_write
from stelab.errors import StelabError
from stelab.stats import wilson_interval

SUCCESS_COLUMNS = ("success_last", "success_ergodic", "success_best", "absorbed")


def write_table(rows: pd.DataFrame, path: str | Path) -> Path:
    """Write ``rows`` to ``path`` as Parquet atomically (temporary file, fsync, rename)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, lambda fh: rows.to_parquet(fh, index=False))
    except PermissionError as err:
        raise StelabError(f"--out: cannot write to {path.parent}: {err.strerror}") from None


def success_rates(rows: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per success notion: successes, trials, rate and Wilson interval."""
    records = []
    for column in SUCCESS_COLUMNS:
        if column not in rows:
            continue
        k, n = int(rows[column].sum()), int(len(rows))
        low, high = wilson_interval(k, n, confidence)
        records.append(
            {"metric": column, "successes": k, "trials": n, "rate": k / n if n else float("nan"),
             "ci_low": low, "ci_high": high}
        )
    return pd.DataFrame(records)


def summarize(rows: pd.DataFrame, title: str = "summary") -> Table:
    """A rich table of success rates (95% Wilson CI) and mean trajectory statistics."""
    table = Table(title=title)
    for name in ("metric", "rate", "95% CI", "successes / trials"):
        table.add_column(name)
    for rec in success_rates(rows).itertuples():
        table.add_row(rec.metric, f"{rec.rate:.3f}", f"[{rec.ci_low:.3f}, {rec.ci_high:.3f}]",
                      f"{rec.successes} / {rec.trials}")
    for column in ("occupation", "final_hamming", "n_returns", "final_loss"):
        if column in rows and len(rows):
            sem = rows[column].std(ddof=1) / len(rows) ** 0.5 if len(rows) > 1 else float("nan")
            table.add_row(f"mean {column}", f"{rows[column].mean():.4g}", f"± {1.96 * sem:.2g}", "")
    return table
