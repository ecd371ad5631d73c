"""The bytes a scan reads: a disk (a store snapshot through ``SnapshotReader``, or a raw file)
seen as a file-like object, one partition at a time, with every byte counted.

The ext4 library takes an ``io.RawIOBase``; :class:`PartitionStream` is one over
``disk.read(offset, length)`` between a partition's first byte and its end. Nothing here
restores the disk: each read asks the reader for that range only.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

#: Small reads (the library reads a directory entry, an inode, a block at a time, and often the
#: same block again) are served from the last CACHE_BLOCKS aligned 4 KiB blocks.
CACHE_BLOCK = 4096
CACHE_BLOCKS = 256


class Disk(Protocol):
    """Random reads of a whole disk (``SnapshotReader`` is one; :class:`FileDisk` another)."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``; short past the end, empty at or after ``size``."""
        ...


@dataclass
class ReadCounter:
    """How much a scan asked for: bytes and read calls, over every partition."""

    bytes_read: int = 0
    reads: int = 0


class FileDisk:
    """A raw disk file (the bench's restored image) read with ``pread``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self._fd).st_size

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self._fd, length, offset)

    def close(self) -> None:
        os.close(self._fd)


@dataclass
class CountingDisk:
    """``disk`` with every read counted in ``counter``."""

    disk: Disk
    counter: ReadCounter = field(default_factory=ReadCounter)

    @property
    def size(self) -> int:
        return self.disk.size

    def read(self, offset: int, length: int) -> bytes:
        data = self.disk.read(offset, length)
        self.counter.bytes_read += len(data)
        self.counter.reads += 1
        return data


class PartitionStream(io.RawIOBase):
    """A read-only, seekable file over ``disk`` bytes ``start .. start + length``."""

    def __init__(self, disk: Disk, start: int, length: int) -> None:
        super().__init__()
        self._disk = disk
        self._start = start
        self._length = max(0, min(length, disk.size - start))
        self._pos = 0
        self._cache: OrderedDict[int, bytes] = OrderedDict()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._length + offset
        else:
            raise ValueError(f"invalid whence: {whence}")
        if pos < 0:
            raise OSError(22, "negative seek position")
        self._pos = pos
        return pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._length - self._pos
        size = max(0, min(size, self._length - self._pos))
        if size == 0:
            return b""
        pos = self._pos
        block = pos // CACHE_BLOCK
        if block == (pos + size - 1) // CACHE_BLOCK:  # within one block: through the cache
            data = self._block(block)
            data = data[pos - block * CACHE_BLOCK : pos - block * CACHE_BLOCK + size]
        else:
            data = self._disk.read(self._start + pos, size)
        self._pos += len(data)
        return data

    def _block(self, block: int) -> bytes:
        data = self._cache.get(block)
        if data is None:
            data = self._disk.read(self._start + block * CACHE_BLOCK, CACHE_BLOCK)
            self._cache[block] = data
            if len(self._cache) > CACHE_BLOCKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(block)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # io's buffer type
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def peek(self, size: int = 0) -> bytes:
        """What the next read would return, without moving (the ext4 library calls it)."""
        pos = self._pos
        data = self.read(max(size, 1))
        self._pos = pos
        return data
