"""SnapshotStore: snapshots of disks as manifests over deduplicated chunks, on one backend."""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from pathlib import Path

import blake3

from kiln import errors
from kiln.disks import DiskInfo, convert_raw, data_extents, open_raw_source
from kiln.errors import KilnError
from kiln.store import chunks, compose, importer, quarantine, spans, workers
from kiln.store.backend import Backend, ObjectMissing
from kiln.store.backends import open_backend
from kiln.store.chunker import DEFAULT_CHUNKER, Chunker, ChunkerConfig
from kiln.store.crypto import DataKey, KeyEncryptionKey, unwrap_data_key, wrap_data_key
from kiln.store.importer import ImportResult, Progress
from kiln.store.index import ChunkIndex
from kiln.store.manifest import Manifest, manifest_name, timestamp
from kiln.store.packs import PackWriter, pack_name
from kiln.store.reader import SnapshotReader
from kiln.store.restore import write_raw
from kiln.types import Extent

log = logging.getLogger(__name__)

STORE_VERSION = 1
LEASE_STALE = 3600.0
PROCESS_MIN_BYTES = 64 * 1024 * 1024  # smaller work is not worth starting worker processes


def open_store(url: str, chunker: ChunkerConfig | None = None) -> SnapshotStore:
    """The store at ``url`` (``file:///abs/path`` or ``memory://name``, see
    kiln/store/backends.py), created if missing with ``chunker`` (default FastCDC 32 KiB).
    Raises ValueError for a URL no backend takes."""
    opened = open_backend(url)
    return SnapshotStore(opened.backend, scratch=opened.scratch, chunker=chunker)


class SnapshotStore:
    """One region's store. Thread-safe for concurrent imports of different snapshots."""

    def __init__(
        self,
        backend: Backend,
        scratch: Path,
        chunker: ChunkerConfig | None = None,
        processes: int | None = None,
    ) -> None:
        self.backend = backend
        # worker processes for large imports into a backend other processes share (None: one
        # per CPU; 1: none, threads only). Restores always use threads: processes did not make
        # them faster.
        self.processes = processes
        self.scratch = Path(scratch)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.config = self._load_config(chunker or DEFAULT_CHUNKER)
        self.chunker_config = ChunkerConfig.from_dict(self.config["chunker"])  # type: ignore[arg-type]  # JSON object
        self.index = ChunkIndex(backend)

    # --- config and keys -----------------------------------------------------------------
    def _load_config(self, chunker: ChunkerConfig) -> dict[str, object]:
        try:
            cfg: dict[str, object] = json.loads(self.backend.get("config"))
        except ObjectMissing:
            cfg = {
                "version": STORE_VERSION,
                "id": secrets.token_hex(16),
                "chunker": chunker.as_dict(),
            }
            self.backend.put("config", json.dumps(cfg, indent=2).encode())
            cfg = json.loads(self.backend.get("config"))  # another process may have won the race
        if cfg.get("version") != STORE_VERSION:
            raise KilnError(
                errors.StoreCorrupt, f"store format version {cfg.get('version')} is not supported"
            )
        return cfg

    def data_key(self, kek: KeyEncryptionKey | None, create: bool = True) -> DataKey | None:
        if kek is None:
            return None
        name = key_object_name(kek.key_id)
        try:
            blob = self.backend.get(name)
        except ObjectMissing:
            if not create:
                raise KilnError(
                    errors.DecryptionFailed, f"no data key for {kek.key_id} in this store"
                ) from None
            self.backend.put(name, wrap_data_key(kek, os.urandom(32)))
            blob = self.backend.get(name)
        return DataKey.from_secret(kek.key_id, unwrap_data_key(kek, blob))

    def key_for(self, m: Manifest, kek: KeyEncryptionKey | None) -> DataKey | None:
        """The data key that reads ``m`` (None if it is not encrypted). Raises
        KilnError(DecryptionFailed) unless ``kek`` is the manifest's key."""
        if m.key_id is None:
            return None
        if kek is None or kek.key_id != m.key_id:
            raise KilnError(
                errors.DecryptionFailed,
                f"snapshot {m.snapshot_id} is encrypted with key {m.key_id}",
            )
        return self.data_key(kek, create=False)

    def adopt_data_key(self, src: SnapshotStore, key_id: str) -> None:
        """Copy ``src``'s wrapped data key for ``key_id`` here, unless this store has one: the
        chunks sealed under it then travel as they are (docs/storage-format.md#encryption)."""
        name = key_object_name(key_id)
        if not self.backend.exists(name):
            self.backend.put(name, src.backend.get(name))

    # --- snapshots -----------------------------------------------------------------------
    def has(self, snapshot_id: str) -> bool:
        return self.backend.exists(manifest_name(snapshot_id))

    def manifest(self, snapshot_id: str) -> Manifest:
        try:
            blob = self.backend.get(manifest_name(snapshot_id))
        except ObjectMissing:
            raise KilnError(
                errors.InvalidSnapshotNotFound, f"The snapshot '{snapshot_id}' does not exist."
            ) from None
        return Manifest.decode(blob, snapshot_id)

    def manifest_bytes(self, snapshot_id: str) -> bytes:
        """The manifest object exactly as stored (what an image signature covers:
        docs/signing.md). :raises KilnError: InvalidSnapshot.NotFound if it is missing."""
        try:
            return self.backend.get(manifest_name(snapshot_id))
        except ObjectMissing:
            raise KilnError(
                errors.InvalidSnapshotNotFound, f"The snapshot '{snapshot_id}' does not exist."
            ) from None

    def snapshots(self) -> list[str]:
        return sorted(o.name.split("/", 1)[1] for o in self.backend.list("manifests/"))

    def delete(self, snapshot_id: str) -> None:
        self.backend.delete(manifest_name(snapshot_id))

    def commit(self, m: Manifest) -> None:
        """Write a manifest once every chunk it names is durable (docs/storage-format.md#write-order)."""
        m.sort()
        m.check()
        self.backend.sync()
        if not self.backend.put(manifest_name(m.snapshot_id), m.encode()):
            raise KilnError(
                errors.InvalidParameterValue, f"snapshot {m.snapshot_id} already exists"
            )
        self.backend.sync()

    # --- import --------------------------------------------------------------------------
    def import_disk(
        self,
        info: DiskInfo,
        snapshot_id: str,
        parent: str | None = None,
        changed: list[Extent] | None = None,
        key: KeyEncryptionKey | None = None,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Store the disk ``info`` describes as snapshot ``snapshot_id``. ``info`` comes from
        kiln.disks (``inspect_disk``, or ``raw_disk`` for a disk known to be raw): the caller
        decides how a file is read, the store never inspects one. With ``parent`` (and
        ``changed``, the ranges that differ from it) the import is incremental
        (docs/storage-format.md#incremental). The manifest is written last
        (docs/storage-format.md#write-order). Raises KilnError(InvalidParameterValue) if the
        snapshot exists."""
        t0 = time.monotonic()
        if self.has(snapshot_id):
            raise KilnError(errors.InvalidParameterValue, f"snapshot {snapshot_id} already exists")
        parent_m = self.manifest(parent) if parent else None
        if parent_m is not None and parent_m.key_id != (key.key_id if key else None):
            raise KilnError(
                errors.InvalidParameterCombination,
                f"parent snapshot {parent} is under another encryption key",
            )
        dk = self.data_key(key)
        self._check_space(info.actual_size)
        m = Manifest(
            snapshot_id,
            info.virtual_size,
            parent=parent,
            key_id=key.key_id if key else None,
            chunker=self.chunker_config.as_dict(),
            created=timestamp(),
        )
        lease = self.take_lease(snapshot_id)
        try:
            plan = spans.plan(data_extents(info), info.virtual_size, parent_m, changed)
            if parent_m is not None:
                for k in plan.reuse:
                    e = parent_m.entry(k)
                    m.add(e.offset, e.length, e.chunk_id)
            self.index.refresh()
            known = parent_m.chunk_ids() if parent_m is not None else set()
            if known and self.index.quarantined():
                # the parent's quarantined chunks are looked up like any other: absent unless a
                # good copy exists, so this import stores them again (docs/storage-format.md#quarantine)
                known -= self.index.quarantined()
                if parent_m is not None:
                    self._refuse_broken_reuse(parent_m, plan.reuse)
            new_packs: dict[str, list[tuple[bytes, int, int]]] = {}
            packer = self.packer(new_packs)
            writer = importer.BlockWriter(self.index, packer, dk, known)
            counter = compose.SourceCounter()
            with open_raw_source(info, self.scratch) as src:
                if plan.changed is not None and parent_m is not None:
                    reader = compose.composed_reader(
                        src.fd,
                        plan.changed,
                        parent_m,
                        lambda cid: self.read_chunk(cid, dk),
                        counter,
                    )
                else:
                    reader = compose.file_reader(src.fd, counter)
                reader = compose.with_heartbeat(reader, lambda: self.backend.touch(lease))
                chunker = Chunker(self.chunker_config)
                to_read = sum(e.length for e in plan.read)
                if (
                    plan.changed is None
                    and self.backend.capabilities.process_shared
                    and to_read >= PROCESS_MIN_BYTES
                    and self.processes != 1
                ):
                    with workers.pool(self.processes) as pool:
                        got = importer.read_spans_procs(
                            pool,
                            f"/proc/{os.getpid()}/fd/{src.fd}",
                            self.backend.url,
                            reader,
                            plan.read,
                            chunker,
                            dk,
                            self.index,
                            known,
                            m,
                            info.virtual_size,
                            progress,
                        )
                    new_packs.update(got.packs)
                    reused, proc_stored = got.reused, got.new_stored
                    counter.add(to_read)  # the workers read every span; ``reader`` only seams
                else:
                    importer.read_spans(
                        reader, plan.read, chunker, writer, m, info.virtual_size, progress
                    )
                    reused, proc_stored = writer.reused, 0
                packer.flush()
                lost = self._rewrite_lost(reader, m, reused, packer, dk)
            # distinct chunks this import stored (a chunk the workers stored twice over, or that
            # a seam left unreferenced, is counted once or not at all)
            new_chunks = len(m.chunk_ids() - known - reused) + lost
            read = counter.bytes
            new_stored = packer.stored_bytes + proc_stored
            self.index.write(new_packs)
            self.commit(m)  # syncs (every pack and the index durable), then puts the manifest
            self.release_quarantine(new_packs)
        finally:
            self.release_lease(lease)
        res = ImportResult(
            snapshot_id,
            info.virtual_size,
            m.data_bytes,
            read,
            len(m),
            new_chunks,
            new_stored,
            time.monotonic() - t0,
        )
        log.info(
            "imported %s: %d bytes virtual, %d read, %d new chunks, %d bytes stored in %.2fs",
            snapshot_id,
            res.virtual_size,
            read,
            new_chunks,
            new_stored,
            res.seconds,
        )
        return res

    def _refuse_broken_reuse(self, parent: Manifest, reuse: list[int]) -> None:
        """An incremental import takes the parent's entries outside the changed ranges as they
        are: refuse to name a chunk that has no intact copy (the new snapshot would be born
        broken, and its source may not hold those bytes to store them again)."""
        bad = self.index.quarantined()
        for k in reuse:
            cid = parent.entry(k).chunk_id
            if cid in bad and self.index.pack_of(cid) is None:
                raise KilnError(
                    errors.StoreCorrupt,
                    f"chunk {cid.hex()} of parent snapshot {parent.snapshot_id} is damaged, outside "
                    "the changed ranges; import the whole disk to store it again",
                )

    def release_quarantine(self, new_packs: dict[str, list[tuple[bytes, int, int]]]) -> None:
        """Once packs holding good copies are durable and indexed (and the manifest is put), the
        ``missing`` entries of those chunks are removed: the chunks leave the quarantine. Entries
        naming a bad copy stay while its pack exists, so no index ever resolves to it again
        (docs/storage-format.md#quarantine)."""
        missing = [e for e in self.index.quarantine() if e.pack is None]
        if not missing or not new_packs:
            return
        stored = {cid for toc in new_packs.values() for cid, _, _ in toc}
        for e in missing:
            if e.chunk in stored:
                quarantine.remove(self.backend, e)

    def note_damaged(
        self, cid: bytes, pack_id: str, blob: bytes | memoryview, found_by: str
    ) -> bool:
        """A read found the copy of ``cid`` in ``pack_id`` damaged: quarantine it if its trailer
        proves bit rot (never on a key problem) and reload the index. True if it was recorded,
        so another copy may now be found."""
        if chunks.check_object(bytes(blob)):
            return False
        quarantine.record(self.backend, quarantine.Entry(cid, pack_id), found_by)
        self.index.refresh()
        return True

    def packer(self, new_packs: dict[str, list[tuple[bytes, int, int]]]) -> PackWriter:
        """A pack writer whose packs join this store's index (and ``new_packs``)."""

        def on_pack(pack_id: str, toc: list[tuple[bytes, int, int]]) -> None:
            new_packs[pack_id] = toc
            self.index.add_pack(pack_id, toc)

        return PackWriter(self.backend, on_pack)

    def locate_fresh(self, cid: bytes) -> bool:
        """Whether ``cid`` is in a pack that still exists, reloading the index if a GC moved it."""
        loc = self.index.get(cid)
        if loc is not None and self.backend.exists(pack_name(loc.pack)):
            return True
        if loc is not None:
            self.index.forget_packs({loc.pack})
        self.index.refresh()
        loc = self.index.get(cid)
        return loc is not None and self.backend.exists(pack_name(loc.pack))

    def _missing(self, cids: set[bytes]) -> set[bytes]:
        """Those of ``cids`` whose pack is gone (one existence check per pack, not per chunk)."""
        by_pack: dict[str, list[bytes]] = {}
        lost: set[bytes] = set()
        for cid in cids:
            pack = self.index.pack_of(cid)
            if pack is None:
                lost.add(cid)
            else:
                by_pack.setdefault(pack, []).append(cid)
        gone = {p for p in by_pack if not self.backend.exists(pack_name(p))}
        for p in gone:
            lost.update(by_pack[p])
        if not lost:
            return lost
        return {cid for cid in lost if not self.locate_fresh(cid)}  # reloads the index once

    def _rewrite_lost(
        self,
        read: compose.Reader,
        m: Manifest,
        reused: set[bytes],
        packer: PackWriter,
        dk: DataKey | None,
    ) -> int:
        """Chunks this import found already stored may have been swept by a GC that raced it;
        write any that are gone again before the manifest names them (write order step 4)."""
        lost = self._missing(reused)
        rewritten = 0
        for e in m.entries():
            if e.chunk_id in lost:
                data = read(e.offset, e.length)
                packer.add(e.chunk_id, chunks.encode(e.chunk_id, data, dk))
                lost.discard(e.chunk_id)
                rewritten += 1
        packer.flush()
        return rewritten

    def _check_space(self, need: int) -> None:
        free = self.backend.free_bytes()
        if free is not None and free < min(need, 64 * 1024 * 1024):
            raise KilnError(
                errors.StoreFull, f"not enough free space in the store ({free} bytes free)"
            )

    def take_lease(self, tag: str) -> str:
        """Put a lease ``leases/<tag>.<rand>`` and return its name: until it is released, or
        not refreshed (``backend.touch``) for LEASE_STALE seconds, GC spares every pack
        written since (docs/storage-format.md#write-order). ``tag``: a snapshot id, ``repair``."""
        name = f"leases/{tag}.{secrets.token_hex(4)}"
        self.backend.put(name, json.dumps({"started": time.time(), "pid": os.getpid()}).encode())
        return name

    def release_lease(self, name: str) -> None:
        """Delete the lease ``take_lease`` returned (idempotent)."""
        self.backend.delete(name)

    def leases(self) -> list[float]:
        """Start times of running imports. A lease not refreshed for LEASE_STALE seconds is a
        killed import's: it is deleted and ignored (imports refresh theirs every minute)."""
        out = []
        now = time.time()
        for o in self.backend.list("leases/"):
            if now - o.mtime > LEASE_STALE:
                self.backend.delete(o.name)
                continue
            try:
                out.append(float(json.loads(self.backend.get(o.name))["started"]))
            except (ObjectMissing, ValueError, KeyError):
                continue
        return out

    # --- restore -------------------------------------------------------------------------
    def restore(
        self,
        snapshot_id: str,
        out: Path,
        fmt: str = "raw",
        key: KeyEncryptionKey | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Write the snapshot's disk to ``out`` (sparse). Nothing is left at ``out`` on failure."""
        m = self.manifest(snapshot_id)
        dk = self.key_for(m, key)
        self.index.refresh()
        out = Path(out)
        raw = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
        try:
            write_raw(self, m, dk, raw, progress)
            if fmt == "raw":
                os.replace(raw, out)
            else:
                convert_raw(raw, out, fmt)
        finally:
            raw.unlink(missing_ok=True)

    def reader(self, snapshot_id: str, key: KeyEncryptionKey | None = None) -> SnapshotReader:
        """Random access to the snapshot's disk: ``read(offset, length)`` reads only the chunks
        that cover the range (kiln/store/reader.py). Raises KilnError(InvalidSnapshot.NotFound)
        for an unknown snapshot, KilnError(DecryptionFailed) without its key."""
        m = self.manifest(snapshot_id)
        dk = self.key_for(m, key)
        self.index.refresh()
        return SnapshotReader(m, lambda cid: self.read_chunk(cid, dk))

    def read_blob(self, cid: bytes) -> bytes:
        """The stored chunk object for ``cid`` (not yet checked)."""
        return self._blob(cid)[1]

    def _blob(self, cid: bytes) -> tuple[str, bytes]:
        """(pack, stored chunk object) for ``cid`` (not yet checked)."""
        for attempt in (0, 1):
            loc = self.index.get(cid)
            if loc is None and attempt == 0:
                self.index.refresh()
                continue
            if loc is None:
                break
            try:
                blob = self.backend.get_range(pack_name(loc.pack), loc.offset, loc.length)
                if len(blob) == loc.length:
                    return loc.pack, blob
                raise KilnError(errors.StoreCorrupt, f"pack {loc.pack} is truncated")
            except ObjectMissing:  # repacked by a GC since the index was loaded
                self.index.forget_packs({loc.pack})
                self.index.refresh()
        if cid in self.index.quarantined():
            raise KilnError(
                errors.StoreCorrupt,
                f"chunk {cid.hex()} is damaged (quarantined: import a disk "
                "holding it again, or run kiln store verify --repair)",
            )
        raise KilnError(errors.StoreCorrupt, f"chunk {cid.hex()} is missing from the store")

    def read_intact_blob(self, cid: bytes, found_by: str) -> bytes:
        """The stored chunk object for ``cid``, its trailer checked (no key needed). A damaged
        copy is quarantined and another one read."""
        pack, blob = self._blob(cid)
        if not chunks.check_object(blob):
            self.note_damaged(cid, pack, blob, found_by)
            pack, blob = self._blob(cid)
            if not chunks.check_object(blob):
                raise KilnError(errors.StoreCorrupt, f"chunk {cid.hex()} is damaged")
        return blob

    def read_chunk(self, cid: bytes, dk: DataKey | None) -> bytes:
        """The chunk's plaintext, verified. A damaged copy is quarantined and another one read."""
        pack, blob = self._blob(cid)
        try:
            return chunks.decode(cid, blob, dk)
        except KilnError:
            if not self.note_damaged(cid, pack, blob, "read"):
                raise
        return chunks.decode(cid, self.read_blob(cid), dk)  # another copy, or an error


def key_object_name(key_id: str) -> str:
    return f"keys/{blake3.blake3(key_id.encode()).hexdigest()[:32]}"
