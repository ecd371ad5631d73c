"""An in-memory backend: the test double that ships with the package (restic's ``mem``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from kiln.store.backend import Backend, Capabilities, ObjectInfo, ObjectMissing


class MemoryBackend:
    capabilities = Capabilities(atomic_put=True, touch=True, local_path=False)

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

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
        for name, (data, mtime) in list(self._objects.items()):
            if name.startswith(prefix):
                yield ObjectInfo(name, len(data), mtime)

    def sync(self) -> None:
        return None

    def free_bytes(self) -> int | None:
        return None


_: type[Backend] = MemoryBackend
