"""Result tables: atomic Parquet writes and the run summary (success rates with Wilson CIs,
means with Student-t CIs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.table import Table

from stelab.analysis.tables import mean_ci, success_table
from stelab.atomic import atomic_write
from stelab.errors import StelabError


def write_table(rows: pd.DataFrame, path: str | Path) -> Path:
    """Write ``rows`` to ``path`` as Parquet atomically (temporary file, fsync, rename)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, lambda fh: rows.to_parquet(fh, index=False))
    except PermissionError as err:
        raise StelabError(f"--out: cannot write to {path.parent}: {err.strerror}") from None


def summarize(rows: pd.DataFrame, title: str = "summary") -> Table:
    """A rich table of success rates (95% Wilson CI) and mean trajectory statistics (95% t CI)."""
    table = Table(title=title)
    for name in ("metric", "rate", "95% CI", "successes / trials"):
        table.add_column(name)
    for rec in success_table(rows).itertuples():
        table.add_row(rec.metric, f"{rec.rate:.3f}", f"[{rec.ci_low:.3f}, {rec.ci_high:.3f}]",
                      f"{rec.successes} / {rec.trials}")
    for column in ("occupation", "final_hamming", "n_returns", "final_loss"):
        if column in rows and len(rows):
            mean, low, high = mean_ci(rows[column].to_numpy())
            table.add_row(f"mean {column}", f"{mean:.4g}", f"[{low:.4g}, {high:.4g}]",
                          f"{len(rows)} trials")
    return table
