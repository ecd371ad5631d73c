"""Single-thread throughput of the store's building blocks, measured now on the benchmark image.

Printed beside the store benchmark so that a run on a loaded machine can be read against what
one core delivered at that moment (MACHINE-NOTES gives the idle-machine figures).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import blake3
import zstandard
from pyfastcdc import FastCDC

from bench.images import MiB, data_extents

SAMPLE = 128 * MiB
BLOCK = 8 * MiB


def _gbps(n: int, seconds: float) -> float:
    return round(n / seconds / 1e9, 3) if seconds > 0 else 0.0


def measure_ceilings(image: Path) -> dict[str, float]:
    """GB/s of one thread for pread, FastCDC (avg 32 KiB), BLAKE3, zstd-1 and its decompression."""
    fd = os.open(image, os.O_RDONLY)
    try:
        blocks: list[bytes] = []
        n = 0
        t0 = time.perf_counter()
        for off, length in data_extents(image):
            while length > 0 and n < SAMPLE:
                b = os.pread(fd, min(length, BLOCK), off)
                blocks.append(b)
                off += len(b)
                length -= len(b)
                n += len(b)
        t_read = time.perf_counter() - t0
    finally:
        os.close(fd)
    cdc = FastCDC(32 * 1024, min_size=8 * 1024, max_size=128 * 1024)
    t0 = time.perf_counter()
    chunks = [memoryview(b)[c.offset : c.offset + c.length] for b in blocks for c in cdc.cut_buf(b)]
    t_cdc = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c in chunks:
        blake3.blake3(c).digest()
    t_hash = time.perf_counter() - t0
    cc = zstandard.ZstdCompressor(level=1)
    t0 = time.perf_counter()
    packed = [cc.compress(c) for c in chunks]
    t_z = time.perf_counter() - t0
    dc = zstandard.ZstdDecompressor()
    t0 = time.perf_counter()
    for p in packed:
        dc.decompress(p)
    t_unz = time.perf_counter() - t0
    return {
        "pread": _gbps(n, t_read),
        "fastcdc_32k": _gbps(n, t_cdc),
        "blake3": _gbps(n, t_hash),
        "zstd1": _gbps(n, t_z),
        "zstd_decompress": _gbps(n, t_unz),
        "zstd1_ratio": round(n / sum(len(p) for p in packed), 2),
        "load": os.getloadavg()[0],
    }
