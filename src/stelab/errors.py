"""Typed errors. Each carries a one-line message that names the bad field and what is allowed;
the CLI prints that line and exits with the error's ``exit_code``, never a traceback.

Exit codes (see docs/reliability.md): 2 for what the user can fix (a config, a file, a path, a
permission, an interruption), 1 for failures of the machine (disk full, out of memory) and for
unexpected errors (whose traceback goes to a log file).
"""

from __future__ import annotations


class StelabError(Exception):
    """Base class of every error stelab raises on purpose."""

    exit_code = 2


class ConfigError(StelabError, ValueError):
    """A configuration value is missing, of the wrong type or outside its allowed values."""


class DataError(StelabError, ValueError):
    """Input data (a user's file or array) cannot be used as given."""


class MemoryBudgetError(StelabError):
    """A run would need more memory than its budget allows."""


class PackError(StelabError, ValueError):
    """A model cannot be exported to a packed file, or a file is not a valid stelab packed
    model (not safetensors, truncated, another format or format version, a missing tensor)."""


class OutputError(StelabError):
    """An output folder cannot be used: not a folder, not writable, or holding other results."""


class MachineError(StelabError):
    """The machine failed the run (disk full, out of memory); stored results are kept."""

    exit_code = 1


class NumericalError(StelabError):
    """A computation left the finite numbers (inf or NaN) because of the inputs given."""
