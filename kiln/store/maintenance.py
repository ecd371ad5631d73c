"""verify (re-hash everything) and gc (mark and sweep from live manifests, repacking).

GC safety beside concurrent imports (docs/storage-format.md#gc): a pack is deleted or repacked
only if its mtime is older than both the GC's start and the oldest running import's lease, minus
a grace period. Imports touch every pack they reuse a chunk from, and check again before
committing that reused chunks are still stored.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import blake3

from kiln import errors
from kiln.errors import Ec2Error
from kiln.store import chunks, packs
from kiln.store.backend import ObjectMissing
from kiln.store.crypto import KeyEncryptionKey
from kiln.store.store import SnapshotStore

log = logging.getLogger(__name__)

GRACE_SECONDS = 600.0
TMP_MAX_AGE = 3600.0  # temp files older than this are a crashed writer's
REPACK_DEAD_FRACTION = 0.2  # repack a pack once this share of its bytes is garbage
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    packs_checked: int
    chunks_checked: int
    bytes_checked: int
    manifests_checked: int
    damaged_packs: list[str] = field(default_factory=list)
    damaged_chunks: list[str] = field(default_factory=list)
    missing_chunks: list[str] = field(default_factory=list)
    damaged_manifests: list[str] = field(default_factory=list)
    damaged_snapshots: list[str] = field(default_factory=list)
    unverified_encrypted: int = 0  # sealed chunks checked by their trailer only (no key given)


@dataclass(frozen=True, slots=True)
class GcReport:
    packs_deleted: int
    packs_repacked: int
    chunks_deleted: int
    bytes_freed: int
    chunks_kept: int
    live_snapshots: int
    temp_files_removed: int


def _parse_pack(pack_id: str, data: bytes) -> list[tuple[bytes, int, int]]:
    """The table of contents of a pack held in memory; raises Ec2Error if damaged."""
    foot = struct.Struct("<II4s")
    bad = Ec2Error(errors.StoreCorrupt, f"pack {pack_id} is damaged")
    if len(data) < foot.size or blake3.blake3(data).hexdigest() != pack_id:
        raise bad
    n, toc_len, magic = foot.unpack_from(data, len(data) - foot.size)
    if magic != packs.MAGIC:
        raise bad
    table = data[len(data) - foot.size - toc_len : len(data) - foot.size]
    rec = struct.Struct("<32sII")
    return [rec.unpack_from(table, i * rec.size) for i in range(n)]


def verify(store: SnapshotStore, keys: list[KeyEncryptionKey] | None = None,
           progress: Progress | None = None) -> VerifyReport:
    """Re-hash every chunk of every pack and check every manifest; report what is damaged and
    which snapshots it hurts."""
    data_keys = {k.key_id: store.data_key(k, create=False) for k in keys or []}
    store.index.refresh()
    objects = list(store.backend.list("packs/"))
    total = sum(o.size for o in objects)
    damaged: set[bytes] = set()
    damaged_packs: list[str] = []
    present: set[bytes] = set()
    nchunks = nbytes = sealed_only = 0
    for o in objects:
        pack_id = o.name.rsplit("/", 1)[1]
        try:
            data = store.backend.get(o.name)
        except ObjectMissing:
            continue
        nbytes += len(data)
        try:
            toc = _parse_pack(pack_id, data)
        except Ec2Error:
            damaged_packs.append(pack_id)
            # the pack's bytes do not hash to its name: find which chunks are hurt
            try:
                toc = packs.read_toc(store.backend, pack_id)
            except Ec2Error:
                toc = []
                damaged |= {cid for cid in _index_ids_in(store, pack_id)}
        for cid, off, ln in toc:
            nchunks += 1
            blob = data[off : off + ln]
            ok = chunks.check_object(blob)
            if ok and not blob[4] & chunks.F_SEALED:
                try:
                    chunks.decode(cid, blob, None)
                except Ec2Error:
                    ok = False
            elif ok:
                sealed_only += 1
            (present if ok else damaged).add(cid)
        if progress:
            progress(nbytes, total)
    damaged -= present  # a chunk stored twice is fine if one copy is good
    bad_manifests: list[str] = []
    hurt: list[str] = []
    missing: set[bytes] = set()
    manifests = 0
    for sid in store.snapshots():
        manifests += 1
        try:
            m = store.manifest(sid)
        except Ec2Error:
            bad_manifests.append(sid)
            hurt.append(sid)
            continue
        ids = m.chunk_ids()
        gone = ids - present - damaged
        missing |= gone
        broken = bool(gone or ids & damaged)
        dk = data_keys.get(m.key_id) if m.key_id else None
        if dk is not None and not broken:
            for cid in ids:
                try:
                    store.read_chunk(cid, dk)
                except Ec2Error:
                    damaged.add(cid)
                    broken = True
            sealed_only = max(0, sealed_only - len(ids))
        if broken:
            hurt.append(sid)
    report = VerifyReport(
        ok=not (damaged or missing or bad_manifests or damaged_packs),
        packs_checked=len(objects), chunks_checked=nchunks, bytes_checked=nbytes, manifests_checked=manifests,
        damaged_packs=sorted(damaged_packs), damaged_chunks=sorted(c.hex() for c in damaged),
        missing_chunks=sorted(c.hex() for c in missing), damaged_manifests=bad_manifests,
        damaged_snapshots=sorted(hurt), unverified_encrypted=sealed_only,
    )
    log.info("verify: %s", report)
    return report


def _index_ids_in(store: SnapshotStore, pack_id: str) -> set[bytes]:
    return {cid for cid in list(store.index._where) if (loc := store.index.get(cid)) and loc.pack == pack_id}


def gc(store: SnapshotStore, grace_seconds: float = GRACE_SECONDS, progress: Progress | None = None) -> GcReport:
    """Mark from every manifest; delete packs with nothing live, repack mostly-dead ones.
    Order: new packs durable → new index durable → old index objects deleted → old packs deleted."""
    started = time.time()
    cutoff = min([started, *store.leases()]) - grace_seconds
    old_indexes = [o.name for o in store.backend.list("index/")]
    for o in store.backend.list("doomed/"):  # markers of a GC that crashed
        if started - o.mtime > TMP_MAX_AGE:
            store.backend.delete(o.name)
    store.index.refresh()
    live: set[bytes] = set()
    snaps = store.snapshots()
    for sid in snaps:
        live |= store.manifest(sid).chunk_ids()  # a damaged manifest stops GC: never sweep blind
    sizes = {o.name.rsplit("/", 1)[1]: (o.size, o.mtime) for o in store.backend.list("packs/")}
    used: dict[str, list[tuple[bytes, int, int]]] = defaultdict(list)  # pack -> live chunks it serves
    for cid in live:
        loc = store.index.get(cid)
        if loc is not None:
            used[loc.pack].append((cid, loc.offset, loc.length))
    new_packs: dict[str, list[tuple[bytes, int, int]]] = {}
    packer = store.packer(new_packs)
    doomed: set[str] = set()
    repacked = chunks_deleted = kept = 0
    for i, (pack_id, (size, mtime)) in enumerate(sorted(sizes.items())):
        if mtime >= cutoff:
            continue  # young: may belong to a running import
        live_here = used.get(pack_id, [])
        try:
            toc = packs.read_toc(store.backend, pack_id)
        except (Ec2Error, ObjectMissing):
            continue  # damaged packs are verify's business; never delete what cannot be read
        live_ids = {cid for cid, _, _ in live_here}
        dead_bytes = sum(ln for cid, _, ln in toc if cid not in live_ids)
        if not live_here:
            doomed.add(pack_id)
            chunks_deleted += len(toc)
        elif dead_bytes > REPACK_DEAD_FRACTION * size:
            # dead *chunks*, not the table of contents: a pack whose every chunk is live would
            # be rewritten byte for byte, under its own name, and then deleted as the old one
            for cid, off, ln in live_here:
                blob = store.backend.get_range(packs.pack_name(pack_id), off, ln)
                if not chunks.check_object(blob):
                    raise Ec2Error(errors.StoreCorrupt, f"chunk {cid.hex()} is damaged; run verify")
                packer.add(cid, blob)
            doomed.add(pack_id)
            repacked += 1
            chunks_deleted += len(toc) - len(live_here)
            kept += len(live_here)
        else:
            kept += len(toc)
        if progress:
            progress(i + 1, len(sizes))
    packer.flush()
    doomed -= set(new_packs)  # a repack that came out identical to a doomed pack is that pack
    freed = sum(sizes[p][0] for p in doomed) - packer.stored_bytes
    if doomed:
        store.index.forget_packs(doomed)
        for p, toc in new_packs.items():
            store.index.add_pack(p, toc)
        store.backend.sync()
        everything = {p: [(c, o, n) for c, o, n in _toc_of(store, p)] for p in store.index.packs() if p not in doomed}
        store.index.write(everything)
        store.backend.sync()
        for name in old_indexes:
            store.backend.delete(name)
        # Mark, look again, then delete (docs/storage-format.md#gc): an import touches a pack
        # before it checks for the marker, so a pack an import has started to reuse is either
        # seen touched here (and kept) or seen marked there (and its chunks stored again).
        for p in doomed:
            store.backend.put(packs.doomed_name(p), b"")
        fresh = {o.name.rsplit("/", 1)[1]: o.mtime for o in store.backend.list("packs/")}
        reused = {p for p in doomed if fresh.get(p, 0.0) >= cutoff}
        for p in doomed - reused:
            store.backend.delete(packs.pack_name(p))
        for p in reused:  # still on disk, read by its table of contents (no index covers it)
            store.index.add_pack(p, _toc_of(store, p))
        for p in doomed:
            store.backend.delete(packs.doomed_name(p))
        freed -= sum(sizes[p][0] for p in reused)
        doomed -= reused
    tmp = getattr(store.backend, "clean_tmp", None)
    removed = tmp(TMP_MAX_AGE) if callable(tmp) else 0  # a live writer's temp file is seconds old
    report = GcReport(max(len(doomed) - repacked, 0), repacked, chunks_deleted, max(freed, 0), kept, len(snaps), removed)
    log.info("gc: %s", report)
    return report


def _toc_of(store: SnapshotStore, pack_id: str) -> list[tuple[bytes, int, int]]:
    try:
        return packs.read_toc(store.backend, pack_id)
    except (Ec2Error, ObjectMissing):
        return []
