"""Checksums of stored files: written with every file, verified on every read.

Two designs, one rule (a file whose bytes changed is never served):

* **Sidecar** (every file stelab stores in a folder: sweep cells, merged tables, derived tables,
  manifests, error records, claims.json, report.md, profile.toml, figures). Beside ``name`` lies
  ``name.sha256``, in the format of ``sha256sum`` (``<64 hex>  name``): the SHA-256 of the
  file's exact bytes, so any change to any byte of the file (one flipped bit included), and any
  change to the sidecar, is a mismatch. ``cd DIR && sha256sum -c cells/*.sha256`` checks it by
  hand.
* **Embedded** (a packed model, which travels alone): the safetensors metadata entry
  ``stelab_sha256`` holds the SHA-256 of the whole file with that entry's 64 hex digits read as
  ``0``; again every byte counts.

A replacement is crash-safe: the sidecar first lists the new digest and the one it replaces, then
the file is renamed over the old one (:func:`stelab.atomic.atomic_write`), then the sidecar keeps
the new digest alone. A crash at any moment leaves a file whose bytes one of the listed digests
matches; a new file never exists without its sidecar.

A file without a sidecar (a folder written before checksums were added, such as the committed
``results/quick``, or one whose sidecar was deleted) is **unchecked**: it is read as before and
``stelab verify`` lists it as "unchecked (no checksum)". A mismatch raises
:class:`IntegrityError`, one line naming the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stelab.errors import StelabError

SUFFIX = ".sha256"
#: the safetensors metadata key of a packed model's embedded checksum
EMBEDDED_KEY = "stelab_sha256"
_MARKER = f'"{EMBEDDED_KEY}":"'.encode()
_HEX = 64

Status = Literal["ok", "unchecked", "damaged"]


class IntegrityError(StelabError):
    """A stored file's bytes differ from the checksum written with it."""


@dataclass(frozen=True)
class Check:
    """What :func:`check_file` found: ``status`` and a short ``detail``."""

    path: Path
    status: Status
    detail: str = ""


def digest(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def sidecar(path: Path) -> Path:
    """The checksum file beside ``path`` (``name.sha256``)."""
    return path.with_name(path.name + SUFFIX)


def is_sidecar(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def _listed(path: Path) -> list[str] | None:
    """The digests the sidecar of ``path`` lists; None without a sidecar; [] when it is not a
    well-formed sidecar of ``path`` (a damaged sidecar accepts nothing)."""
    side = sidecar(path)
    try:
        text = side.read_bytes()
    except FileNotFoundError:
        return None
    try:
        lines = text.decode("ascii").split("\n")
    except UnicodeDecodeError:
        return []
    digests = [line.partition("  ")[0] for line in lines[:-1]]
    if any(len(d) != _HEX or any(c not in "0123456789abcdef" for c in d) for d in digests):
        return []
    # only the exact bytes stelab writes count: any other byte is damage
    return digests if digests and text == _sidecar_text(path, digests) else []


def _sidecar_text(path: Path, digests: list[str]) -> bytes:
    return "".join(f"{d}  {path.name}\n" for d in digests).encode()


def write_with_checksum(path: Path, data: bytes,
                        write: Callable[[Path, bytes], object]) -> Path:
    """Store ``data`` at ``path`` through ``write(path, data)`` (an atomic write) with its
    sidecar, in the crash-safe order of the module doc."""
    new = digest(data)
    old = _listed(path) if path.exists() else None
    accepted = [new, *[d for d in old or [] if d != new]]
    if accepted != (old or []):
        write(sidecar(path), _sidecar_text(path, accepted))
    write(path, data)
    if len(accepted) > 1:
        write(sidecar(path), _sidecar_text(path, [new]))
    return path


def _mismatch(path: Path, actual: str, expected: list[str]) -> IntegrityError:
    if not expected:
        return IntegrityError(f"{path}: its checksum file {sidecar(path).name} is damaged; "
                              "the file cannot be trusted")
    return IntegrityError(
        f"{path}: checksum mismatch (sha256 {actual[:12]}.., written {expected[0][:12]}..): "
        "its bytes changed after they were written"
    )


def verified(path: Path, data: bytes) -> Status:
    """Check ``data`` (the bytes read from ``path``) against its sidecar: "ok", or "unchecked"
    without one; raises :class:`IntegrityError` on a mismatch."""
    expected = _listed(path)
    if expected is None:
        return "unchecked"
    actual = digest(data)
    if actual not in expected:
        raise _mismatch(path, actual, expected)
    return "ok"


def read_checked(path: str | Path) -> bytes:
    """The bytes of ``path``, verified against its sidecar (:class:`IntegrityError` on a
    mismatch; a file without a sidecar is read unchecked)."""
    path = Path(path)
    data = path.read_bytes()
    verified(path, data)
    return data


# -- embedded checksum (packed models) ------------------------------------------------------
def _header_span(data: bytes) -> tuple[int, int]:
    """(start, stop) of a safetensors JSON header in ``data`` (the whole data when it is not
    one: a damaged length then fails the search)."""
    if len(data) < 8:
        return 0, len(data)
    size = int.from_bytes(data[:8], "little")
    return 8, min(8 + size, len(data))


def _near_marker(header: bytes) -> bool:
    """Whether some window of ``header`` is the marker with at most one bit changed (a flipped
    bit in the key must not make a sealed file look like an unsealed one)."""
    import numpy as np

    n = len(_MARKER)
    if len(header) < n:
        return False
    view = np.frombuffer(header, dtype=np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(view, n)
    diff = np.bitwise_xor(windows, np.frombuffer(_MARKER, dtype=np.uint8))
    bits = np.unpackbits(diff, axis=1).sum(axis=1)
    return bool((bits <= 1).any())


def _embedded_value(data: bytes) -> tuple[int, str] | None:
    start, stop = _header_span(data)
    header = data[start:stop]
    at = header.find(_MARKER)
    if at < 0 or header.find(_MARKER, at + 1) >= 0:
        return None
    begin = start + at + len(_MARKER)
    return begin, data[begin:begin + _HEX].decode("latin-1")


def embedded_placeholder() -> str:
    """The value to give :data:`EMBEDDED_KEY` before sealing (64 zeros)."""
    return "0" * _HEX


def seal_embedded(path: Path) -> None:
    """Replace the placeholder of ``path`` (written with :func:`embedded_placeholder`) by the
    file's checksum, in place (same length: no offset moves)."""
    data = bytearray(path.read_bytes())
    found = _embedded_value(bytes(data))
    if found is None or found[1] != embedded_placeholder():
        raise IntegrityError(f"{path}: no {EMBEDDED_KEY} placeholder to seal")
    begin = found[0]
    data[begin:begin + _HEX] = digest(bytes(data)).encode()
    path.write_bytes(bytes(data))


def check_embedded(path: Path, data: bytes) -> Status:
    """Check the embedded checksum of ``data`` (the bytes of ``path``): "ok", "unchecked" for a
    file written without one; raises :class:`IntegrityError` on a mismatch."""
    found = _embedded_value(data)
    if found is None:
        start, stop = _header_span(data)
        if _near_marker(data[start:stop]):
            raise IntegrityError(f"{path}: its {EMBEDDED_KEY} entry is damaged; the file "
                                 "cannot be trusted")
        return "unchecked"
    begin, stored = found
    blank = data[:begin] + embedded_placeholder().encode() + data[begin + _HEX:]
    actual = digest(blank)
    if actual != stored:
        raise _mismatch(path, actual, [stored] if len(stored) == _HEX else [])
    return "ok"


def check_file(path: Path) -> Check:
    """Status of one stored file (a packed ``.safetensors`` by its embedded checksum, any other
    by its sidecar)."""
    try:
        data = path.read_bytes()
        if path.suffix == ".safetensors":
            status = check_embedded(path, data)
        else:
            status = verified(path, data)
    except IntegrityError as err:
        return Check(path, "damaged", str(err))
    except OSError as err:
        return Check(path, "damaged", f"{path}: unreadable ({err.strerror or err})")
    return Check(path, status, "no checksum" if status == "unchecked" else "")


__all__ = ["EMBEDDED_KEY", "SUFFIX", "Check", "IntegrityError", "check_embedded", "check_file",
           "digest", "embedded_placeholder", "is_sidecar", "read_checked", "seal_embedded",
           "sidecar", "verified", "write_with_checksum"]
