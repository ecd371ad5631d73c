"""One ext4 filesystem of a disk, read through the PyPI ``ext4`` library over a
:class:`~kiln.scan.source.PartitionStream`: path lookups (symlinks followed inside the image),
file contents, directory listings, and every inode's mode and owner from the inode tables.

Nothing is mounted and nothing outside the blocks asked for is read: a lookup reads the
directories on its path, a file read its extents, :meth:`Ext4Image.inode_table` the used part
of each group's inode table (``bg_itable_unused`` says where it ends).
"""

from __future__ import annotations

import heapq
import posixpath
import re
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ext4

from kiln.scan.source import PartitionStream

ROOT_INO = 2
MAX_SYMLINKS = 16
MAX_DEPTH = 64
INODE_UNINIT = 0x1  # bg_flags: the group's inode table was never written
INCOMPAT_64BIT = 0x80
EXTENTS_FL = 0x80000  # i_flags: the inode's blocks are an extent tree
INLINE_DATA_FL = 0x10000000
RO_GDT_CSUM = 0x10
RO_METADATA_CSUM = 0x400
#: The ext4 directory entry's file_type byte, as ``stat`` names the kinds.
FILE_TYPES = {
    1: "file",
    2: "dir",
    3: "chardev",
    4: "blockdev",
    5: "fifo",
    6: "socket",
    7: "symlink",
}


class FilesystemError(Exception):
    """The filesystem cannot be read (not ext4, a bad superblock or checksum, a broken
    directory): its text says what the library or the walk found."""


@dataclass(frozen=True, slots=True)
class InodeInfo:
    mode: int
    uid: int
    gid: int
    size: int


@dataclass(frozen=True, slots=True)
class DirEntry:
    path: str
    inode: int
    kind: str  # one of FILE_TYPES' values


def _ftype(value: object) -> int:
    """The library's file type (an enum over a ctypes byte) as its number."""
    raw = getattr(value, "value", value)
    if isinstance(raw, bytes | bytearray):
        return raw[0] if raw else 0
    return int(str(raw)) if isinstance(raw, str) else int(raw) if isinstance(raw, int) else 0


def _fail(what: str, e: BaseException) -> FilesystemError:
    text = re.sub(r"<([\w.]+) object at 0x[0-9a-f]+>", r"\1", " ".join(str(e).split()))
    text = text or type(e).__name__
    return FilesystemError(f"{what}: {type(e).__name__}: {text}"[:400])


class Ext4Image:
    """An ext4 filesystem on ``stream``. Raises FilesystemError if it is not one."""

    def __init__(self, stream: PartitionStream) -> None:
        self._stream = stream
        try:
            self._volume: Any = ext4.Volume(stream)
        except Exception as e:  # the library raises its own and ctypes' errors
            raise _fail("not a readable ext4 filesystem", e) from e
        self._dirs: dict[int, dict[str, tuple[int, str]]] = {}
        self._table: dict[int, InodeInfo] | None = None
        self._dir_extents: dict[int, tuple[int, bytes]] = {}  # dir inode -> (i_flags, i_block)

    @property
    def block_size(self) -> int:
        return int(self._volume.block_size)

    def _read(self, offset: int, length: int) -> bytes:
        self._stream.seek(offset)
        data = self._stream.read(length)
        if len(data) < length:
            raise OSError(f"short read at {offset} ({len(data)} of {length} bytes)")
        return data

    # --- directories and lookups --------------------------------------------------------
    def _listing(self, ino: int) -> dict[str, tuple[int, str]]:
        found = self._dirs.get(ino)
        if found is not None:
            return found
        try:
            node = self._volume.inodes[ino]
            if not isinstance(node, ext4.Directory):
                raise FilesystemError(f"inode {ino} is not a directory")
            entries: dict[str, tuple[int, str]] = {}
            for dirent, ftype in node.opendir():
                name = dirent.name_bytes.decode("utf-8", "surrogateescape")
                if name in (".", ".."):
                    continue
                entries[name] = (int(dirent.inode), FILE_TYPES.get(_ftype(ftype), "unknown"))
        except FilesystemError:
            raise
        except Exception as e:
            raise _fail(f"directory inode {ino} cannot be read", e) from e
        if len(self._dirs) > 4096:
            self._dirs.clear()
        self._dirs[ino] = entries
        return entries

    def lookup(self, path: str, follow: bool = True) -> tuple[int, str] | None:
        """(inode, kind) of the absolute ``path``, or None if it does not exist. Symlinks are
        followed inside the image (an absolute target starts at the image's root); the last
        component only when ``follow``."""
        return self._lookup(path, follow, 0)

    def _lookup(self, path: str, follow: bool, hops: int) -> tuple[int, str] | None:
        parts = [p for p in path.split("/") if p and p != "."]
        ino, kind, where = ROOT_INO, "dir", "/"
        for i, name in enumerate(parts):
            if name == "..":
                where = posixpath.dirname(where.rstrip("/")) or "/"
                found = self._lookup(where, True, hops)
                if found is None:
                    return None
                ino, kind = found
                continue
            if kind != "dir":
                return None
            entry = self._listing(ino).get(name)
            if entry is None:
                return None
            ino, kind = entry
            here = posixpath.join(where, name)
            last = i == len(parts) - 1
            if kind == "symlink" and (follow or not last):
                if hops >= MAX_SYMLINKS:
                    return None
                target = self.readlink(ino)
                rest = "/".join(parts[i + 1 :])
                base = target if target.startswith("/") else posixpath.join(where, target)
                return self._lookup(posixpath.join(base, rest) if rest else base, follow, hops + 1)
            where = here
        return ino, kind

    def readlink(self, ino: int) -> str:
        try:
            raw = self._volume.inodes[ino].readlink()
        except Exception as e:
            raise _fail(f"symlink inode {ino} cannot be read", e) from e
        return bytes(raw).decode("utf-8", "surrogateescape")

    def listdir(self, path: str) -> list[DirEntry]:
        """The entries of directory ``path`` (sorted by name); [] if it is not a directory."""
        found = self.lookup(path)
        if found is None or found[1] != "dir":
            return []
        base = path.rstrip("/") or "/"
        return [
            DirEntry(posixpath.join(base, name), ino, kind)
            for name, (ino, kind) in sorted(self._listing(found[0]).items())
        ]

    def read_file(self, path: str, limit: int = 1 << 20) -> bytes | None:
        """At most ``limit`` bytes of the regular file at ``path``; None if there is none."""
        found = self.lookup(path)
        if found is None or found[1] != "file":
            return None
        return self.read_inode(found[0], limit)

    def read_inode(self, ino: int, limit: int = 1 << 20) -> bytes:
        try:
            with self._volume.inodes[ino].open() as f:
                return bytes(f.read(limit))
        except Exception as e:
            raise _fail(f"file inode {ino} cannot be read", e) from e

    def read_text(self, path: str, limit: int = 1 << 20) -> str | None:
        data = self.read_file(path, limit)
        return None if data is None else data.decode("utf-8", "replace")

    # --- the whole tree -----------------------------------------------------------------
    def walk(self, top: str = "/") -> Iterator[DirEntry]:
        """Every entry under ``top`` (not following symlinks), each directory's entries
        together, directories in the order of their first block on disk (so the store's chunks
        are read in order). Reads directories only: a file's inode is not touched."""
        found = self.lookup(top)
        if found is None or found[1] != "dir":
            return
        self.inode_table()  # the directories' extents (read once, shared with the checks)
        seen = {found[0]}
        heap = [(0, top.rstrip("/") or "/", found[0], 0)]
        while heap:
            _, path, ino, depth = heapq.heappop(heap)
            listing = self._extent_listing(ino)
            if listing is None:  # inline data, block maps: the library's own reader
                listing = self._listing(ino)
                self._dirs.pop(ino, None)  # a walk lists each directory once
            for name, (child, kind) in sorted(listing.items()):
                entry = DirEntry(posixpath.join(path, name), child, kind)
                yield entry
                if kind == "dir" and child not in seen and depth < MAX_DEPTH:
                    seen.add(child)
                    first = self._dir_extents.get(child, (0, b""))[1]
                    key = _u32(first, 20) if len(first) >= 24 else 0
                    heapq.heappush(heap, (key, entry.path, child, depth + 1))

    def _extent_listing(self, ino: int) -> dict[str, tuple[int, str]] | None:
        """A directory's entries parsed from its blocks, found through its extent tree (the
        linear format; an htree's index blocks read as one empty entry each, as the kernel
        lays them out). None when the directory is not extent-mapped."""
        raw = self._dir_extents.get(ino)
        if raw is None or raw[0] & INLINE_DATA_FL or not raw[0] & EXTENTS_FL:
            return None
        bs = self.block_size
        entries: dict[str, tuple[int, str]] = {}
        try:
            for start, count in _extents(raw[1], lambda block: self._read(block * bs, bs)):
                data = self._read(start * bs, count * bs)
                _parse_dirents(data, bs, entries, self.inode_table())
        except (struct.error, ValueError, OSError) as e:
            raise _fail(f"directory inode {ino} cannot be read", e) from e
        return entries

    def inode_table(self) -> dict[int, InodeInfo]:
        """Mode, owner and size of every inode in use, read from the inode tables in one
        pass per group (the used part only, when the group descriptors say where it ends)."""
        if self._table is not None:
            return self._table
        table: dict[int, InodeInfo] = {}
        try:
            sb = self._read(1024, 1024)  # the superblock's own fields: stable across versions
            inodes_count, per_group = _u32(sb, 0x0), _u32(sb, 0x28)
            isize, incompat, ro_compat = _u16(sb, 0x58), _u32(sb, 0x60), _u32(sb, 0x64)
            desc_size = _u16(sb, 0xFE) if incompat & INCOMPAT_64BIT else 32
            trusted = bool(ro_compat & (RO_GDT_CSUM | RO_METADATA_CSUM))
            bs = self.block_size
            groups = inodes_count // per_group if per_group else 0
            gdt = self._read(2048 if bs == 1024 else bs, groups * desc_size)  # the block after sb
            for g in range(groups):
                d = g * desc_size
                itable, flags, unused = (
                    _u32(gdt, d + 0x08),
                    _u16(gdt, d + 0x12),
                    _u16(gdt, d + 0x1C),
                )
                if desc_size >= 64:
                    itable |= _u32(gdt, d + 0x28) << 32
                    unused |= _u16(gdt, d + 0x32) << 16
                used = per_group
                if trusted:
                    if flags & INODE_UNINIT:
                        continue
                    used = max(0, per_group - unused)
                if used:
                    raw = self._read(itable * bs, used * isize)
                    _parse_inodes(raw, isize, g * per_group + 1, table, self._dir_extents)
        except (struct.error, ValueError, OSError) as e:
            raise _fail("inode table cannot be read", e) from e
        self._table = table
        return table


def _u16(buf: bytes, off: int) -> int:
    return int(struct.unpack_from("<H", buf, off)[0])


def _u32(buf: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", buf, off)[0])


_HEAD = struct.Struct("<HHIIIIIHH")  # mode uid size_lo atime ctime mtime dtime gid links


def _parse_inodes(
    raw: bytes,
    isize: int,
    first: int,
    out: dict[int, InodeInfo],
    dirs: dict[int, tuple[int, bytes]],
) -> None:
    for j in range(len(raw) // isize):
        off = j * isize
        mode, uid, size, _a, _c, _m, _d, gid, links = _HEAD.unpack_from(raw, off)
        if mode == 0 or links == 0:
            continue
        uid_hi, gid_hi = struct.unpack_from("<HH", raw, off + 120)
        size_hi = _u32(raw, off + 108)
        kind = stat.S_IFMT(mode)
        out[first + j] = InodeInfo(
            mode,
            uid | uid_hi << 16,
            gid | gid_hi << 16,
            size | (size_hi << 32 if kind == stat.S_IFREG else 0),
        )
        if kind == stat.S_IFDIR:
            dirs[first + j] = (_u32(raw, off + 32), raw[off + 40 : off + 100])


MAX_EXTENT_DEPTH = 5


def _extents(
    node: bytes, read_block: Callable[[int], bytes], depth: int = 0
) -> Iterator[tuple[int, int]]:
    """(first physical block, block count) of each initialized extent under ``node`` (an
    extent tree node: the inode's i_block or a tree block), in logical order."""
    magic, count, _max, level = struct.unpack_from("<HHHH", node, 0)
    if magic != EXTENT_MAGIC or depth > MAX_EXTENT_DEPTH:
        raise ValueError("bad extent header")
    for i in range(count):
        off = 12 + 12 * i
        if level == 0:
            _lblock, length, start_hi, start_lo = struct.unpack_from("<IHHI", node, off)
            if length <= 32768:  # longer: an uninitialized extent, which reads as zeros
                yield start_hi << 32 | start_lo, length
        else:
            _lblock, leaf_lo, leaf_hi = struct.unpack_from("<IIH", node, off)
            yield from _extents(read_block(leaf_hi << 32 | leaf_lo), read_block, depth + 1)


def _parse_dirents(
    data: bytes, bs: int, out: dict[str, tuple[int, str]], inodes: dict[int, InodeInfo]
) -> None:
    for base in range(0, len(data), bs):
        off, end = base, base + bs
        while off + 8 <= end:
            ino, rec_len, name_len, ftype = _DIRENT.unpack_from(data, off)
            if rec_len < 8 or off + rec_len > end:
                raise ValueError(f"bad directory entry at {off}")
            if ino and name_len and ftype != DIRENT_CSUM_TAIL:
                name = data[off + 8 : off + 8 + name_len].decode("utf-8", "surrogateescape")
                if name not in (".", ".."):
                    kind = FILE_TYPES.get(ftype)
                    if kind is None:  # no filetype feature: the mode says
                        info = inodes.get(ino)
                        kind = (
                            _MODE_KINDS.get(stat.S_IFMT(info.mode), "unknown")
                            if info
                            else "unknown"
                        )
                    out[name] = (ino, kind)
            off += rec_len


_DIRENT = struct.Struct("<IHBB")
DIRENT_CSUM_TAIL = 0xDE
EXTENT_MAGIC = 0xF30A
_MODE_KINDS = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFLNK: "symlink",
}
