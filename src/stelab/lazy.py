"""Names a package imports on first use (PEP 562), so that importing it stays cheap: ``stelab``
and ``stelab.analysis`` list their public names and the modules that hold them."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, api: dict[str, str], namespace: dict[str, Any],
               public: list[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: a name of ``api`` (name -> module)
    is imported from its module on first use and kept in ``namespace`` (the package's globals),
    so later lookups skip the hook; ``dir()`` lists ``public``."""

    def __getattr__(name: str) -> Any:
        if name not in api:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(api[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(public)

    return __getattr__, __dir__
