"""The local directory backend: one file per object, written to a temp name and renamed.

URL: ``file:///absolute/path/of/the/store`` (kiln/store/backends.py). Objects are files under
that directory; ``tmp/`` holds writes in progress and ``scratch/`` the store's temporary raw
disks, neither of them objects (docs/storage-format.md#on-disk-tree-local-backend).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kiln import errors
from kiln.errors import KilnError
from kiln.store.backend import Backend, Capabilities, ObjectInfo, ObjectMissing

FD_CACHE = 64
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def file_url(path: Path | str) -> str:
    """The ``file://`` URL of the store directory ``path`` (made absolute)."""
    return Path(path).absolute().as_uri()


def path_of(url: str) -> Path:
    """The directory a ``file:///abs/path`` URL names. Raises ValueError for anything else
    (a relative path, or a host other than ``localhost``)."""
    parts = urlsplit(url)
    if (
        parts.scheme != "file"
        or parts.netloc not in ("", "localhost")
        or not parts.path.startswith("/")
    ):
        raise ValueError(f"not a local store URL: {url!r} (expected file:///absolute/path)")
    return Path(unquote(parts.path, errors="surrogateescape"))


class LocalBackend:
    # other processes on this host open the same directory (worker processes of an import)
    capabilities = Capabilities(process_shared=True)

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.url = file_url(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(exist_ok=True)
        self._made_dirs: set[str] = set()
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._fd_lock = threading.Lock()

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def put(self, name: str, data: bytes | memoryview) -> bool:
        final = self._path(name)
        if os.path.exists(final):
            return False
        parent = os.path.dirname(final)
        if parent not in self._made_dirs:
            os.makedirs(parent, exist_ok=True)
            self._made_dirs.add(parent)
        tmp = os.path.join(self._tmp, f"{os.path.basename(name)}.{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            finally:
                os.close(fd)
            os.rename(tmp, final)  # see docs/storage-format.md#write-order
        except OSError as e:
            _unlink_quiet(tmp)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise KilnError(errors.StoreFull, f"store is out of space: {self.root}") from e
            raise
        return True

    def get(self, name: str) -> bytes:
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except FileNotFoundError as e:
            raise ObjectMissing(name) from e

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        fd = self._open_ro(name)
        if offset < 0:
            offset = max(0, os.fstat(fd).st_size + offset)
        return os.pread(fd, length, offset)

    def _open_ro(self, name: str) -> int:
        """A cached read-only descriptor: restores read thousands of chunks from few packs."""
        with self._fd_lock:
            fd = self._fds.get(name)
            if fd is not None:
                self._fds.move_to_end(name)
                return fd
        try:
            fd = os.open(self._path(name), os.O_RDONLY)
        except FileNotFoundError as e:
            raise ObjectMissing(name) from e
        with self._fd_lock:
            self._fds[name] = fd
            while len(self._fds) > FD_CACHE:
                _, old = self._fds.popitem(last=False)
                os.close(old)
        return fd

    def _forget_fd(self, name: str) -> None:
        with self._fd_lock:
            fd = self._fds.pop(name, None)
        if fd is not None:
            os.close(fd)

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))  # one stat; a directory (a prefix) is no object

    def touch(self, name: str) -> bool:
        try:
            os.utime(self._path(name))
            return True
        except FileNotFoundError:
            return False

    def delete(self, name: str) -> None:
        self._forget_fd(name)
        _unlink_quiet(self._path(name))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = Path(self._path(prefix))
        top = base if base.is_dir() or prefix.endswith("/") else base.parent
        if not top.exists():  # e.g. no "quarantine/" yet: never walk the whole store for it
            return
        for dirpath, _dirs, files in os.walk(top):
            for fn in files:
                full = os.path.join(dirpath, fn)
                name = os.path.relpath(full, self.root)
                if not name.startswith(prefix) or name.startswith("tmp/"):
                    continue
                try:
                    st = os.stat(full)
                except FileNotFoundError:
                    continue
                yield ObjectInfo(name, st.st_size, st.st_mtime)

    def sync(self) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if _libc.syncfs(fd) != 0:
                os.sync()
        finally:
            os.close(fd)

    def free_bytes(self) -> int | None:
        return shutil.disk_usage(self.root).free

    def clean_tmp(self, older_than: float = 3600.0) -> int:
        """Remove temp files left by a crashed writer (never a visible object). A live
        writer's temp file is seconds old."""
        removed = 0
        cutoff = time.time() - older_than
        for entry in os.scandir(self._tmp):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_: type[Backend] = LocalBackend  # LocalBackend satisfies the Backend protocol
