"""Import a disk image into a snapshot: read → chunk → hash → compress/encrypt → write.

The main thread reads blocks of the disk's data ranges and cuts them into chunks; a small
thread pool hashes, compresses and writes whole blocks (BLAKE3, zstd and file I/O release the
GIL, so both cores work). At most ``INFLIGHT`` blocks are in memory, whatever the disk's size.
Order of durability: see docs/storage-format.md#write-order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from kiln.store import chunks
from kiln.store.chunker import Chunker
from kiln.store.crypto import DataKey
from kiln.store.index import ChunkIndex
from kiln.store.manifest import Manifest
from kiln.store.packs import PackWriter, pack_name
from kiln.types import Extent

log = logging.getLogger(__name__)

BLOCK = 8 * 1024 * 1024
INFLIGHT = 4
WORKERS = 3

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ImportResult:
    snapshot_id: str
    virtual_size: int
    data_bytes: int  # bytes of the disk held in chunks (non-zero data)
    read_bytes: int  # bytes read from the source
    chunks: int
    new_chunks: int
    new_stored_bytes: int  # bytes this import added to the store
    seconds: float


@dataclass(slots=True)
class _Hit:
    offset: int
    length: int
    cid: bytes
    written: int  # bytes of the chunk object this import wrote (0 if deduplicated)


class _BlockWriter:
    """Hashes, encodes and packs the chunks of one block (runs in a worker thread)."""

    def __init__(self, index: ChunkIndex, packer: PackWriter, key: DataKey | None, known: set[bytes]) -> None:
        self.index = index
        self.packer = packer
        self.key = key
        self.known = known  # ids certain to be stored (the parent's)
        self.seen: set[bytes] = set()  # ids handled by this import
        self.reused: set[bytes] = set()  # ids found stored: checked again before commit
        self.touched: set[str] = set()  # packs refreshed for a concurrent GC
        self._lock = threading.Lock()

    def __call__(self, buf: memoryview, base: int, lengths: list[int]) -> list[_Hit]:
        out: list[_Hit] = []
        pos = 0
        for ln in lengths:
            mv = buf[pos : pos + ln]
            off = base + pos
            pos += ln
            if _is_zero(mv):
                continue
            cid = chunks.chunk_id(mv, self.key)
            written = 0
            if cid not in self.known and cid not in self.seen:
                with self._lock:
                    first = cid not in self.seen
                    self.seen.add(cid)
                if first:
                    loc = self.index.get(cid)
                    if loc is not None:
                        self.reused.add(cid)
                        if loc.pack not in self.touched:  # keep it young for a concurrent GC
                            self.touched.add(loc.pack)
                            self.index.backend.touch(pack_name(loc.pack))
                    else:
                        blob = chunks.encode(cid, mv, self.key)
                        self.packer.add(cid, blob)
                        written = len(blob)
            out.append(_Hit(off, ln, cid, written))
        return out


_ZERO = bytes(1 << 20)


def _is_zero(mv: memoryview) -> bool:
    n = len(mv)
    if mv[0] or mv[n - 1] or mv[n // 2]:
        return False
    if n <= len(_ZERO):
        return mv == _ZERO[:n]  # memcmp for format 'B' views of equal length
    return bytes(mv).count(0) == n


Reader = Callable[[int, int], bytes]


def read_spans(
    read: Reader,
    spans: Iterable[Extent],
    chunker: Chunker,
    writer: _BlockWriter,
    manifest: Manifest,
    total: int,
    progress: Progress | None,
) -> tuple[int, int, int]:
    """Chunk and store every span (bytes from ``read(offset, length)``); add the resulting
    entries to ``manifest``. Returns (read_bytes, new_chunks, new_stored_bytes)."""
    read_bytes = new_chunks = new_stored = 0
    carry_max = chunker.config.max_chunk
    pending: deque[Future[list[_Hit]]] = deque()

    def drain(limit: int) -> None:
        nonlocal new_chunks, new_stored
        while len(pending) > limit:
            for hit in pending.popleft().result():
                manifest.add(hit.offset, hit.length, hit.cid)
                if hit.written:
                    new_chunks += 1
                    new_stored += hit.written

    done = 0
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="kiln-import") as pool:
        for span in spans:
            pos = span.offset
            carry = b""
            while pos < span.end or carry:
                want = min(BLOCK, span.end - pos)
                data = read(pos, want) if want else b""
                if want and len(data) != want:
                    raise OSError(f"short read at offset {pos}: the source file changed")
                read_bytes += len(data)
                buf = carry + data if carry else data
                base = pos - len(carry)
                pos += want
                final = pos >= span.end
                lengths = chunker.cut(buf, base, final)
                used = sum(lengths)
                carry = buf[used:] if not final else b""
                if len(carry) > carry_max * 4:  # never grows without bound
                    raise RuntimeError("chunker left an unbounded carry")
                if lengths:
                    pending.append(pool.submit(writer, memoryview(buf)[:used], base, lengths))
                drain(INFLIGHT)
                if progress:
                    done += want
                    progress(done, total)
        drain(0)
    return read_bytes, new_chunks, new_stored


def now() -> float:
    return time.monotonic()
