"""verify (re-hash everything) and gc (mark and sweep from live manifests).

GC safety beside concurrent imports (docs/storage-format.md#gc): a chunk is swept only if no
live manifest names it AND its mtime is older than both the GC's start and the oldest running
import's lease, minus a grace period. Imports touch every chunk they reuse, and check again
before committing that reused chunks still exist.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kiln.errors import Ec2Error
from kiln.store import chunks
from kiln.store.backend import ObjectMissing
from kiln.store.crypto import KeyEncryptionKey
from kiln.store.manifest import Manifest
from kiln.store.store import SnapshotStore

log = logging.getLogger(__name__)

GRACE_SECONDS = 600.0
TMP_MAX_AGE = 3600.0  # temp files older than this are a crashed writer's
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    chunks_checked: int
    bytes_checked: int
    manifests_checked: int
    damaged_chunks: list[str] = field(default_factory=list)
    missing_chunks: list[str] = field(default_factory=list)
    damaged_manifests: list[str] = field(default_factory=list)
    damaged_snapshots: list[str] = field(default_factory=list)
    unverified_encrypted: int = 0  # chunks checked by trailer only (no key given)


@dataclass(frozen=True, slots=True)
class GcReport:
    chunks_deleted: int
    bytes_freed: int
    chunks_kept: int
    live_snapshots: int
    temp_files_removed: int


def _cid(name: str) -> bytes:
    return bytes.fromhex(name.rsplit("/", 1)[1])


def verify(store: SnapshotStore, keys: list[KeyEncryptionKey] | None = None,
           progress: Progress | None = None) -> VerifyReport:
    """Re-hash every chunk and check every manifest; report what is damaged and what it hurts."""
    data_keys = {k.key_id: store.data_key(k, create=False) for k in keys or []}
    damaged: set[bytes] = set()
    checked = nbytes = sealed_only = 0
    objects = list(store.backend.list("chunks/"))
    total = sum(o.size for o in objects)
    present: set[bytes] = set()
    for o in objects:
        cid = _cid(o.name)
        present.add(cid)
        try:
            blob = store.backend.get(o.name)
        except ObjectMissing:
            continue
        checked += 1
        nbytes += len(blob)
        if not chunks.check_object(blob):
            damaged.add(cid)
        elif blob[4] & chunks.F_SEALED:
            sealed_only += 1  # integrity by trailer; content checked below with the key if given
        else:
            try:
                chunks.decode(cid, blob, None)
            except Ec2Error:
                damaged.add(cid)
        if progress:
            progress(nbytes, total)
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
        gone = ids - present
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
        ok=not (damaged or missing or bad_manifests),
        chunks_checked=checked, bytes_checked=nbytes, manifests_checked=manifests,
        damaged_chunks=sorted(c.hex() for c in damaged), missing_chunks=sorted(c.hex() for c in missing),
        damaged_manifests=bad_manifests, damaged_snapshots=sorted(hurt), unverified_encrypted=sealed_only,
    )
    log.info("verify: %s", report)
    return report


def gc(store: SnapshotStore, grace_seconds: float = GRACE_SECONDS, progress: Progress | None = None) -> GcReport:
    started = time.time()
    leases = store.leases()
    cutoff = min([started, *leases]) - grace_seconds
    live: set[bytes] = set()
    snaps = store.snapshots()
    for sid in snaps:
        m: Manifest = store.manifest(sid)  # a damaged manifest stops GC: never sweep blind
        live |= m.chunk_ids()
    deleted = freed = kept = 0
    objects = list(store.backend.list("chunks/"))
    for i, o in enumerate(objects):
        cid = _cid(o.name)
        if cid in live or o.mtime >= cutoff:
            kept += 1
        else:
            store.backend.delete(o.name)
            deleted += 1
            freed += o.size
        if progress:
            progress(i + 1, len(objects))
    tmp = getattr(store.backend, "clean_tmp", None)
    removed = tmp(TMP_MAX_AGE) if callable(tmp) else 0  # a live writer's temp file is seconds old
    report = GcReport(deleted, freed, kept, len(snaps), removed)
    log.info("gc: %s", report)
    return report
