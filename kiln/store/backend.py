"""The object backend protocol: the only thing a store needs from where bytes live.

Modelled on restic's ``Backend``: a flat namespace of immutable named objects. It admits an S3 API
backend (objects are written whole and never modified, nothing is renamed, and hot paths never
list), which is why the store above it never appends, renames or lists during import or restore.

Every backend is opened by URL (kiln/store/backends.py) and passes the conformance suite
(kiln/store/conformance.py), which checks each contract written below.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    name: str
    size: int
    mtime: float  # unix seconds of the last put or touch


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do, as data. The store reads these to decide; it never probes a
    backend with ``isinstance`` or ``hasattr``."""

    # Another process that opens the backend's ``url`` sees the same objects, and this one sees
    # what it puts. Large imports then hand cutting, compressing and pack writing to worker
    # processes (kiln/store/workers.py); otherwise every import stays on threads.
    process_shared: bool


class ObjectMissing(KeyError):
    """Raised by ``get`` / ``get_range`` for an object that does not exist."""


class Backend(Protocol):
    """A flat namespace of write-once objects. Names are ``/``-separated relative paths
    (``packs/ab/ab…``); a name is never reused for other bytes except after a ``delete``.
    Every method is thread-safe."""

    capabilities: Capabilities
    url: str  # what kiln.store.backends.open_backend takes to reach these same objects

    def put(self, name: str, data: bytes | memoryview) -> bool:
        """Store ``data`` under ``name``. Atomic: a reader sees the whole object or nothing,
        and a crash never leaves a partial object under ``name``. Write-once and idempotent:
        if ``name`` exists it is left as it is and False is returned; True when this call wrote
        it. (Two writers racing on one name leave one of their objects whole; the names the
        store races on are content-addressed, so both are the same bytes.)"""
        ...

    def get(self, name: str) -> bytes:
        """The whole object. Raises ObjectMissing when absent."""
        ...

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of the object; a negative offset counts from its end
        (an S3 suffix range). Raises ObjectMissing when absent. Past the end the result is
        short (empty from the end on): callers treat a short read as a damaged object."""
        ...

    def exists(self, name: str) -> bool:
        """Whether ``name`` exists. Cheap (one stat / HEAD); never lists."""
        ...

    def touch(self, name: str) -> bool:
        """Refresh the object's mtime (to now) so a concurrent GC treats it as new; its bytes
        do not change. Returns False, and does nothing, if it is absent. Idempotent."""
        ...

    def delete(self, name: str) -> None:
        """Remove ``name``. Idempotent: deleting a missing object is not an error."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose name starts with ``prefix`` (a plain string prefix, in no
        particular order). An empty result is no error. Slow paths only (open, verify, gc)."""
        ...

    def sync(self) -> None:
        """Make every object ``put`` so far durable (fsync/syncfs). After it returns, a power
        loss cannot lose them. Called before a manifest that names them is written.
        Idempotent; a no-op where puts are durable when they return."""
        ...

    def free_bytes(self) -> int | None:
        """Free space where objects go, or None if unknown/unbounded."""
        ...

    def clean_tmp(self, older_than: float) -> int:
        """Remove what writers that crashed left behind that is no object (the local
        backend's temp files; an S3 backend's incomplete uploads) and is older than
        ``older_than`` seconds. Returns how many were removed. Never touches an object."""
        ...
