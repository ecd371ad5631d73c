"""Helpers shared by the store tests (imported by name; tests have no packages)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path


def make_disk(path: Path, size: int, writes: list[tuple[int, bytes]]) -> Path:
    """A sparse raw disk of ``size`` bytes with ``writes`` (offset, data) in it."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in writes:
            f.seek(off)
            f.write(data)
    return path


def disk_like_bytes(n: int, seed: int) -> bytes:
    """Compressible, non-repeating bytes resembling file contents (text + binary)."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(range(97, 123), k=rng.randint(2, 9))) for _ in range(512)]
    out = bytearray()
    while len(out) < n:
        if rng.random() < 0.7:
            out += b" ".join(rng.choices(words, k=64)) + b"\n"
        else:
            out += rng.randbytes(256)
    return bytes(out[:n])


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def same_bytes(a: Path, b: Path) -> bool:
    """Byte-for-byte comparison of two raw files (sizes included)."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True
