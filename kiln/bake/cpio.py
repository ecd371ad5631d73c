"""A minimal writer for the ``newc`` cpio format the Linux kernel unpacks as an initramfs.

Written here rather than with ``cpio``/``busybox cpio`` so that the archive's ownership (root),
modes and device nodes do not depend on who runs the build, and no ``mknod`` is needed.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import IO

_TRAILER = "TRAILER!!!"


@dataclass(frozen=True, slots=True)
class CpioEntry:
    """One archive member. ``mode`` includes the file type bits (``stat.S_IFREG | 0o755``)."""

    name: str
    mode: int
    data: bytes = b""
    rdev_major: int = 0
    rdev_minor: int = 0


def regular(name: str, data: bytes, perm: int = 0o644) -> CpioEntry:
    return CpioEntry(name, stat.S_IFREG | perm, data)


def directory(name: str, perm: int = 0o755) -> CpioEntry:
    return CpioEntry(name, stat.S_IFDIR | perm)


def symlink(name: str, target: str) -> CpioEntry:
    return CpioEntry(name, stat.S_IFLNK | 0o777, target.encode())


def char_device(name: str, major: int, minor: int, perm: int = 0o600) -> CpioEntry:
    return CpioEntry(name, stat.S_IFCHR | perm, b"", major, minor)


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, entry: CpioEntry, name: bytes, size: int) -> bytes:
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (
        ino,
        entry.mode,
        0,
        0,
        nlink,
        0,
        size,
        0,
        0,
        entry.rdev_major,
        entry.rdev_minor,
        len(name) + 1,
        0,
    )
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def write_cpio(out: IO[bytes], entries: list[CpioEntry]) -> None:
    """Write ``entries`` (parents before children), all owned by root, mtime 0, then the trailer."""
    for ino, entry in enumerate([*entries, CpioEntry(_TRAILER, 0)], start=1):
        name = entry.name.lstrip("/").encode()
        head = _header(ino if entry.name != _TRAILER else 0, entry, name, len(entry.data))
        out.write(head + name + b"\0")
        out.write(_pad(len(head) + len(name) + 1))
        out.write(entry.data)
        out.write(_pad(len(entry.data)))
