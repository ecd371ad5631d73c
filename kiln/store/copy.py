"""Copy a snapshot between stores (regions), sending only chunks the destination lacks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from kiln import errors
from kiln.errors import KilnError
from kiln.store import chunks
from kiln.store.crypto import DataKey, KeyEncryptionKey
from kiln.store.manifest import Manifest, timestamp
from kiln.store.packs import ReuseGuard
from kiln.store.store import SnapshotStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CopyResult:
    snapshot_id: str
    chunks_total: int
    chunks_sent: int
    bytes_sent: int


def copy_snapshot(
    src: SnapshotStore,
    dst: SnapshotStore,
    snapshot_id: str,
    new_snapshot_id: str,
    src_key: KeyEncryptionKey | None = None,
    dst_key: KeyEncryptionKey | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CopyResult:
    """Chunk objects are copied as stored when source and destination share the data key (or
    neither is encrypted); otherwise each chunk is decrypted, hashed under the destination key
    and sealed again. The destination manifest is committed last (write order)."""
    m = src.manifest(snapshot_id)
    if dst.has(new_snapshot_id):
        raise KilnError(errors.InvalidParameterValue, f"snapshot {new_snapshot_id} already exists")
    sdk = src.key_for(m, src_key)
    if dst_key is not None and m.key_id == dst_key.key_id:
        dst.adopt_data_key(src, dst_key.key_id)
    ddk = dst.data_key(dst_key)
    same = _same_key(sdk, ddk)
    out = Manifest(
        new_snapshot_id,
        m.virtual_size,
        parent=None,
        key_id=dst_key.key_id if dst_key else None,
        chunker=m.chunker,
        created=timestamp(),
    )
    src.index.refresh()
    dst.index.refresh()
    new_packs: dict[str, list[tuple[bytes, int, int]]] = {}
    packer = dst.packer(new_packs)
    mapping: dict[bytes, bytes] = {}
    sent = 0
    guard = ReuseGuard(dst.backend)
    total = len(m)
    lease = dst.take_lease(new_snapshot_id)
    try:
        for i, e in enumerate(m.entries()):
            new_id = mapping.get(e.chunk_id)
            if new_id is None:
                if same:
                    new_id = e.chunk_id
                    blob = None
                else:
                    data = src.read_chunk(e.chunk_id, sdk)
                    new_id = chunks.chunk_id(data, ddk)
                pack = dst.index.pack_of(new_id)
                if pack is None or not guard.usable(pack):
                    if same:  # a quarantined copy in ``dst`` counts as absent (pack_of)
                        blob = src.read_intact_blob(e.chunk_id, "copy")
                    else:
                        blob = chunks.encode(new_id, data, ddk)
                    packer.add(new_id, blob)
                    sent += 1
                mapping[e.chunk_id] = new_id
            out.add(e.offset, e.length, new_id)
            if progress:
                progress(i + 1, total)
        packer.flush()
        dst.backend.sync()
        dst.index.write(new_packs)
        dst.commit(out)
        dst.release_quarantine(new_packs)  # after the manifest: docs/storage-format.md#quarantine
    finally:
        dst.release_lease(lease)
    log.info(
        "copied %s -> %s: %d/%d chunks sent, %d bytes",
        snapshot_id,
        new_snapshot_id,
        sent,
        len(mapping),
        packer.stored_bytes,
    )
    return CopyResult(new_snapshot_id, len(mapping), sent, packer.stored_bytes)


def _same_key(a: DataKey | None, b: DataKey | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.id_key == b.id_key and a.enc_key == b.enc_key
