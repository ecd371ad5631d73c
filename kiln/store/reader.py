"""SnapshotReader: random access to a snapshot's disk, chunk by chunk.

``store.reader(snapshot_id, key)`` gives one. ``read(offset, length)`` finds the manifest
entries that cover the range (a binary search over their offsets), reads and verifies only
those chunks, and fills what no entry covers with zeros (docs/storage-format.md#manifests).
The chunks read last are kept, so reads that walk a file's blocks in order read each chunk once.
For offline scans of a snapshot's filesystem without restoring the whole disk.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable

from kiln.store.manifest import Manifest

CACHE_CHUNKS = 8  # ~350 KiB of plaintext at the default chunker


class SnapshotReader:
    """A read-only view of one snapshot's bytes. Thread-safe."""

    def __init__(
        self,
        manifest: Manifest,
        read_chunk: Callable[[bytes], bytes],
        cache_chunks: int = CACHE_CHUNKS,
    ) -> None:
        """``read_chunk(id)`` returns a chunk's verified plaintext (SnapshotStore.read_chunk
        with the snapshot's data key) and raises KilnError(StoreCorrupt) if it cannot."""
        self.manifest = manifest
        self.size = manifest.virtual_size
        self.chunks_read = 0  # chunks fetched from the store (cache misses)
        self._read_chunk = read_chunk
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._cache_chunks = max(1, cache_chunks)
        self._lock = threading.Lock()

    @property
    def snapshot_id(self) -> str:
        return self.manifest.snapshot_id

    def read(self, offset: int, length: int) -> bytes:
        """The disk's bytes ``offset .. offset + length``; short past the end of the disk (like
        ``pread``: empty at or after ``size``). Holes read as zeros. Raises ValueError for a
        negative offset or length, KilnError(StoreCorrupt) for a chunk that cannot be read."""
        if offset < 0 or length < 0:
            raise ValueError(f"negative offset or length: {offset}, {length}")
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        m = self.manifest
        offsets, lengths, ids = m.offsets, m.lengths, m.ids
        buf = bytearray(end - offset)
        i = max(0, bisect.bisect_right(offsets, offset) - 1)
        n = len(offsets)
        while i < n and offsets[i] < end:
            e_off = offsets[i]
            lo, hi = max(offset, e_off), min(end, e_off + lengths[i])
            if lo < hi:
                data = self._chunk(bytes(ids[32 * i : 32 * i + 32]))
                buf[lo - offset : hi - offset] = data[lo - e_off : hi - e_off]
            i += 1
        return bytes(buf)

    def _chunk(self, cid: bytes) -> bytes:
        with self._lock:
            data = self._cache.get(cid)
            if data is not None:
                self._cache.move_to_end(cid)
                return data
        data = self._read_chunk(cid)
        with self._lock:
            self.chunks_read += 1
            self._cache[cid] = data
            while len(self._cache) > self._cache_chunks:
                self._cache.popitem(last=False)
        return data
