"""Readers that feed an import: the source file, or the parent overlaid with changed ranges.

With a parent and a change list, an import re-chunks regions grown to the parent's chunk
boundaries (docs/storage-format.md#incremental). Only the changed ranges come from the source
(which may hold nothing else, e.g. an overlay's changed clusters); the rest of each region
comes from the parent's own chunks.
"""

from __future__ import annotations

import bisect
import os
import time
from collections import OrderedDict
from collections.abc import Callable

from kiln.store.manifest import Manifest
from kiln.types import Extent

Reader = Callable[[int, int], bytes]


class SourceCounter:
    """Counts bytes read from the source, for ImportResult.read_bytes."""

    def __init__(self) -> None:
        self.bytes = 0


def file_reader(fd: int, counter: SourceCounter) -> Reader:
    def read(offset: int, length: int) -> bytes:
        data = os.pread(fd, length, offset)
        counter.bytes += len(data)
        return data

    return read


def composed_reader(fd: int, changed: list[Extent], parent: Manifest,
                    read_chunk: Callable[[bytes], bytes], counter: SourceCounter) -> Reader:
    """Bytes of the new disk: the parent's, with ``changed`` (sorted, merged) from ``fd``."""
    starts = [e.offset for e in changed]
    cache: OrderedDict[bytes, bytes] = OrderedDict()

    def chunk(cid: bytes) -> bytes:
        data = cache.get(cid)
        if data is None:
            data = read_chunk(cid)
            cache[cid] = data
            if len(cache) > 16:
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
                counter.bytes += len(data)
                buf[lo - offset : lo - offset + len(data)] = data
            j += 1
        return bytes(buf)

    return read


def with_heartbeat(read: Reader, beat: Callable[[], None], every: float = 60.0) -> Reader:
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
