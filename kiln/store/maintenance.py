"""verify (re-hash everything) and gc (mark and sweep from live manifests, repacking).

GC safety beside concurrent imports (docs/storage-format.md#gc): a pack is deleted or repacked
only if its mtime is older than both the GC's start and the oldest running import's lease, minus
a grace period. Imports touch every pack they reuse a chunk from, and check again before
committing that reused chunks are still stored.

verify records what it finds in the quarantine (kiln/store/quarantine.py); gc never drops the
last copy of a live chunk, even a quarantined one, and drops bad copies that have a good one
(docs/storage-format.md#quarantine).
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
from kiln.errors import KilnError
from kiln.store import chunks, packs, quarantine
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
    # damaged packs whose every hurt chunk has an intact copy elsewhere (quarantined, so never
    # read): not damage any more; gc or ``verify --repair`` drops them
    superseded_packs: list[str] = field(default_factory=list)
    quarantined: int = 0  # quarantine entries after this verify


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
    """The table of contents of a pack held in memory; raises KilnError if damaged."""
    foot = struct.Struct("<II4s")
    bad = KilnError(errors.StoreCorrupt, f"pack {pack_id} is damaged")
    if len(data) < foot.size or blake3.blake3(data).hexdigest() != pack_id:
        raise bad
    n, toc_len, magic = foot.unpack_from(data, len(data) - foot.size)
    if magic != packs.MAGIC:
        raise bad
    table = data[len(data) - foot.size - toc_len : len(data) - foot.size]
    rec = struct.Struct("<32sII")
    return [rec.unpack_from(table, i * rec.size) for i in range(n)]


def verify(
    store: SnapshotStore,
    keys: list[KeyEncryptionKey] | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Re-hash every chunk of every pack and check every manifest; report what is damaged and
    which snapshots it hurts, and record it in the quarantine (docs/storage-format.md#quarantine)."""
    data_keys = {k.key_id: store.data_key(k, create=False) for k in keys or []}
    store.index.refresh()
    entries = store.index.quarantine()
    entry_packs = {e.pack for e in entries if e.pack is not None}
    objects = list(store.backend.list("packs/"))
    total = sum(o.size for o in objects)
    bad_copies: set[tuple[bytes, str]] = set()
    cleared: set[quarantine.Entry] = set()  # entries whose copy was found intact
    damaged_packs: list[str] = []
    no_toc: set[str] = set()
    present: set[bytes] = set()
    existing: set[str] = set()
    nchunks = nbytes = sealed_only = 0
    for o in objects:
        pack_id = o.name.rsplit("/", 1)[1]
        try:
            data = store.backend.get(o.name)
        except ObjectMissing:
            continue
        existing.add(pack_id)
        nbytes += len(data)
        try:
            toc = _parse_pack(pack_id, data)
        except KilnError:
            damaged_packs.append(pack_id)
            # the pack's bytes do not hash to its name: find which chunks are hurt
            try:
                toc = packs.read_toc(store.backend, pack_id)
            except KilnError:  # no table of contents: check what the index knows of this pack
                no_toc.add(pack_id)
                toc = store.index.chunks_in(pack_id)
        for cid, off, ln in toc:
            nchunks += 1
            blob = data[off : off + ln]
            if chunks.intact(cid, blob):
                present.add(cid)
                sealed_only += 1 if blob[4] & chunks.F_SEALED else 0
                if pack_id in entry_packs:
                    cleared.add(quarantine.Entry(cid, pack_id))
            else:
                bad_copies.add((cid, pack_id))
        if progress:
            progress(nbytes, total)
    if no_toc:  # a salvaged table of contents says nothing of chunks the index does not know
        cleared = {e for e in cleared if e.pack not in no_toc}
    damaged = {
        cid for cid, _ in bad_copies
    } - present  # a chunk stored twice is fine if one copy is good
    bad_manifests: list[str] = []
    hurt: list[str] = []
    missing: set[bytes] = set()
    named: set[bytes] = set()
    manifests = 0
    for sid in store.snapshots():
        manifests += 1
        try:
            m = store.manifest(sid)
        except KilnError:
            bad_manifests.append(sid)
            hurt.append(sid)
            continue
        ids = m.chunk_ids()
        named |= ids
        gone = ids - present - damaged
        missing |= gone
        broken = bool(gone or ids & damaged)
        dk = data_keys.get(m.key_id) if m.key_id else None
        if dk is not None and not broken:
            for cid in ids:
                try:
                    store.read_chunk(cid, dk)
                except KilnError:
                    damaged.add(cid)
                    loc = store.index.get(cid)
                    if loc is not None:
                        bad_copies.add((cid, loc.pack))
                    broken = True
            sealed_only = max(0, sealed_only - len(ids))
        if broken:
            hurt.append(sid)
    quarantined = _record(
        store, entries, bad_copies, missing, cleared, existing, present - damaged, named
    )
    hurt_in: dict[str, set[bytes]] = defaultdict(set)
    for cid, pack_id in bad_copies:
        hurt_in[pack_id].add(cid)
    superseded = sorted(
        p for p in damaged_packs if p not in no_toc and hurt_in.get(p) and not hurt_in[p] & damaged
    )
    damaged_packs = sorted(set(damaged_packs) - set(superseded))
    report = VerifyReport(
        ok=not (damaged or missing or bad_manifests or damaged_packs),
        packs_checked=len(objects),
        chunks_checked=nchunks,
        bytes_checked=nbytes,
        manifests_checked=manifests,
        damaged_packs=damaged_packs,
        damaged_chunks=sorted(c.hex() for c in damaged),
        missing_chunks=sorted(c.hex() for c in missing),
        damaged_manifests=bad_manifests,
        damaged_snapshots=sorted(hurt),
        unverified_encrypted=sealed_only,
        superseded_packs=superseded,
        quarantined=quarantined,
    )
    log.info("verify: %s", report)
    return report


def _record(
    store: SnapshotStore,
    entries: frozenset[quarantine.Entry],
    bad_copies: set[tuple[bytes, str]],
    missing: set[bytes],
    cleared: set[quarantine.Entry],
    existing: set[str],
    good: set[bytes],
    named: set[bytes],
) -> int:
    """Bring the quarantine in line with what verify found: record every bad copy and missing
    chunk first, then remove the entries verify contradicts (the copy is intact, its pack is
    gone, the chunk is stored again or nothing names it). Entries another process adds
    meanwhile are kept. Returns how many entries there are now."""
    found = {quarantine.Entry(cid, pack) for cid, pack in bad_copies}
    found |= {quarantine.Entry(cid, None) for cid in missing}
    for e in found - entries:
        quarantine.record(store.backend, e, "verify")
    now = set(entries | found)
    for e in entries - found:
        if (
            e in cleared
            or (e.pack is not None and e.pack not in existing)
            or (e.pack is None and (e.chunk in good or e.chunk not in named))
        ):
            quarantine.remove(store.backend, e)
            now.discard(e)
    store.index.refresh()  # this process now resolves around the bad copies too
    return len(now)


def gc(
    store: SnapshotStore, grace_seconds: float = GRACE_SECONDS, progress: Progress | None = None
) -> GcReport:
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
    used: dict[str, list[tuple[bytes, int, int]]] = defaultdict(
        list
    )  # pack -> live chunks it serves
    for cid in live:
        loc = store.index.get(cid)
        if loc is not None:
            used[loc.pack].append((cid, loc.offset, loc.length))
    # quarantined copies are never in ``used`` (the index skips them). A pack holding a bad
    # copy is repacked without it, unless it is the last copy of a live chunk (below)
    entries = store.index.quarantine()
    tainted = {e.pack for e in entries if e.pack is not None}
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
        except (KilnError, ObjectMissing):
            continue  # damaged packs are verify's business; never delete what cannot be read
        if any(cid in live and store.index.pack_of(cid) is None for cid, _, _ in toc):
            kept += len(toc)  # the last copy of a live chunk, even a quarantined one: never swept
            continue
        live_ids = {cid for cid, _, _ in live_here}
        dead_bytes = sum(ln for cid, _, ln in toc if cid not in live_ids)
        if not live_here:
            doomed.add(pack_id)
            chunks_deleted += len(toc)
        elif dead_bytes > REPACK_DEAD_FRACTION * size or pack_id in tainted:
            # dead *chunks*, not the table of contents: a pack whose every chunk is live would
            # be rewritten byte for byte, under its own name, and then deleted as the old one
            for cid, off, ln in live_here:
                blob = store.backend.get_range(packs.pack_name(pack_id), off, ln)
                if not chunks.check_object(blob):
                    store.note_damaged(cid, pack_id, blob, "gc")
                    raise KilnError(
                        errors.StoreCorrupt, f"chunk {cid.hex()} is damaged; run verify"
                    )
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
        everything = {
            p: [(c, o, n) for c, o, n in _toc_of(store, p)]
            for p in store.index.packs()
            if p not in doomed
        }
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
    _prune_quarantine(store, entries, set(sizes) - doomed, live)
    removed = store.backend.clean_tmp(TMP_MAX_AGE)  # a live writer's temp file is seconds old
    report = GcReport(
        max(len(doomed) - repacked, 0),
        repacked,
        chunks_deleted,
        max(freed, 0),
        kept,
        len(snaps),
        removed,
    )
    log.info("gc: %s", report)
    return report


def _prune_quarantine(
    store: SnapshotStore,
    entries: frozenset[quarantine.Entry],
    remaining: set[str],
    live: set[bytes],
) -> None:
    """After the sweep: drop the entries of packs that are gone (a live chunk left with no copy
    at all is recorded as missing first) and ``missing`` entries of chunks nothing names."""
    for e in entries:
        if e.pack is not None and e.pack not in remaining:
            if e.chunk in live and store.index.pack_of(e.chunk) is None:
                quarantine.record(store.backend, quarantine.Entry(e.chunk, None), "gc")
            quarantine.remove(store.backend, e)
        elif e.pack is None and e.chunk not in live:
            quarantine.remove(store.backend, e)


def _toc_of(store: SnapshotStore, pack_id: str) -> list[tuple[bytes, int, int]]:
    try:
        return packs.read_toc(store.backend, pack_id)
    except (KilnError, ObjectMissing):
        return []
