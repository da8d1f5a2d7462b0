"""Giving freed memory back to the operating system.

glibc keeps freed blocks of up to 32 MB in the process heap (its mmap threshold rises after the
first large free), so a loop of same-sized temporaries (one block of rows converted to float64,
say) can leave tens of MB of free but resident memory behind. :func:`release_free_memory` asks
glibc to return it (``malloc_trim(0)``, which also releases free pages inside the heap); the
problem builder calls it between trials and the engine between chunks, which keeps the peak
resident size close to what the data needs. It does nothing where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> None:
    """Return free heap memory to the operating system (glibc ``malloc_trim(0)``; else no-op)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
