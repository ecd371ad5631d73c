"""The object backend protocol: the only thing a store needs from where bytes live.

Modelled on restic's ``Backend``: a flat namespace of immutable named objects. It admits an S3 API
backend (objects are written whole and never modified, nothing is renamed, and hot paths never
list), which is why the store above it never appends, renames or lists during import or restore.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    name: str
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do, as data (never probed with hasattr)."""

    atomic_put: bool  # a reader never sees a half-written object
    touch: bool  # ``touch`` refreshes an object's mtime cheaply
    local_path: bool  # objects are files on this host


class ObjectMissing(KeyError):
    """Raised by ``get`` / ``stat`` for an object that does not exist."""


class Backend(Protocol):
    capabilities: Capabilities

    def put(self, name: str, data: bytes | memoryview) -> bool:
        """Store ``data`` under ``name`` atomically. Idempotent: if ``name`` exists it is left
        as it is and False is returned (objects are content-addressed or written once);
        True when this call wrote it. A crash never leaves a partial object under ``name``."""
        ...

    def get(self, name: str) -> bytes:
        """The object's bytes. Raises ObjectMissing when absent."""
        ...

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of the object (a negative offset counts from its end).
        Raises ObjectMissing when absent; a short read means a damaged object."""
        ...

    def exists(self, name: str) -> bool:
        """Whether ``name`` exists. Cheap (one stat / HEAD); never lists."""
        ...

    def touch(self, name: str) -> bool:
        """Refresh the object's mtime so a concurrent GC treats it as new. False if absent."""
        ...

    def delete(self, name: str) -> None:
        """Remove ``name``. Idempotent: deleting a missing object is not an error."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose name starts with ``prefix``. Slow paths only (verify, gc, ls)."""
        ...

    def sync(self) -> None:
        """Make every object ``put`` so far durable (fsync/syncfs). After it returns, a power
        loss cannot lose them. Called before a manifest that names them is written."""
        ...

    def free_bytes(self) -> int | None:
        """Free space where objects go, or None if unknown/unbounded."""
        ...
