"""The column cache of the incremental engine: columns of row-major data, copied where a trial
keeps flipping them so that its updates read them as contiguous streams."""

from __future__ import annotations

import numpy as np
import torch

from stelab.engine import compiled

Tensor = torch.Tensor

__all__ = ["ColumnCache"]


class ColumnCache:
    """Columns Z_k[:, j] (n*m floats each) of some (trial, column) pairs, up to ``capacity``
    columns in one store shared by the trials. ``table[k, j]`` is the slot of column j of trial
    k, or -1. Slots are handed out by the main thread between steps (:meth:`assign`, from a
    stack of free slots: a freed slot, whose pages are already in memory, is reused first) and
    filled by the worker that next touches the trial (a ``fresh`` slot still waits for its
    column), so the workers never allocate and share no state. Pages never written take no
    memory."""

    def __init__(self, Z3: Tensor, capacity: int) -> None:
        t, R, d = Z3.shape
        capacity = max(0, capacity)
        self.Z3 = Z3
        self.table = torch.full((t, d), -1, dtype=torch.long)
        self.store = torch.empty((capacity, R), dtype=Z3.dtype)
        self.fresh = torch.zeros(capacity, dtype=torch.bool)
        self._free = torch.arange(capacity - 1, -1, -1)  # a stack: slot 0 on top
        self._free_count = np.array([capacity], dtype=np.int64)

    def assign(self, trials: Tensor, wanted: Tensor) -> None:
        """Give the ``wanted`` (t, d) columns of ``trials`` that are not cached a fresh slot each,
        while slots last."""
        compiled.assign_slots(trials.numpy(), wanted.numpy(), self.table.numpy(),
                           self._free.numpy(), self._free_count, self.fresh.numpy())

    def fill(self, k: int) -> None:
        """Copy the columns of trial k whose slots are fresh (one strided read of its data)."""
        compiled.fill_fresh(self.Z3[k].numpy(), self.table[k].numpy(), self.fresh.numpy(),
                         self.store.numpy())

    def release(self, k: int) -> None:
        """Give back the slots of trial k."""
        slots = self.table[k][self.table[k] >= 0]
        if len(slots):
            count = int(self._free_count[0])
            self._free[count : count + len(slots)] = slots
            self._free_count[0] = count + len(slots)
            self.fresh[slots] = False
            self.table[k] = -1
