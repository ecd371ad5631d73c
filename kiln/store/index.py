"""The chunk index: which pack holds each chunk.

The truth is the packs' own tables of contents; ``index/<id>`` objects are a cache of them that
imports write so opening a store reads a few objects instead of every pack. Loading lists
``index/`` and ``packs/`` once, then reads the table of contents of any pack no index covers
(e.g. packs of an import killed before it wrote its index). See docs/storage-format.md#index.

A copy the quarantine names as bad is never resolved: a chunk whose only copies are bad is
absent, so imports store it again and readers read the good copy (docs/storage-format.md#quarantine).
"""

from __future__ import annotations

import json
import logging
import secrets
import struct
import threading

import zstandard

from kiln.errors import KilnError
from kiln.store.backend import Backend, ObjectMissing
from kiln.store.packs import Location, read_toc
from kiln.store.quarantine import Entry, bad_copies
from kiln.store.quarantine import load as load_quarantine

log = logging.getLogger(__name__)
_REC = struct.Struct("<32sII")


class ChunkIndex:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._packs: list[str] = []
        self._pack_no: dict[str, int] = {}
        self._where: dict[bytes, tuple[int, int, int]] = {}
        self._loaded_index: set[str] = set()
        self._covered: set[str] = set()  # packs whose table of contents is in ``_where``
        self._entries: frozenset[Entry] = frozenset()
        self._bad: dict[bytes, frozenset[str]] = {}  # chunk id -> packs holding a bad copy
        self._quarantined: frozenset[bytes] = frozenset()

    def __contains__(self, cid: bytes) -> bool:
        return cid in self._where

    def __len__(self) -> int:
        return len(self._where)

    def get(self, cid: bytes) -> Location | None:
        w = self._where.get(cid)
        if w is None:
            return None
        return Location(self._packs[w[0]], w[1], w[2])

    def pack_of(self, cid: bytes) -> str | None:
        """The pack holding ``cid`` (``get`` without building a Location: hot in imports)."""
        w = self._where.get(cid)
        return None if w is None else self._packs[w[0]]

    def packs(self) -> list[str]:
        return list(self._packs)

    def chunks_in(self, pack_id: str) -> list[tuple[bytes, int, int]]:
        """``(chunk id, offset, length)`` of every chunk this index resolves to ``pack_id``: a
        table of contents for a pack whose own is lost (slow: walks the whole index)."""
        no = self._pack_no.get(pack_id)
        if no is None:
            return []
        return [(cid, w[1], w[2]) for cid, w in list(self._where.items()) if w[0] == no]

    def quarantine(self) -> frozenset[Entry]:
        """The quarantine as of the last ``refresh``."""
        return self._entries

    def quarantined(self) -> frozenset[bytes]:
        """Ids of chunks with a quarantine entry (a bad copy somewhere, or missing)."""
        return self._quarantined

    def is_bad_copy(self, cid: bytes, pack_id: str) -> bool:
        return pack_id in self._bad.get(cid, ())

    def add_pack(self, pack_id: str, toc: list[tuple[bytes, int, int]]) -> None:
        with self._lock:
            no = self._number(pack_id)
            self._covered.add(pack_id)
            bad = self._bad
            for cid, off, ln in toc:
                if bad and pack_id in bad.get(cid, ()):
                    continue  # a quarantined copy: never resolved
                self._where.setdefault(cid, (no, off, ln))

    def _load_quarantine(self) -> None:
        """Load the quarantine. When it changed, the locations are built again in a fresh index
        and swapped in at once: a concurrent reader or GC never sees a chunk that has a good
        copy without a location, and pack numbers stay valid."""
        entries = load_quarantine(self.backend)
        if entries == self._entries:
            return
        fresh = ChunkIndex(self.backend)
        fresh._set_quarantine(entries)
        fresh._load_objects()
        with self._lock:
            bad = fresh._bad
            where: dict[bytes, tuple[int, int, int]] = {}
            for cid, (no, off, ln) in fresh._where.items():
                where[cid] = (self._number(fresh._packs[no]), off, ln)
            for cid, w in self._where.items():  # packs this process added meanwhile
                if cid not in where and self._packs[w[0]] not in bad.get(cid, ()):
                    where[cid] = w
            self._set_quarantine(entries)
            self._where = where
            self._loaded_index |= fresh._loaded_index
            self._covered |= fresh._covered

    def _set_quarantine(self, entries: frozenset[Entry]) -> None:
        self._entries = entries
        self._bad = bad_copies(entries)
        self._quarantined = frozenset(e.chunk for e in entries)

    def _number(self, pack_id: str) -> int:
        no = self._pack_no.get(pack_id)
        if no is None:
            no = self._pack_no[pack_id] = len(self._packs)
            self._packs.append(pack_id)
        return no

    def refresh(self) -> None:
        """Load the quarantine, then index objects and packs this process has not seen yet."""
        self._load_quarantine()
        self._load_objects()

    def _load_objects(self) -> None:
        for o in self.backend.list("index/"):
            if o.name in self._loaded_index:
                continue
            try:
                for pack_id, toc in decode_index(self.backend.get(o.name)):
                    self.add_pack(pack_id, toc)
            except (ObjectMissing, ValueError, zstandard.ZstdError):
                continue  # a damaged or vanished index is only a cache: the packs are read below
            self._loaded_index.add(o.name)
        for o in self.backend.list("packs/"):
            pack_id = o.name.rsplit("/", 1)[1]
            if pack_id in self._covered:
                continue
            try:
                self.add_pack(pack_id, read_toc(self.backend, pack_id))
            except (KilnError, ObjectMissing):
                log.warning("pack %s has no readable table of contents; skipped", pack_id)

    def forget_packs(self, pack_ids: set[str]) -> None:
        with self._lock:
            gone = {self._pack_no[p] for p in pack_ids if p in self._pack_no}
            self._where = {c: w for c, w in self._where.items() if w[0] not in gone}

    def write(self, packs: dict[str, list[tuple[bytes, int, int]]]) -> str | None:
        """Store an index object covering ``packs``; returns its name."""
        if not packs:
            return None
        name = f"index/{secrets.token_hex(16)}"
        self.backend.put(name, encode_index(packs))
        self._loaded_index.add(name)
        return name


def encode_index(packs: dict[str, list[tuple[bytes, int, int]]]) -> bytes:
    body = bytearray(json.dumps({"version": 1, "packs": len(packs)}).encode() + b"\n")
    for pack_id, toc in packs.items():
        body += bytes.fromhex(pack_id) + struct.pack("<I", len(toc))
        for cid, off, ln in toc:
            body += _REC.pack(cid, off, ln)
    return zstandard.ZstdCompressor(level=3).compress(bytes(body))


def decode_index(blob: bytes) -> list[tuple[str, list[tuple[bytes, int, int]]]]:
    body = zstandard.ZstdDecompressor().decompress(blob)
    nl = body.index(b"\n")
    header = json.loads(body[:nl])
    if header.get("version") != 1:
        raise ValueError("unknown index version")
    pos = nl + 1
    out = []
    for _ in range(header["packs"]):
        pack_id = body[pos : pos + 32].hex()
        (n,) = struct.unpack_from("<I", body, pos + 32)
        pos += 36
        toc = [_REC.unpack_from(body, pos + i * _REC.size) for i in range(n)]
        pos += n * _REC.size
        out.append((pack_id, toc))
    return out
