"""What an engine read from the data, counted when asked (the bench compares it with floors).

Counted in rows of d numbers and columns of n*m numbers of the (t, n*m, d) data; the fix-ups
of rows near a threshold (one row read each, a fraction of a percent of the rows) are not
counted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["Traffic"]


@dataclass
class Traffic:
    """Rows and columns of the data an engine read, by purpose (thread-safe counters)."""

    pass_rows: int = 0  # rows read by full pre-activation passes h = Z q
    gradient_rows: int = 0  # rows read by the gradient sums G = sum_r c_r Z_r
    update_columns: int = 0  # columns read to update h from the flipped coordinates
    copied_columns: int = 0  # columns copied into the column-major layout
    flipped_columns: int = 0  # coordinates of q that flipped (not a read: the floor's count)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to the named counters (from any thread)."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + int(value))

    def incremental_floor(self, rows: int, d: int, item: int = 4) -> int:
        """Bytes an incremental method must read at least: every row with a non-zero
        coefficient (for G) and the column of every flipped coordinate (for h)."""
        return d * item * self.gradient_rows + rows * item * self.flipped_columns

    def bytes_read(self, rows: int, d: int, item: int = 4) -> int:
        """Bytes read in all, for trials of ``rows`` = n*m rows of ``d`` numbers of ``item``
        bytes (a copied column is read once and written once: counted twice)."""
        row_bytes, column_bytes = d * item, rows * item
        return (row_bytes * (self.pass_rows + self.gradient_rows)
                + column_bytes * (self.update_columns + 2 * self.copied_columns))
