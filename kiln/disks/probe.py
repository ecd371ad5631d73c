"""Recognise a disk image by its own bytes, before any QEMU tool opens it.

qemu-img's format probing is never used: it calls any file "raw", and a file that merely *looks*
like a vmdk descriptor or a qcow2 with a backing file makes QEMU open other host files. Kiln reads
the magic numbers itself, refuses the dangerous and the unsupported here, and then always passes
``-f FORMAT`` to qemu-img.
"""

from __future__ import annotations

import logging
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from kiln import errors
from kiln.errors import KilnError

log = logging.getLogger(__name__)

SUPPORTED_IMPORT_FORMATS: tuple[str, ...] = ("raw", "qcow2", "vmdk", "vpc", "vhdx")
FORMAT_ALIASES = {"vhd": "vpc", "img": "raw"}

SECTOR = 512
_QCOW_MAGIC = b"QFI\xfb"
_QCOW2_INCOMPAT_DATA_FILE = 1 << 2

# magic at offset 0 -> qemu format name, for formats Kiln refuses to import.
_UNSUPPORTED_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"QED\x00", "qed"),
    (b"LUKS\xba\xbe", "luks"),
    (b"Bochs Virtual HD Image", "bochs"),
    (b"#!/bin/sh\n#V2.0 Format\n", "cloop"),
    (b"WithoutFreeSpace", "parallels"),
    (b"WithouFreSpacExt", "parallels"),
    (b"COWD", "vmdk3"),
)
_VDI_MAGIC_OFFSET = 0x40
_VDI_MAGIC = struct.pack("<I", 0xBEDA107F)


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What the first and last bytes of a file say it is."""

    format: str  # one of SUPPORTED_IMPORT_FORMATS ("raw" when nothing matched)
    size: int  # file size in bytes


def normalize_format(fmt: str) -> str:
    """``"VHD"`` -> ``"vpc"``; refuses a format Kiln cannot import."""
    name = FORMAT_ALIASES.get(fmt.strip().lower(), fmt.strip().lower())
    if name not in SUPPORTED_IMPORT_FORMATS:
        raise KilnError(
            errors.InvalidDiskImage,
            f"unsupported disk image format {fmt!r} "
            f"(supported: {', '.join(SUPPORTED_IMPORT_FORMATS)}, vhd)",
        )
    return name


def regular_file_size(path: Path) -> int:
    """The size of ``path``, which must exist and be a regular file (nothing of it is read)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KilnError(errors.InvalidParameterValue, f"disk image not found: {path}") from None
    except OSError as exc:
        raise KilnError(
            errors.InvalidParameterValue, f"cannot read disk image {path}: {exc.strerror}"
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise KilnError(errors.InvalidParameterValue, f"disk image is not a regular file: {path}")
    return st.st_size


def sniff(path: Path) -> Sniffed:
    """Identify ``path`` by magic bytes; raises KilnError for missing, unsafe or unsupported files."""
    regular_file_size(path)
    try:
        with path.open("rb") as f:
            head = f.read(4096)
            size = f.seek(0, 2)
            tail = b""
            if size >= SECTOR:
                f.seek(size - SECTOR)
                tail = f.read(SECTOR)
    except OSError as exc:
        raise KilnError(
            errors.InvalidParameterValue, f"cannot read disk image {path}: {exc.strerror}"
        ) from exc
    fmt = _format_of(path, head, tail, size)
    log.debug("sniffed %s: %s, %d bytes", path, fmt, size)
    return Sniffed(fmt, size)


def _format_of(path: Path, head: bytes, tail: bytes, size: int) -> str:
    if head.startswith(_QCOW_MAGIC):
        check_qcow2_header(path, head, size)
        return "qcow2"
    if head.startswith(b"KDMV"):
        # capacity 0 makes QEMU follow the embedded descriptor's extents, which can name any file
        if len(head) < 20 or struct.unpack("<Q", head[12:20])[0] == 0:
            raise KilnError(
                errors.UnsafeDiskImage,
                f"{path.name}: vmdk with an embedded descriptor refers to other files "
                "(its extents); refused because it would read another host file",
            )
        return "vmdk"
    if _is_vmdk_descriptor(head):
        raise KilnError(
            errors.UnsafeDiskImage,
            f"{path.name}: a vmdk descriptor file refers to other files (its extents); "
            "import a single-file vmdk (monolithicSparse or streamOptimized) instead",
        )
    if head.startswith(b"vhdxfile"):
        return "vhdx"
    if head.startswith(b"conectix") or tail.startswith(b"conectix"):
        return "vpc"
    for magic, name in _UNSUPPORTED_MAGICS:
        if head.startswith(magic):
            raise _unsupported(path, name)
    if head[_VDI_MAGIC_OFFSET : _VDI_MAGIC_OFFSET + 4] == _VDI_MAGIC:
        raise _unsupported(path, "vdi")
    if tail.startswith(b"koly"):
        raise _unsupported(path, "dmg")
    return "raw"


def check_qcow2_header(path: Path, head: bytes, file_size: int) -> None:
    """Refuse qcow v1, a backing file, an external data file, encryption, or tables past EOF."""
    if len(head) < 72:
        raise KilnError(errors.InvalidDiskImage, f"{path.name}: truncated qcow2 header")
    (
        version,
        backing_offset,
        _backing_size,
        cluster_bits,
        _size,
        crypt,
        l1_size,
        l1_offset,
        refcount_offset,
        refcount_clusters,
    ) = struct.unpack(">IQIIQIIQQI", head[4:60])
    if version not in (2, 3):
        raise KilnError(
            errors.InvalidDiskImage,
            f"{path.name}: unsupported qcow version {version} (need qcow2 v2 or v3)",
        )
    if backing_offset != 0:
        raise KilnError(
            errors.UnsafeDiskImage,
            f"{path.name}: qcow2 image has a backing file; "
            "refused because it would read another host file (flatten it first)",
        )
    if version == 3:
        if len(head) < 104:
            raise KilnError(errors.InvalidDiskImage, f"{path.name}: truncated qcow2 v3 header")
        (incompatible,) = struct.unpack(">Q", head[72:80])
        if incompatible & _QCOW2_INCOMPAT_DATA_FILE:
            raise KilnError(
                errors.UnsafeDiskImage,
                f"{path.name}: qcow2 image keeps its data in an external data file; "
                "refused because it would read another host file",
            )
    if crypt != 0:
        raise KilnError(
            errors.InvalidDiskImage, f"{path.name}: encrypted qcow2 images are not supported"
        )
    if 9 <= cluster_bits <= 21:
        tables = (
            (l1_offset, l1_size * 8, "L1 table"),
            (refcount_offset, refcount_clusters << cluster_bits, "refcount table"),
        )
        for offset, length, what in tables:
            if offset + length > file_size:
                raise KilnError(
                    errors.InvalidDiskImage,
                    f"{path.name}: truncated qcow2 image (its {what} ends at byte "
                    f"{offset + length}, the file has {file_size} bytes)",
                )


def _is_vmdk_descriptor(head: bytes) -> bool:
    text = head[:1024].lstrip()
    if text.startswith(b"# Disk DescriptorFile"):
        return True
    # QEMU's own probe also accepts a descriptor without the comment: a "version=" line plus
    # a "createType=" line in plain text near the start.
    return b"createType=" in head[:4096] and b"version=" in head[:4096] and _mostly_text(head)


def _mostly_text(data: bytes) -> bool:
    sample = data[:1024]
    return bool(sample) and sum(32 <= b < 127 or b in (9, 10, 13) for b in sample) > 0.95 * len(
        sample
    )


def _unsupported(path: Path, name: str) -> KilnError:
    return KilnError(
        errors.InvalidDiskImage,
        f"{path.name}: {name} disk images are not supported "
        f"(supported: {', '.join(SUPPORTED_IMPORT_FORMATS)})",
    )
