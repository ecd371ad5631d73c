"""An in-memory backend: the test double that ships with the package (restic's ``mem``).

URL: ``memory://name``. Every open of one name in this process reaches the same objects, for
as long as something holds the backend; no other process sees them.
"""

from __future__ import annotations

import secrets
import threading
import time
import weakref
from collections.abc import Iterator

from kiln.store.backend import Backend, Capabilities, ObjectInfo, ObjectMissing

_named: weakref.WeakValueDictionary[str, MemoryBackend] = weakref.WeakValueDictionary()
_named_lock = threading.Lock()


class MemoryBackend:
    # objects live in this process only: imports never hand work to worker processes
    capabilities = Capabilities(process_shared=False)

    def __init__(self, name: str | None = None) -> None:
        """A new, empty backend. ``name`` (default: a random one) makes it reachable as
        ``memory://name`` while it lives; see ``named`` to open an existing one."""
        self.name = name or f"anon-{secrets.token_hex(8)}"
        self.url = f"memory://{self.name}"
        self._objects: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        with _named_lock:
            _named[self.name] = self

    @classmethod
    def named(cls, name: str) -> MemoryBackend:
        """The live backend called ``name``, or a new empty one."""
        with _named_lock:
            found = _named.get(name)
        return found if found is not None else cls(name)

    def put(self, name: str, data: bytes | memoryview) -> bool:
        with self._lock:
            if name in self._objects:
                return False
            self._objects[name] = (bytes(data), time.time())
            return True

    def get(self, name: str) -> bytes:
        try:
            return self._objects[name][0]
        except KeyError as e:
            raise ObjectMissing(name) from e

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        data = self.get(name)
        if offset < 0:
            offset = max(0, len(data) + offset)
        return data[offset : offset + length]

    def exists(self, name: str) -> bool:
        return name in self._objects

    def touch(self, name: str) -> bool:
        with self._lock:
            if name not in self._objects:
                return False
            self._objects[name] = (self._objects[name][0], time.time())
            return True

    def delete(self, name: str) -> None:
        with self._lock:
            self._objects.pop(name, None)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._lock:
            items = list(self._objects.items())
        for name, (data, mtime) in items:
            if name.startswith(prefix):
                yield ObjectInfo(name, len(data), mtime)

    def sync(self) -> None:
        return None

    def free_bytes(self) -> int | None:
        return None

    def clean_tmp(self, older_than: float) -> int:
        return 0  # a put is one dict assignment: nothing is ever left half-written


_: type[Backend] = MemoryBackend
