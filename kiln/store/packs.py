"""Pack objects: many chunk objects in one backend object, with a table of contents at the end.

Why packs (docs/storage-format.md#packs): creating a file costs ~250 µs on these hosts and a PUT
costs far more on S3, so one object per 32 KiB chunk would bound imports at ~0.15 GB/s. Packs of
~8 MiB make that cost vanish. Layout::

    blob_1 | … | blob_n | nonce[16] | toc | u32 n | u32 toc_len | "KLP1"
    toc = n × (chunk id[32] | offset u32 | length u32) | BLAKE3-128(toc entries)

Each blob is a chunk object (kiln/store/chunks.py) and checks itself. A pack is named by the
BLAKE3-256 of its bytes: ``packs/<h0h1>/<64 hex>``.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

import blake3

from kiln import errors
from kiln.errors import KilnError
from kiln.store.backend import Backend

MAGIC = b"KLP1"
PACK_TARGET = 8 * 1024 * 1024
NONCE = 16
_TOC = struct.Struct("<32sII")
_FOOT = struct.Struct("<II4s")


@dataclass(frozen=True, slots=True)
class Location:
    pack: str  # pack id, 64 hex
    offset: int
    length: int


def pack_name(pack_id: str) -> str:
    return f"packs/{pack_id[:2]}/{pack_id}"


def doomed_name(pack_id: str) -> str:
    """The marker a GC puts before it deletes a pack (docs/storage-format.md#gc)."""
    return f"doomed/{pack_id}"


class ReuseGuard:
    """Whether an import (or copy) may reuse chunks already stored in a pack, decided once per
    pack and thread-safely: touch the pack first (a GC then sees it as young), then check that
    no GC has marked it for deletion. A GC marks before it looks at mtimes again and deletes,
    so either it sees the touch and keeps the pack, or the import sees the marker and stores
    the chunk itself (docs/storage-format.md#gc)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._ok: dict[str, bool] = {}
        self._lock = threading.Lock()

    def usable(self, pack_id: str) -> bool:
        ok = self._ok.get(pack_id)
        if ok is None:
            with self._lock:
                ok = self._ok.get(pack_id)
                if ok is None:
                    ok = self.backend.touch(pack_name(pack_id)) and not self.backend.exists(
                        doomed_name(pack_id)
                    )
                    self._ok[pack_id] = ok
        return ok


def encode_pack(blobs: list[tuple[bytes, bytes]]) -> tuple[bytes, list[tuple[bytes, int, int]]]:
    """The pack bytes for ``[(chunk id, blob)]`` and its table of contents."""
    toc: list[tuple[bytes, int, int]] = []
    pos = 0
    for cid, blob in blobs:
        toc.append((cid, pos, len(blob)))
        pos += len(blob)
    table = b"".join(_TOC.pack(c, o, n) for c, o, n in toc)
    table += blake3.blake3(table).digest(16)
    # 16 random bytes before the table make every pack's name unique: two packs of the same
    # chunks (a repack, or an import storing again what a GC is deleting) must never share a
    # name, or deleting one deletes the other (docs/storage-format.md#packs)
    data = b"".join(
        [b for _, b in blobs] + [os.urandom(NONCE), table, _FOOT.pack(len(toc), len(table), MAGIC)]
    )
    return data, toc


def read_toc(backend: Backend, pack_id: str) -> list[tuple[bytes, int, int]]:
    """A pack's table of contents, read from its end (two ranged reads)."""
    name = pack_name(pack_id)
    foot = backend.get_range(name, -_FOOT.size, _FOOT.size)
    bad = KilnError(errors.StoreCorrupt, f"pack {pack_id} is damaged")
    if len(foot) != _FOOT.size:
        raise bad
    n, toc_len, magic = _FOOT.unpack(foot)
    if magic != MAGIC or toc_len != n * _TOC.size + 16:
        raise bad
    table = backend.get_range(name, -(_FOOT.size + toc_len), toc_len)
    if len(table) != toc_len or blake3.blake3(table[:-16]).digest(16) != table[-16:]:
        raise bad
    return [_TOC.unpack_from(table, i * _TOC.size) for i in range(n)]


class PackWriter:
    """Collects chunk blobs per thread and writes them as packs of ~PACK_TARGET bytes.
    ``on_pack(pack_id, toc)`` is called after each pack is stored."""

    def __init__(
        self, backend: Backend, on_pack: Callable[[str, list[tuple[bytes, int, int]]], None]
    ) -> None:
        self.backend = backend
        self.on_pack = on_pack
        self._local = threading.local()
        self._all: list[list[tuple[bytes, bytes]]] = []
        self._lock = threading.Lock()
        self.stored_bytes = 0
        self.packs_written = 0

    def _buf(self) -> list[tuple[bytes, bytes]]:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = []
            self._local.size = 0
            with self._lock:
                self._all.append(buf)
        return buf

    def add(self, cid: bytes, blob: bytes) -> None:
        buf = self._buf()
        buf.append((cid, blob))
        self._local.size += len(blob)
        if self._local.size >= PACK_TARGET:
            self._write(list(buf))
            buf.clear()
            self._local.size = 0

    def flush(self) -> None:
        """Write every partly filled pack (call once all adders are done)."""
        with self._lock:
            bufs = list(self._all)
        for buf in bufs:
            if buf:
                self._write(list(buf))
                buf.clear()

    def _write(self, blobs: list[tuple[bytes, bytes]]) -> None:
        pack = store_pack(self.backend, blobs)
        with self._lock:
            self.stored_bytes += pack.size
            self.packs_written += 1
        self.on_pack(pack.pack_id, pack.toc)


@dataclass(frozen=True, slots=True)
class StoredPack:
    pack_id: str
    toc: list[tuple[bytes, int, int]]
    size: int


def store_pack(backend: Backend, blobs: list[tuple[bytes, bytes]]) -> StoredPack:
    """Write ``[(chunk id, blob)]`` as one pack object, named by its hash."""
    data, toc = encode_pack(blobs)
    pack_id = blake3.blake3(data).hexdigest()
    backend.put(pack_name(pack_id), data)
    return StoredPack(pack_id, toc, len(data))
