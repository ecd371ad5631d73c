"""Restore: write a snapshot's disk out, reading adjacent chunks of a pack with one ranged read.

Restores run on threads (decompression and the kernel's page-cache writes release the GIL;
worker processes did not make them faster). Every chunk is verified; a damaged copy is
quarantined and another one read (docs/storage-format.md#quarantine).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from kiln.errors import KilnError
from kiln.store import chunks, importer
from kiln.store.backend import Backend, ObjectMissing
from kiln.store.crypto import DataKey
from kiln.store.importer import Progress
from kiln.store.index import ChunkIndex
from kiln.store.manifest import Manifest
from kiln.store.packs import pack_name

RESTORE_BATCH = 8 * 1024 * 1024
RESTORE_INFLIGHT = 4
RESTORE_RUN = 4 * 1024 * 1024  # largest ranged read of adjacent chunks


class ChunkSource(Protocol):
    """What a restore reads through (a SnapshotStore)."""

    backend: Backend
    index: ChunkIndex

    def read_chunk(self, cid: bytes, dk: DataKey | None) -> bytes: ...

    def note_damaged(
        self, cid: bytes, pack_id: str, blob: bytes | memoryview, found_by: str
    ) -> bool: ...


def read_entries(
    src: ChunkSource, m: Manifest, lo: int, hi: int, dk: DataKey | None
) -> Iterator[tuple[int, bytes]]:
    """(offset, plaintext) of manifest entries ``lo..hi``, verified. Chunks that lie one after
    the other in one pack (as an import writes them) are read with one ranged read."""
    ids = m.ids
    i = lo
    while i < hi:
        first = src.index.get(bytes(ids[32 * i : 32 * i + 32]))
        j = i + 1
        if first is not None:
            sizes = [first.length]  # blob lengths of entries i..j, adjacent in one pack
            end = first.offset + first.length
            while j < hi and end - first.offset < RESTORE_RUN:
                loc = src.index.get(bytes(ids[32 * j : 32 * j + 32]))
                if loc is None or loc.pack != first.pack or loc.offset != end:
                    break
                sizes.append(loc.length)
                end += loc.length
                j += 1
            try:
                blob = src.backend.get_range(
                    pack_name(first.pack), first.offset, end - first.offset
                )
            except ObjectMissing:  # repacked by a GC: read chunk by chunk (reloads the index)
                blob = b""
            if len(blob) == end - first.offset:
                view = memoryview(blob)
                pos = 0
                for k, ln in zip(range(i, j), sizes, strict=True):
                    cid = bytes(ids[32 * k : 32 * k + 32])
                    try:
                        data = chunks.decode(cid, view[pos : pos + ln], dk)
                    except KilnError:
                        if not src.note_damaged(cid, first.pack, view[pos : pos + ln], "restore"):
                            raise
                        data = src.read_chunk(cid, dk)  # another copy, or an error
                    yield m.offsets[k], data
                    pos += ln
                i = j
                continue
            j = i + 1
        for k in range(i, j):
            yield m.offsets[k], src.read_chunk(bytes(ids[32 * k : 32 * k + 32]), dk)
        i = j


def write_raw(
    src: ChunkSource, m: Manifest, dk: DataKey | None, path: Path, progress: Progress | None
) -> None:
    """Write the disk of ``m`` to ``path`` (sparse: holes are never written), batches of
    entries in parallel on threads."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, m.virtual_size)

        def work(lo: int, hi: int) -> int:
            n = 0
            run: list[bytes] = []
            run_at = run_end = -1
            for off, data in read_entries(src, m, lo, hi, dk):
                if off != run_end or len(run) >= 512:  # contiguous chunks: one syscall
                    if run:
                        os.pwritev(fd, run, run_at)
                    run, run_at = [], off
                run.append(data)
                run_end = off + len(data)
                n += len(data)
            if run:
                os.pwritev(fd, run, run_at)
            return n

        pending: deque[Future[int]] = deque()
        done = 0
        with ThreadPoolExecutor(importer.WORKERS, thread_name_prefix="kiln-restore") as pool:
            i = 0
            count = len(m)
            while i < count:
                j, size = i, 0
                while j < count and size < RESTORE_BATCH:
                    size += m.lengths[j]
                    j += 1
                pending.append(pool.submit(work, i, j))
                i = j
                while len(pending) > RESTORE_INFLIGHT:
                    done += pending.popleft().result()
                    if progress:
                        progress(done, m.data_bytes)
            while pending:
                done += pending.popleft().result()
                if progress:
                    progress(done, m.data_bytes)
    finally:
        os.close(fd)
