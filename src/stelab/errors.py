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
