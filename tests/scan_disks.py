"""Purpose-made disks for the scanner's tests, without a VM: a directory tree the test writes,
made into ext4 by ``mkfs.ext4 -d`` (e2fsprogs) and put in partition 1 of an MBR disk (sfdisk).
``mkfs.ext4 -d`` keeps each file's mode; ``-E root_owner`` and the files' own owners (root when
the tests run as root) give the ownership."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

MIB = 1024 * 1024
PART_START = MIB  # partition 1 at sector 2048, as fdisk puts it
#: path in the image -> (content, mode)
Files = dict[str, tuple[str | bytes, int]]

#: (path in the image, content, mode) of a small clean Debian-like root.
CLEAN: Files = {
    "etc/os-release": (
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
        0o644,
    ),
    "etc/debian_version": ("12.8\n", 0o644),
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\nadmin:x:1000:1000::/home/admin:/bin/sh\n",
        0o644,
    ),
    "etc/group": ("root:x:0:\nshadow:x:42:\nadmin:x:1000:\n", 0o644),
    "etc/shadow": ("root:*:19000:0:99999:7:::\nadmin:!:19000:0:99999:7:::\n", 0o640),
    "etc/gshadow": ("root:*::\nshadow:*::\nadmin:!::\n", 0o640),
    "etc/ssh/sshd_config": (
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nPasswordAuthentication no\n"
        "PermitEmptyPasswords no\n",
        0o644,
    ),
    "etc/ssh/sshd_config.d/empty.conf": ("# nothing\n", 0o644),
    "usr/bin/passwd": ("#!/bin/sh\n", 0o755),
    "home/admin/.profile": ("PATH=/usr/bin\n", 0o644),
    "tmp/.keep": ("", 0o644),
}

#: What the planted image changes: each of the problems the scan must find.
PLANTED: Files = {
    "etc/ssh/sshd_config": (
        "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n",
        0o644,
    ),
    "etc/ssh/sshd_config.d/50-root.conf": ("PermitRootLogin yes\n", 0o644),
    "etc/shadow": ("root::19000:0:99999:7:::\nadmin:!:19000:0:99999:7:::\n", 0o640),
    "srv/data/shared.txt": ("anyone may write this\n", 0o666),
    "root/.ssh/id_ed25519": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----\n",
        0o600,
    ),
    "usr/local/bin/rootme": ("#!/bin/sh\nexec /bin/sh\n", 0o4755),
}


def write_tree(root: Path, files: Files, links: dict[str, str] | None = None) -> Path:
    for rel, (content, mode) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        os.chmod(path, mode)
    for rel, target in (links or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(target)
    (root / "tmp").chmod(0o1777)
    return root


def make_ext4_disk(
    path: Path,
    files: Files,
    size_mib: int = 24,
    htree: bool = False,
    links: dict[str, str] | None = None,
) -> Path:
    """An MBR disk of ``size_mib`` MiB whose partition 1 is ext4 holding ``files`` (and the
    symlinks ``links``: path -> target); with ``htree``, ``e2fsck -D`` indexes its large
    directories (hashed b-trees)."""
    tree = write_tree(path.with_suffix(".tree"), files, links)
    fs = path.with_suffix(".ext4")
    fs_size = (size_mib - 1) * MIB
    with open(fs, "wb") as f:
        f.truncate(fs_size)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", str(tree), str(fs)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(tree)
    if htree:
        done = subprocess.run(["e2fsck", "-fyD", str(fs)], capture_output=True)
        assert done.returncode in (0, 1), done.stderr  # 1: the filesystem was changed
    return _in_mbr(path, fs, size_mib)


def make_unreadable_disk(path: Path, size_mib: int = 8) -> Path:
    """An MBR disk whose Linux partition holds no filesystem anyone can read."""
    fs = path.with_suffix(".junk")
    with open(fs, "wb") as f:
        f.write(b"\x5a" * ((size_mib - 1) * MIB))
    return _in_mbr(path, fs, size_mib)


def _in_mbr(path: Path, fs: Path, size_mib: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size_mib * MIB)
    subprocess.run(
        ["sfdisk", "-q", str(path)], input=b"2048,,83\n", check=True, capture_output=True
    )
    with open(path, "r+b") as out, open(fs, "rb") as src:
        out.seek(PART_START)
        shutil.copyfileobj(src, out)
    fs.unlink()
    return path
