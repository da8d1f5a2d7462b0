"""Typed errors. Each carries a one-line message that names the bad field and what is allowed;
the CLI prints that line and exits non-zero, never a traceback."""

from __future__ import annotations


class StelabError(Exception):
    """Base class of every error stelab raises on purpose."""


class ConfigError(StelabError, ValueError):
    """A configuration value is missing, of the wrong type or outside its allowed values."""


class DataError(StelabError, ValueError):
    """Input data (a user's file or array) cannot be used as given."""


class MemoryBudgetError(StelabError):
    """A run would need more memory than its budget allows."""


class PackError(StelabError, ValueError):
    """A model cannot be exported to a packed file, or a file is not a valid stelab packed
    model (not safetensors, truncated, another format or format version, a missing tensor)."""
