"""``verify --repair``: rewrite what intact sources allow; name what they do not.

After a verify (which quarantines every bad copy, so the index already resolves each chunk to an
intact copy if this store holds one):
1. chunks with no intact copy here are copied, as stored, from another store (another region)
   that holds an intact copy under the same id: same id means same plaintext, and for a sealed
   chunk the same id key, so the same data key;
2. each damaged pack whose bad copies are now all superseded (or of chunks nothing names) has
   its intact chunks copied into new packs and is deleted, GC's order: new packs durable → one
   index object for every pack that remains → older index objects deleted → the pack deleted →
   its quarantine entries deleted;
3. every live chunk still without an intact copy is reported with the snapshots it breaks.
See docs/storage-format.md#repair.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from kiln.errors import KilnError
from kiln.store import chunks, packs, quarantine
from kiln.store.backend import ObjectMissing
from kiln.store.crypto import KeyEncryptionKey
from kiln.store.maintenance import VerifyReport, verify
from kiln.store.packs import PackWriter
from kiln.store.store import SnapshotStore

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
Toc = list[tuple[bytes, int, int]]


@dataclass(frozen=True, slots=True)
class Copied:
    chunk: str
    source: str  # the store (region) the intact copy came from


@dataclass(frozen=True, slots=True)
class Unrepairable:
    chunk: str
    snapshots: list[str]  # the snapshots it breaks


@dataclass(frozen=True, slots=True)
class RepairReport:
    ok: bool  # the store verifies clean afterwards
    before: VerifyReport
    after: VerifyReport
    repointed: list[str] = field(
        default_factory=list
    )  # read from another intact copy in this store
    copied: list[Copied] = field(default_factory=list)
    packs_rewritten: list[str] = field(
        default_factory=list
    )  # intact chunks moved out, pack deleted
    unrepairable: list[Unrepairable] = field(default_factory=list)
    damaged_manifests: list[str] = field(default_factory=list)  # never repaired: named only


def repair(
    store: SnapshotStore,
    keys: list[KeyEncryptionKey] | None = None,
    sources: Sequence[tuple[str, SnapshotStore]] = (),
    progress: Progress | None = None,
) -> RepairReport:
    """Verify, repair from ``sources`` (name, store) and this store's own intact copies, then
    verify again."""
    before = verify(store, keys, progress)
    if before.ok and not before.superseded_packs:
        return RepairReport(True, before, before)
    lease = store.take_lease("repair")  # GC spares the packs written from now on
    try:
        old_indexes = [o.name for o in store.backend.list("index/")]
        store.index.refresh()
        named: dict[bytes, list[str]] = {}  # live chunk -> snapshots naming it
        for sid in store.snapshots():
            if sid in before.damaged_manifests:
                continue
            for cid in store.manifest(sid).chunk_ids():
                named.setdefault(cid, []).append(sid)
        need = {
            bytes.fromhex(c) for c in before.damaged_chunks + before.missing_chunks
        } & named.keys()
        repointed = sorted(
            {
                e.chunk.hex()
                for e in store.index.quarantine()
                if e.pack is not None and store.index.pack_of(e.chunk) is not None
            }
        )
        new_packs: dict[str, Toc] = {}
        packer = store.packer(new_packs)
        copied = _copy_from(sources, need, packer)
        packer.flush()  # the copies join the index: the packs they heal may be rewritten below
        rewritten = [
            p
            for p in sorted(set(before.damaged_packs) | set(before.superseded_packs))
            if _salvage(store, p, named.keys(), packer)
        ]
        packer.flush()
        store.backend.sync()
        if rewritten:
            gone = set(rewritten)
            everything = {
                p: _covering(store, p)
                for p in store.index.packs()
                if p not in gone and store.backend.exists(packs.pack_name(p))
            }
            store.index.write(everything)
            store.backend.sync()
            for name in old_indexes:
                store.backend.delete(name)
            for p in rewritten:
                store.backend.delete(packs.pack_name(p))
            store.index.forget_packs(gone)
            for e in store.index.quarantine():
                if e.pack in gone:
                    quarantine.remove(store.backend, e)
        else:
            store.index.write(new_packs)
            store.backend.sync()
        store.release_quarantine(new_packs)
    finally:
        store.release_lease(lease)
    after = verify(store, keys, progress) if copied or rewritten else before
    fixed = {bytes.fromhex(c.chunk) for c in copied}
    lost = [Unrepairable(c.hex(), sorted(named[c])) for c in sorted(need - fixed)]
    report = RepairReport(
        after.ok, before, after, repointed, copied, rewritten, lost, list(after.damaged_manifests)
    )
    log.info("repair: %s", report)
    return report


def _copy_from(
    sources: Sequence[tuple[str, SnapshotStore]], need: set[bytes], packer: PackWriter
) -> list[Copied]:
    """Copy each chunk of ``need`` that some source holds intact, as it is stored there."""
    out: list[Copied] = []
    left = set(need)
    for name, src in sources:
        if not left:
            break
        src.index.refresh()
        for cid in sorted(left):
            if src.index.pack_of(cid) is None:
                continue
            try:
                blob = src.read_intact_blob(cid, "repair")
            except KilnError:
                continue
            if not chunks.intact(cid, blob):
                continue
            packer.add(cid, blob)
            out.append(Copied(cid.hex(), name))
            left.discard(cid)
    return out


def _covering(store: SnapshotStore, pack_id: str) -> Toc:
    """The pack's table of contents, or what the index knows of it when that is lost."""
    try:
        return packs.read_toc(store.backend, pack_id)
    except (KilnError, ObjectMissing):
        return store.index.chunks_in(pack_id)


def _salvage(
    store: SnapshotStore, pack_id: str, live: AbstractSet[bytes], packer: PackWriter
) -> bool:
    """Copy the intact chunks of a damaged pack into ``packer``, if the pack can then go: every
    live chunk it holds a bad copy of has an intact copy elsewhere (and, when its table of
    contents is lost, every live chunk of the store has a copy somewhere). Else leave it."""
    bad = {e.chunk for e in store.index.quarantine() if e.pack == pack_id}
    if any(c in live and store.index.pack_of(c) is None for c in bad):
        return False  # its bad copy is the only one: keep it, quarantined
    try:
        toc = packs.read_toc(store.backend, pack_id)
    except (KilnError, ObjectMissing):
        toc = store.index.chunks_in(pack_id)
        if any(store.index.pack_of(c) is None for c in live):
            return False  # it may hold the only copy of a chunk nobody can locate
    try:
        data = store.backend.get(packs.pack_name(pack_id))
    except ObjectMissing:
        return False
    for cid, off, ln in toc:
        blob = data[off : off + ln]
        if cid not in bad and chunks.intact(cid, blob):
            packer.add(cid, blob)
    return True
