"""stelab: 1-bit quantization-aware training with the straight-through estimator (STE)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stelab")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0+src"

__all__ = ["__version__"]
