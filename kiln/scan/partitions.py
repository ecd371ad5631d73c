"""The partition table of a disk: MBR (with its extended partitions) or GPT, read from the
first sectors only. A disk with neither is one filesystem from byte 0 (an unpartitioned image).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from kiln.scan.source import Disk

SECTOR = 512
GPT_PROTECTIVE = 0xEE
EXTENDED = frozenset({0x05, 0x0F, 0x85})
LINUX_GUIDS = frozenset(
    {
        uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4"),  # Linux filesystem data
        uuid.UUID("4f68bce3-e8cd-4db1-96e7-fbcaf984b709"),  # Linux x86-64 root
    }
)
MAX_LOGICAL = 64  # a guard against a looping extended-partition chain


class PartitionTableError(Exception):
    """The table is present but cannot be read (a bad GPT header, entries past the disk)."""


@dataclass(frozen=True, slots=True)
class Partition:
    """``number`` as Linux names it (sda1 is 1; 0 for a whole unpartitioned disk); ``kind`` is
    the MBR type byte as hex (``"83"``) or the GPT type GUID."""

    number: int
    start: int  # bytes
    length: int  # bytes
    kind: str
    scheme: str  # "mbr", "gpt" or "none"


def read_partitions(disk: Disk) -> list[Partition]:
    """The disk's partitions in table order. Raises PartitionTableError."""
    mbr = disk.read(0, SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        return [Partition(0, 0, disk.size, "", "none")]
    entries = [_mbr_entry(mbr, i) for i in range(4)]
    if any(kind == GPT_PROTECTIVE for kind, _, _ in entries):
        return _gpt(disk)
    parts: list[Partition] = []
    for n, (kind, lba, count) in enumerate(entries, start=1):
        if kind == 0 or count == 0:
            continue
        if kind in EXTENDED:
            parts.extend(_logical(disk, lba))
        else:
            parts.append(Partition(n, lba * SECTOR, count * SECTOR, f"{kind:02x}", "mbr"))
    if not parts and not any(kind for kind, _, _ in entries):
        # a boot sector signature but no table (a filesystem's own boot block): the whole disk
        return [Partition(0, 0, disk.size, "", "none")]
    return parts


def _mbr_entry(sector: bytes, i: int) -> tuple[int, int, int]:
    off = 446 + 16 * i
    kind = sector[off + 4]
    lba, count = struct.unpack_from("<II", sector, off + 8)
    return kind, lba, count


def _logical(disk: Disk, ext_lba: int) -> list[Partition]:
    parts: list[Partition] = []
    ebr_lba = ext_lba
    for n in range(5, 5 + MAX_LOGICAL):
        ebr = disk.read(ebr_lba * SECTOR, SECTOR)
        if len(ebr) < SECTOR or ebr[510:512] != b"\x55\xaa":
            break
        kind, rel, count = _mbr_entry(ebr, 0)
        if kind and count:
            parts.append(
                Partition(n, (ebr_lba + rel) * SECTOR, count * SECTOR, f"{kind:02x}", "mbr")
            )
        nkind, nrel, _ = _mbr_entry(ebr, 1)
        if nkind not in EXTENDED or nrel == 0:
            break
        ebr_lba = ext_lba + nrel
    return parts


def _gpt(disk: Disk) -> list[Partition]:
    header = disk.read(SECTOR, 92)
    if len(header) < 92 or header[:8] != b"EFI PART":
        raise PartitionTableError("protective MBR without a GPT header")
    entries_lba, count, size = struct.unpack_from("<QII", header, 72)
    if size < 128 or count > 1024 or (entries_lba + 1) * SECTOR > disk.size:
        raise PartitionTableError("GPT header names an impossible entry array")
    table = disk.read(entries_lba * SECTOR, count * size)
    parts: list[Partition] = []
    for i in range(count):
        raw = table[i * size : i * size + 128]
        if len(raw) < 128 or raw[:16] == bytes(16):
            continue
        kind = uuid.UUID(bytes_le=raw[:16])
        first, last = struct.unpack_from("<QQ", raw, 32)
        if last < first:
            continue
        parts.append(
            Partition(i + 1, first * SECTOR, (last - first + 1) * SECTOR, str(kind), "gpt")
        )
    return parts
