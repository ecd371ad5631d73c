"""Helpers for the disks tests: build tiny real images with the real qemu-img."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

MiB = 1024 * 1024


def qemu(tool: str, *args: str | Path) -> str:
    done = subprocess.run(
        [tool, *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    return done.stdout


def make_raw(path: Path, size: int, writes: dict[int, bytes]) -> Path:
    """A sparse raw file of ``size`` bytes with ``writes`` (offset -> bytes) and holes elsewhere."""
    with path.open("wb") as f:
        f.truncate(size)
        for offset, data in writes.items():
            f.seek(offset)
            f.write(data)
    return path


# A guest disk whose size is no multiple of any cluster size (vpc/vmdk must keep it exactly),
# with data in several places, one of them not cluster aligned.
DISK_SIZE = 21 * MiB + 3 * 512
DISK_WRITES = {
    0: b"\xeb\x63\x90" + b"MBR!" * 100,
    1 * MiB: bytes(range(256)) * 256,  # 64 KiB
    3 * MiB + 4096: b"\x5a" * 8192,
    DISK_SIZE - 512: b"\x77" * 512,  # the very last sector
}
