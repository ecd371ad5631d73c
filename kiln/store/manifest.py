"""Snapshot manifests: which chunk holds each byte range of a disk.

Object ``manifests/<snapshot-id>`` (see docs/storage-format.md#manifests)::

    "KLM1" | zstd( header JSON | "\\n" | entry table ) | BLAKE3-128(everything before)

The entry table is ``count`` records of 44 bytes, sorted by offset, non-overlapping:
little-endian u64 offset, u32 length, 32-byte chunk id. Ranges not covered read as zeros.
"""

from __future__ import annotations

import json
import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import blake3
import zstandard

from kiln import errors
from kiln.errors import KilnError

MAGIC = b"KLM1"
FORMAT_VERSION = 1
_REC = struct.Struct("<QI32s")


@dataclass(frozen=True, slots=True)
class Entry:
    offset: int
    length: int
    chunk_id: bytes


@dataclass(slots=True)
class Manifest:
    snapshot_id: str
    virtual_size: int
    parent: str | None = None
    key_id: str | None = None
    chunker: dict[str, object] = field(default_factory=dict)
    created: str = ""
    offsets: array[int] = field(default_factory=lambda: array("Q"))
    lengths: array[int] = field(default_factory=lambda: array("I"))
    ids: bytearray = field(default_factory=bytearray)

    def add(self, offset: int, length: int, cid: bytes) -> None:
        self.offsets.append(offset)
        self.lengths.append(length)
        self.ids += cid

    def __len__(self) -> int:
        return len(self.offsets)

    def entry(self, i: int) -> Entry:
        return Entry(self.offsets[i], self.lengths[i], bytes(self.ids[32 * i : 32 * i + 32]))

    def entries(self) -> Iterator[Entry]:
        for i in range(len(self.offsets)):
            yield self.entry(i)

    def chunk_ids(self) -> set[bytes]:
        ids = self.ids
        return {bytes(ids[i : i + 32]) for i in range(0, len(ids), 32)}

    @property
    def data_bytes(self) -> int:
        return sum(self.lengths)

    def sort(self) -> None:
        order = sorted(range(len(self.offsets)), key=self.offsets.__getitem__)
        if order == list(range(len(order))):
            return
        offsets, lengths, ids = array("Q"), array("I"), bytearray()
        for i in order:
            offsets.append(self.offsets[i])
            lengths.append(self.lengths[i])
            ids += self.ids[32 * i : 32 * i + 32]
        self.offsets, self.lengths, self.ids = offsets, lengths, ids

    def check(self) -> None:
        """Raise KilnError(StoreCorrupt) unless entries are sorted, disjoint and inside the disk."""
        end = 0
        for off, ln in zip(self.offsets, self.lengths, strict=True):
            if off < end or ln <= 0 or off + ln > self.virtual_size:
                raise KilnError(
                    errors.StoreCorrupt, f"manifest of {self.snapshot_id} is inconsistent"
                )
            end = off + ln

    def encode(self) -> bytes:
        header = {
            "version": FORMAT_VERSION,
            "snapshot_id": self.snapshot_id,
            "virtual_size": self.virtual_size,
            "parent": self.parent,
            "key_id": self.key_id,
            "chunker": self.chunker,
            "created": self.created,
            "count": len(self),
        }
        body = bytearray(json.dumps(header, sort_keys=True).encode() + b"\n")
        for i in range(len(self)):
            body += _REC.pack(self.offsets[i], self.lengths[i], self.ids[32 * i : 32 * i + 32])
        packed = MAGIC + zstandard.ZstdCompressor(level=3).compress(bytes(body))
        return packed + blake3.blake3(packed).digest(16)

    @classmethod
    def decode(cls, blob: bytes, name: str = "?") -> Manifest:
        bad = KilnError(errors.StoreCorrupt, f"manifest {name} is damaged")
        if len(blob) < 20 or blob[:4] != MAGIC:
            raise bad
        if blake3.blake3(memoryview(blob)[:-16]).digest(16) != blob[-16:]:
            raise bad
        try:
            body = zstandard.ZstdDecompressor().decompress(memoryview(blob)[4:-16])
            nl = body.index(b"\n")
            header = json.loads(body[:nl])
        except (zstandard.ZstdError, ValueError) as e:
            raise bad from e
        if header.get("version") != FORMAT_VERSION:
            raise KilnError(
                errors.StoreCorrupt, f"manifest {name}: unknown version {header.get('version')}"
            )
        m = cls(
            snapshot_id=header["snapshot_id"],
            virtual_size=header["virtual_size"],
            parent=header.get("parent"),
            key_id=header.get("key_id"),
            chunker=header.get("chunker") or {},
            created=header.get("created", ""),
        )
        table = memoryview(body)[nl + 1 :]
        if len(table) != header["count"] * _REC.size:
            raise bad
        for off, ln, cid in _REC.iter_unpack(table):
            m.add(off, ln, cid)
        m.check()
        return m


def timestamp() -> str:
    """Now, as a manifest's ``created`` (UTC, microseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def manifest_name(snapshot_id: str) -> str:
    return f"manifests/{snapshot_id}"
