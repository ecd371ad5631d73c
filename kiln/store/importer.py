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
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from kiln.store import chunks
from kiln.store.chunker import Chunker
from kiln.store.crypto import DataKey
from kiln.store.index import ChunkIndex
from kiln.store.manifest import Manifest
from kiln.store.packs import PackWriter, ReuseGuard, StoredPack
from kiln.store.workers import ZERO_ID, CutResult, cut_segment, is_zero, write_pack
from kiln.types import Extent

log = logging.getLogger(__name__)

SEGMENT = 4 * 1024 * 1024
INFLIGHT = 6
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


class BlockWriter:
    """Hashes, encodes and packs the chunks of one block (runs in a worker thread)."""

    def __init__(
        self, index: ChunkIndex, packer: PackWriter, key: DataKey | None, known: set[bytes]
    ) -> None:
        self.index = index
        self.packer = packer
        self.key = key
        self.known = known  # ids certain to be stored (the parent's)
        self.seen: set[bytes] = set()  # ids handled by this import
        self.reused: set[bytes] = set()  # ids found stored: checked again before commit
        self.guard = ReuseGuard(index.backend)  # packs touched for a concurrent GC
        self._lock = threading.Lock()

    def __call__(self, buf: memoryview, base: int, lengths: list[int]) -> list[_Hit]:
        out: list[_Hit] = []
        pos = 0
        for ln in lengths:
            mv = buf[pos : pos + ln]
            off = base + pos
            pos += ln
            if is_zero(mv):
                continue
            cid = chunks.chunk_id(mv, self.key)
            if cid not in self.known and cid not in self.seen:
                with self._lock:
                    first = cid not in self.seen
                    self.seen.add(cid)
                if first:
                    pack = self.index.pack_of(cid)
                    if pack is not None and self.guard.usable(pack):
                        self.reused.add(cid)
                    else:
                        self.packer.add(cid, chunks.encode(cid, mv, self.key))
            out.append(_Hit(off, ln, cid))
        return out


Reader = Callable[[int, int], bytes]


@dataclass(slots=True)
class _Segment:
    """One segment of a span, read and cut by a worker as if a chunk began at its start."""

    start: int
    data: bytes
    final: bool  # the span's last segment: its chunks cover it to the end
    lengths: list[int]  # speculative chunk lengths from ``start`` (the last partial one dropped)
    hits: list[_Hit]  # chunks at or past ``start + head`` (hashed and stored by the worker)
    head: int  # bytes at the start left for the main thread's stitching


def _cut_segment(
    read: Reader,
    chunker: Chunker,
    writer: BlockWriter,
    start: int,
    length: int,
    first: bool,
    final: bool,
) -> _Segment:
    data = read(start, length)
    if len(data) != length:
        raise OSError(f"short read at offset {start}: the source file changed")
    lengths = chunker.cut(data, start, final)
    head = 0 if first else min(length, chunker.config.max_chunk)
    # chunks that begin inside the head may not be true chunks (the true chunking reaches this
    # segment from a cut in the previous one): the main thread decides, see read_spans
    skip = 0
    pos = 0
    while skip < len(lengths) and pos < head:
        pos += lengths[skip]
        skip += 1
    used = sum(lengths)
    hits = writer(memoryview(data)[pos:used], start + pos, lengths[skip:]) if used > pos else []
    return _Segment(start, data, final, lengths, hits, pos)


def _speculative(start: int, lengths: list[int], final: bool) -> tuple[list[int], set[int], int]:
    """Where a worker's chunks start (cut from ``start``), the set of its cut points a true cut
    can meet (the starts, and the start of its partial tail unless ``final``), and that tail's
    start."""
    starts = []
    p = start
    for ln in lengths:
        starts.append(p)
        p += ln
    spec = set(starts)
    if not final:
        spec.add(p)
    return starts, spec, p


def _meet(
    chunker: Chunker,
    window: Callable[[int], bytes],
    true_at: int,
    start: int,
    seg_end: int,
    final: bool,
    spec: set[int],
) -> tuple[int, list[int], bytes] | None:
    """Cut from ``true_at`` (a true cut at or before ``start``) until a cut lands in ``spec``:
    (that cut, the true chunk lengths from ``true_at`` up to it, the bytes they lie in). From
    that cut on, the worker's chunks are the true ones. ``window(hi)`` gives the bytes from
    ``true_at`` to ``hi``. None if no cut meets within 3 × max of ``start``."""
    if true_at in spec:
        return true_at, [], b""
    for reach in (
        chunker.config.max_chunk * 3 // 2,
        chunker.config.max_chunk * 3,
    ):  # most meet early
        hi = min(seg_end, start + reach)
        buf = window(hi)
        cut = chunker.cut(buf, true_at, final and hi == seg_end)
        at = true_at
        for n, ln in enumerate(cut + [0]):
            if at >= start and at in spec:
                return at, cut[:n], buf
            at += ln
        if hi == seg_end:
            break
    return None


def read_spans(
    read: Reader,
    spans: Iterable[Extent],
    chunker: Chunker,
    writer: BlockWriter,
    manifest: Manifest,
    total: int,
    progress: Progress | None,
) -> None:
    """Chunk and store every span (bytes from ``read(offset, length)``, which must be
    thread-safe); add the resulting entries to ``manifest`` (the caller counts what was stored).

    Every span is chunked as if cut serially from its start (the chunk ids, and so dedup, do
    not depend on how the work is split). Workers read and cut segments in parallel, each from
    its own start; the main thread then *stitches* each segment to the one before it: it cuts
    from the true boundary left by the previous segment until a cut lands on one of the
    segment's own cuts (FastCDC's next cut depends only on where the current chunk starts), and
    from there the worker's chunks are the true ones. Data on which no such meeting point comes
    (e.g. long runs of one byte value) is cut serially, which gives the same chunks, slower.
    """
    pending: deque[Future[_Segment]] = deque()
    seams: deque[Future[list[_Hit]]] = deque()

    def take(hits: list[_Hit]) -> None:
        for hit in hits:
            manifest.add(hit.offset, hit.length, hit.cid)

    carry = b""  # bytes from the last true cut to the end of the previous segment
    done = 0

    def stitch(seg: _Segment, pool: ThreadPoolExecutor) -> None:
        nonlocal carry, done
        base = seg.start - len(carry)  # a true cut (the segment's start for a span's first)
        seg_end = seg.start + len(seg.data)
        starts, spec, spec_end = _speculative(seg.start, seg.lengths, seg.final)
        met = _meet(
            chunker,
            lambda hi: carry + seg.data[: hi - seg.start],
            base,
            seg.start,
            seg_end,
            seg.final,
            spec,
        )
        if met is not None:
            # true chunks from base to meet (cut here), then the worker's from meet on; those
            # it left in its head are stored here, any it stored before meet are unreferenced
            # garbage for GC (rare: the cuts almost always meet in the head)
            meet, lengths, window = met
            if lengths:
                seams.append(pool.submit(writer, memoryview(window)[: meet - base], base, lengths))
            head_end = seg.start + seg.head
            mine = [ln for st, ln in zip(starts, seg.lengths, strict=True) if meet <= st < head_end]
            if mine:
                lo = meet - seg.start
                seams.append(
                    pool.submit(writer, memoryview(seg.data)[lo : lo + sum(mine)], meet, mine)
                )
            take([h for h in seg.hits if h.offset >= meet])
            carry = b"" if seg.final else seg.data[spec_end - seg.start :]
        else:
            # the cuts never met: cut this segment serially (same chunks, slower); what the
            # worker stored of it is left unreferenced for GC
            buf = carry + seg.data
            lengths = chunker.cut(buf, base, seg.final)
            used = sum(lengths)
            if lengths:
                seams.append(pool.submit(writer, memoryview(buf)[:used], base, lengths))
            carry = b"" if seg.final else buf[used:]
            log.debug("segment at %d cut serially", seg.start)
        if len(carry) > chunker.config.max_chunk * 4:  # never grows without bound
            raise RuntimeError("chunker left an unbounded carry")
        done += len(seg.data)
        if progress:
            progress(done, total)

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="kiln-import") as pool:
        for span in spans:
            pos = span.offset
            while pos < span.end:
                n = min(SEGMENT, span.end - pos)
                pending.append(
                    pool.submit(
                        _cut_segment,
                        read,
                        chunker,
                        writer,
                        pos,
                        n,
                        pos == span.offset,
                        pos + n >= span.end,
                    )
                )
                pos += n
                while len(pending) > INFLIGHT:
                    stitch(pending.popleft().result(), pool)
                while seams and (seams[0].done() or len(seams) > INFLIGHT):
                    take(seams.popleft().result())
        while pending:
            stitch(pending.popleft().result(), pool)
        while seams:
            take(seams.popleft().result())


def now() -> float:
    return time.monotonic()


PACK_RAW = 20 * 1024 * 1024  # plaintext bytes per pack job (~7 MiB packs at zstd's ratio here)
PROC_INFLIGHT = 4


@dataclass(slots=True)
class ProcImport:
    """What read_spans_procs did: bytes it stored, its packs, chunks it found already stored."""

    new_stored: int = 0
    packs: dict[str, list[tuple[bytes, int, int]]] = field(default_factory=dict)
    reused: set[bytes] = field(default_factory=set)


def read_spans_procs(
    pool: Executor,
    source: str,
    backend_url: str,
    read: Reader,
    spans: Iterable[Extent],
    chunker: Chunker,
    key: DataKey | None,
    index: ChunkIndex,
    known: set[bytes],
    manifest: Manifest,
    total: int,
    progress: Progress | None,
) -> ProcImport:
    """read_spans for a backend other processes share (``backend_url``), with worker *processes*: they cut and hash segments of
    ``source`` (cut_segment), and compress and pack the new chunks (write_pack); this process
    stitches segments exactly as read_spans does (same chunks), deduplicates, and adds the
    entries to ``manifest``. ``read`` reads ``source`` here, for the few bytes around seams.
    Packs join ``index`` as they are stored; the caller writes the index object and commits."""
    out = ProcImport()
    cuts: deque[tuple[Extent, int, int, Future[CutResult]]] = deque()
    jobs: deque[Future[StoredPack]] = deque()
    seen: set[bytes] = set()
    guard = ReuseGuard(index.backend)
    batch: list[tuple[int, int, bytes]] = []
    batch_bytes = 0

    def finish(job: Future[StoredPack]) -> None:
        p = job.result()
        out.packs[p.pack_id] = p.toc
        out.new_stored += p.size
        index.add_pack(p.pack_id, p.toc)

    def submit_batch() -> None:
        nonlocal batch, batch_bytes
        if batch:
            jobs.append(pool.submit(write_pack, source, backend_url, batch, key))
            batch, batch_bytes = [], 0
        while jobs and (jobs[0].done() or len(jobs) > PROC_INFLIGHT):
            finish(jobs.popleft())

    def take(offset: int, length: int, cid: bytes) -> None:
        nonlocal batch_bytes
        if cid == ZERO_ID:
            return
        manifest.add(offset, length, cid)
        if cid in known or cid in seen:
            return
        seen.add(cid)
        pack = index.pack_of(cid)
        if pack is not None and guard.usable(pack):
            out.reused.add(cid)
            return
        batch.append((offset, length, cid))
        batch_bytes += length
        if batch_bytes >= PACK_RAW:
            submit_batch()

    def take_cut(buf: bytes, base: int, lengths: list[int]) -> None:
        view = memoryview(buf)
        pos = 0
        for ln in lengths:
            mv = view[pos : pos + ln]
            take(base + pos, ln, ZERO_ID if is_zero(mv) else chunks.chunk_id(mv, key))
            pos += ln

    true_at = 0  # start of the chunk the previous segment left open (a true cut)
    done = 0

    def stitch(span: Extent, start: int, length: int, res: CutResult) -> None:
        nonlocal true_at, done
        seg_end = start + length
        final = seg_end >= span.end
        if start == span.offset:
            true_at = start
        starts, spec, spec_end = _speculative(start, res.lengths, final)
        met = _meet(
            chunker, lambda hi: read(true_at, hi - true_at), true_at, start, seg_end, final, spec
        )
        if met is None:  # they never met (e.g. long runs of one byte): cut serially, same chunks
            buf = read(true_at, seg_end - true_at)
            lengths = chunker.cut(buf, true_at, final)
            take_cut(buf, true_at, lengths)
            true_at += sum(lengths)
            log.debug("segment at %d cut serially", start)
        else:
            meet, lengths, window = met
            take_cut(window, true_at, lengths)
            ids = res.ids
            for k, st in enumerate(starts):
                if st >= meet:
                    take(st, res.lengths[k], ids[32 * k : 32 * k + 32])
            true_at = spec_end
        done += length
        if progress:
            progress(done, total)

    for span in spans:
        pos = span.offset
        while pos < span.end:
            n = min(SEGMENT, span.end - pos)
            cuts.append(
                (
                    span,
                    pos,
                    n,
                    pool.submit(
                        cut_segment, source, pos, n, pos + n >= span.end, chunker.config, key
                    ),
                )
            )
            pos += n
            while len(cuts) > PROC_INFLIGHT:
                sp, st, ln, fut = cuts.popleft()
                stitch(sp, st, ln, fut.result())
    while cuts:
        sp, st, ln, fut = cuts.popleft()
        stitch(sp, st, ln, fut.result())
    submit_batch()
    while jobs:
        finish(jobs.popleft())
    return out
