"""What the checks read, gathered once per scan: the image's files through
:class:`~kiln.scan.fs.Ext4Image`, the tree (directories only), the inode table, the accounts.
Each is read on first use, so a policy that runs fewer checks reads fewer blocks."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from functools import cached_property

from kiln.scan.fs import DirEntry, Ext4Image, InodeInfo

MAX_PATHS = 100  # paths listed in one finding; its title says how many there are


@dataclass(frozen=True, slots=True)
class Hit:
    """One problem a check found: what (``title``) and where (paths in the image)."""

    title: str
    paths: tuple[str, ...] = ()


def listed(paths: list[str], what: str) -> list[Hit]:
    """One hit naming how many ``what`` were found, with (the first of) their paths."""
    if not paths:
        return []
    plural = "s" if len(paths) > 1 else ""
    return [Hit(f"{len(paths)} {what}{plural}", tuple(paths[:MAX_PATHS]))]


@dataclass(frozen=True, slots=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    line: int


@dataclass(frozen=True, slots=True)
class ShadowEntry:
    name: str
    password: str
    line: int


def parse_passwd(text: str) -> list[PasswdEntry]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        f = line.split(":")
        if len(f) < 7 or line.startswith(("#", "+", "-")):
            continue
        try:
            out.append(PasswdEntry(f[0], int(f[2]), int(f[3]), f[5], f[6], n))
        except ValueError:
            continue
    return out


def parse_shadow(text: str) -> list[ShadowEntry]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        f = line.split(":")
        if len(f) >= 2 and f[0] and not line.startswith("#"):
            out.append(ShadowEntry(f[0], f[1], n))
    return out


class ScanContext:
    """One root filesystem as the checks see it."""

    def __init__(self, fs: Ext4Image) -> None:
        self.fs = fs

    def text(self, path: str, limit: int = 1 << 20) -> str | None:
        return self.fs.read_text(path, limit)

    def exists(self, path: str) -> bool:
        return self.fs.lookup(path, follow=False) is not None

    @cached_property
    def entries(self) -> list[DirEntry]:
        """Every path in the image (from its directories; no file inode is read)."""
        return list(self.fs.walk("/"))

    def entries_under(self, roots: tuple[str, ...]) -> list[DirEntry]:
        """The entries under ``roots``: from :attr:`entries` when the whole tree was walked,
        else by walking just those directories."""
        if "entries" in self.__dict__:
            prefixes = tuple(r.rstrip("/") + "/" for r in roots)
            return [e for e in self.entries if e.path.startswith(prefixes)]
        return [e for root in roots for e in self.fs.walk(root)]

    @cached_property
    def inodes(self) -> dict[int, InodeInfo]:
        return self.fs.inode_table()

    def info(self, path: str) -> InodeInfo | None:
        found = self.fs.lookup(path, follow=False)
        return None if found is None else self.inodes.get(found[0])

    @cached_property
    def passwd(self) -> list[PasswdEntry]:
        return parse_passwd(self.text("/etc/passwd") or "")

    @cached_property
    def shadow(self) -> list[ShadowEntry]:
        return parse_shadow(self.text("/etc/shadow") or "")

    @cached_property
    def homes(self) -> list[str]:
        """Home directories: /root, every /home/*, and each account's home that exists."""
        homes = {"/root"}
        homes.update(e.path for e in self.fs.listdir("/home") if e.kind == "dir")
        homes.update(p.home for p in self.passwd if p.home.startswith("/") and p.home != "/")
        return sorted(h for h in homes if self.fs.lookup(h) is not None)

    def glob_dir(self, directory: str, suffix: str = "") -> list[str]:
        """The regular files (or symlinks to them) in ``directory`` whose names end in
        ``suffix``, in name order (what ``Include dir/*.conf`` reads)."""
        out = []
        for e in self.fs.listdir(directory):
            if e.path.endswith(suffix) and e.kind in ("file", "symlink"):
                out.append(e.path)
        return out

    def config_lines(self, path: str) -> list[tuple[str, int, str]]:
        """(file, line number, stripped line) of a config file, comments and blanks dropped."""
        text = self.text(path)
        if text is None:
            return []
        out = []
        for n, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            if s and not s.startswith(("#", ";")):
                out.append((path, n, s))
        return out

    def resolve(self, base: str, pattern: str) -> list[str]:
        """An ``Include`` argument: absolute or relative to ``base``'s directory, with one
        ``*`` wildcard in the last component at most."""
        if not pattern.startswith("/"):
            pattern = posixpath.join(posixpath.dirname(base), pattern)
        directory, name = posixpath.split(pattern)
        if "*" not in name:
            return [pattern]
        head, _, tail = name.partition("*")
        return [
            p
            for p in self.glob_dir(directory)
            if posixpath.basename(p).startswith(head) and p.endswith(tail)
        ]
