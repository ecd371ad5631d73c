"""Copy a snapshot between stores (regions), sending only chunks the destination lacks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from kiln import errors
from kiln.errors import Ec2Error
from kiln.store import chunks
from kiln.store.backend import ObjectMissing
from kiln.store.crypto import DataKey, KeyEncryptionKey
from kiln.store.manifest import Manifest
from kiln.store.store import SnapshotStore, _now, key_object_name

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
    """Chunks are copied as stored when source and destination share the data key (or neither
    is encrypted); otherwise each is decrypted, re-hashed under the destination key and
    re-encrypted. The destination manifest is committed last."""
    m = src.manifest(snapshot_id)
    sdk = src._key_for(m, src_key)
    if dst_key is not None and m.key_id == dst_key.key_id and not dst.backend.exists(key_object_name(dst_key.key_id)):
        dst.backend.put(key_object_name(dst_key.key_id), src.backend.get(key_object_name(dst_key.key_id)))
    ddk = dst.data_key(dst_key)
    same = _same_key(sdk, ddk)
    out = Manifest(new_snapshot_id, m.virtual_size, parent=None, key_id=dst_key.key_id if dst_key else None,
                   chunker=m.chunker, created=_now())
    mapping: dict[bytes, bytes] = {}
    sent = nbytes = 0
    total = len(m)
    lease = dst._take_lease(new_snapshot_id)
    try:
        for i, e in enumerate(m.entries()):
            new_id = mapping.get(e.chunk_id)
            if new_id is None:
                if same:
                    new_id = e.chunk_id
                    name = chunks.object_name(new_id)
                    if not dst.backend.touch(name):
                        try:
                            blob = src.backend.get(name)
                        except ObjectMissing:
                            raise Ec2Error(errors.StoreCorrupt, f"chunk {new_id.hex()} missing") from None
                        if not chunks.check_object(blob):
                            raise Ec2Error(errors.StoreCorrupt, f"chunk {new_id.hex()} is damaged")
                        dst.backend.put(name, blob)
                        sent += 1
                        nbytes += len(blob)
                else:
                    data = src.read_chunk(e.chunk_id, sdk)
                    new_id = chunks.chunk_id(data, ddk)
                    name = chunks.object_name(new_id)
                    if not dst.backend.touch(name):
                        blob = chunks.encode(new_id, data, ddk)
                        dst.backend.put(name, blob)
                        sent += 1
                        nbytes += len(blob)
                mapping[e.chunk_id] = new_id
            out.add(e.offset, e.length, new_id)
            if progress:
                progress(i + 1, total)
        dst.commit(out)
    finally:
        dst.backend.delete(lease)
    log.info("copied %s -> %s: %d/%d chunks sent, %d bytes", snapshot_id, new_snapshot_id, sent, total, nbytes)
    return CopyResult(new_snapshot_id, len(mapping), sent, nbytes)


def _same_key(a: DataKey | None, b: DataKey | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.id_key == b.id_key and a.enc_key == b.enc_key
