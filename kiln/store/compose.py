"""Readers that feed an import: the source file, or the parent overlaid with changed ranges.

With a parent and a change list, an import re-chunks regions grown to the parent's chunk
boundaries (docs/storage-format.md#incremental). Only the changed ranges come from the source
(which may hold nothing else, e.g. an overlay's changed clusters); the rest of each region
comes from the parent's own chunks.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from kiln.store.manifest import Manifest
from kiln.types import Extent

Reader = Callable[[int, int], bytes]


class SourceCounter:
    """Counts bytes read from the source, for ImportResult.read_bytes (thread-safe)."""

    def __init__(self) -> None:
        self.bytes = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.bytes += n


def file_reader(fd: int, counter: SourceCounter) -> Reader:
    def read(offset: int, length: int) -> bytes:
        data = os.pread(fd, length, offset)
        counter.add(len(data))
        return data

    return read


def composed_reader(
    fd: int,
    changed: list[Extent],
    parent: Manifest,
    read_chunk: Callable[[bytes], bytes],
    counter: SourceCounter,
) -> Reader:
    """Bytes of the new disk: the parent's, with ``changed`` (sorted, merged) from ``fd``.
    Thread-safe: the importer's workers read segments in parallel."""
    starts = [e.offset for e in changed]
    cache: OrderedDict[bytes, bytes] = OrderedDict()
    lock = threading.Lock()

    def chunk(cid: bytes) -> bytes:
        with lock:
            data = cache.get(cid)
        if data is None:
            data = read_chunk(cid)
            with lock:
                cache[cid] = data
                while len(cache) > 16:
                    cache.popitem(last=False)
        return data

    def read(offset: int, length: int) -> bytes:
        end = offset + length
        buf = bytearray(length)
        i = max(0, bisect.bisect_right(parent.offsets, offset) - 1)
        while i < len(parent) and parent.offsets[i] < end:
            e_off, e_len = parent.offsets[i], parent.lengths[i]
            lo, hi = max(offset, e_off), min(end, e_off + e_len)
            if lo < hi:
                data = chunk(bytes(parent.ids[32 * i : 32 * i + 32]))
                buf[lo - offset : hi - offset] = data[lo - e_off : hi - e_off]
            i += 1
        j = max(0, bisect.bisect_right(starts, offset) - 1)
        while j < len(changed) and changed[j].offset < end:
            lo, hi = max(offset, changed[j].offset), min(end, changed[j].end)
            if lo < hi:
                data = os.pread(fd, hi - lo, lo)
                counter.add(len(data))
                buf[lo - offset : lo - offset + len(data)] = data
            j += 1
        return bytes(buf)

    return read


def with_heartbeat(read: Reader, beat: Callable[[], object], every: float = 60.0) -> Reader:
    """Call ``beat`` (refresh the import's lease) at most every ``every`` seconds while reading."""
    last = time.monotonic()

    def wrapped(offset: int, length: int) -> bytes:
        nonlocal last
        now = time.monotonic()
        if now - last >= every:
            last = now
            beat()
        return read(offset, length)

    return wrapped
