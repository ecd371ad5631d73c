"""Chunking study: which chunker dedups a real disk image's second import best, and how fast.

For fixed-size chunks (4/16/64/256 KiB, aligned to the image) and FastCDC (pyfastcdc, avg 8 to
128 KiB, min = avg/4, max = avg*4) it chunks and BLAKE3-hashes base.raw, then incr.raw and
reordered.raw (see bench/images.py), and counts the NEW bytes the second import would store:
unique chunks not already in base's set, raw and zstd-1 compressed (each chunk alone). All-zero
chunks and holes (SEEK_DATA) are stored as nothing. The incremental image is measured twice:

- ``incr-full``: re-chunk the whole image, dedup against base;
- ``incr-changed``: given the changed ranges, only the parent's chunks overlapping a change are
  re-chunked (CDC: the span between the enclosing parent chunk boundaries; fixed: the aligned
  blocks); every other chunk is reused from the parent without reading it.

Run: ``.venv/bin/python -m bench.chunking [--quick]``; writes bench/results/chunking.json.
"""

from __future__ import annotations

import argparse
import bisect
import json
import mmap
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import blake3
import zstandard
from pyfastcdc import FastCDC
from rich.console import Console
from rich.table import Table

from bench.images import DEFAULT_CACHE, GiB, MiB, build_images, data_extents, warm
from bench.machine import machine_info

KiB = 1024
RESULTS = Path(__file__).parent / "results"
ZERO = bytes(16 * MiB)


@dataclass(frozen=True, slots=True)
class Chunker:
    name: str
    kind: str  # "fixed" | "fastcdc"
    size: int  # fixed: the chunk size; fastcdc: avg_size passed to pyfastcdc

    def cut(self, mv: memoryview, base: int, limit: int) -> Iterator[tuple[int, int]]:
        """(offset, length) of chunks covering mv, which holds image bytes [base, base+len)."""
        if self.kind == "fixed":
            # aligned to the image, not to the region: blocks are the same in every import
            start = base - base % self.size
            for off in range(start, base + len(mv), self.size):
                yield off, min(self.size, limit - off)
        else:
            cdc = FastCDC(self.size, min_size=self.size // 4, max_size=self.size * 4)
            for c in cdc.cut_buf(mv):
                yield base + c.offset, c.length


CHUNKERS = [Chunker(f"fixed {s} KiB", "fixed", s * KiB) for s in (4, 16, 64, 256)] + [
    Chunker(f"fastcdc avg {a} KiB", "fastcdc", a * KiB) for a in (8, 16, 32, 64, 128)
]


@dataclass(slots=True)
class Chunked:
    """One image's chunks: parallel lists, sorted by offset; digest None = all zero (a hole)."""

    offsets: list[int]
    lengths: list[int]
    digests: list[bytes | None]
    seconds: float  # chunk + hash time
    read_bytes: int


class ZeroDigests:
    """BLAKE3 of n zero bytes, per n: a chunk is all zero iff its digest equals this."""

    def __init__(self) -> None:
        self._by_len: dict[int, bytes] = {}

    def get(self, n: int) -> bytes:
        d = self._by_len.get(n)
        if d is None:
            d = self._by_len[n] = blake3.blake3(ZERO[:n]).digest()
        return d


def _spans_of(extents: list[tuple[int, int]], ch: Chunker, size: int) -> list[tuple[int, int]]:
    """The byte spans the chunker reads: data extents (fixed: widened to aligned blocks)."""
    if ch.kind != "fixed":
        return extents
    out: list[tuple[int, int]] = []
    for off, n in extents:
        s = off - off % ch.size
        e = min(size, -(-(off + n) // ch.size) * ch.size)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return [(s, e - s) for s, e in out]


def chunk_spans(
    mm: mmap.mmap, spans: list[tuple[int, int]], ch: Chunker, size: int, zeros: ZeroDigests
) -> Chunked:
    offsets: list[int] = []
    lengths: list[int] = []
    digests: list[bytes | None] = []
    mv = memoryview(mm)
    t0 = time.perf_counter()
    read = 0
    for s, n in spans:
        read += n
        region = mv[s : s + n]
        for off, length in ch.cut(region, s, s + n):
            d = blake3.blake3(mv[off : off + length]).digest()
            offsets.append(off)
            lengths.append(length)
            digests.append(None if d == zeros.get(length) else d)
    seconds = time.perf_counter() - t0
    mv.release()
    return Chunked(offsets, lengths, digests, seconds, read)


@dataclass(frozen=True, slots=True)
class Measure:
    chunks: int  # non-zero chunks in the image's manifest
    unique: int
    avg_chunk: int
    new_chunks: int  # unique chunks not in the parent's set
    new_raw: int
    new_zstd: int
    read_bytes: int  # bytes chunked and hashed
    seconds: float
    gbps_read: float  # chunk + hash throughput over the bytes read
    gbps_logical: float  # image size / seconds


def measure(
    mm: mmap.mmap, ch: Chunked, known: set[bytes], size: int, pool: ThreadPoolExecutor
) -> Measure:
    """Count what a store would write for `ch` given the chunks it already holds (`known`)."""
    seen: set[bytes] = set()
    new_idx: list[int] = []
    count = 0
    for i, d in enumerate(ch.digests):
        if d is None:
            continue
        count += 1
        if d in seen:
            continue
        seen.add(d)
        if d not in known:
            new_idx.append(i)
    mv = memoryview(mm)

    def zlen(i: int) -> int:
        return len(
            zstandard.ZstdCompressor(level=1).compress(
                mv[ch.offsets[i] : ch.offsets[i] + ch.lengths[i]]
            )
        )

    new_zstd = sum(pool.map(zlen, new_idx, chunksize=256))
    mv.release()
    new_raw = sum(ch.lengths[i] for i in new_idx)
    data = sum(n for n, d in zip(ch.lengths, ch.digests, strict=True) if d is not None)
    return Measure(
        chunks=count,
        unique=len(seen),
        avg_chunk=data // max(count, 1),
        new_chunks=len(new_idx),
        new_raw=new_raw,
        new_zstd=new_zstd,
        read_bytes=ch.read_bytes,
        seconds=round(ch.seconds, 3),
        gbps_read=round(ch.read_bytes / ch.seconds / 1e9, 3) if ch.seconds else 0.0,
        gbps_logical=round(size / ch.seconds / 1e9, 3) if ch.seconds else 0.0,
    )


def changed_spans(
    parent: Chunked, changed: tuple[tuple[int, int], ...], ch: Chunker, size: int
) -> list[tuple[int, int]]:
    """Spans to re-chunk when only `changed` differs: enclosing parent chunks (or aligned blocks)."""
    spans: list[tuple[int, int]] = []
    for off, n in changed:
        end = off + n
        if ch.kind == "fixed":
            s, e = off - off % ch.size, min(size, -(-end // ch.size) * ch.size)
        else:
            i = bisect.bisect_right(parent.offsets, off) - 1
            j = bisect.bisect_left(parent.offsets, end) - 1
            s, e = off, end
            if i >= 0 and parent.offsets[i] + parent.lengths[i] > off:
                s = parent.offsets[i]
            if j >= 0 and parent.offsets[j] + parent.lengths[j] > end - 1 >= parent.offsets[j]:
                e = parent.offsets[j] + parent.lengths[j]
        if spans and s <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], e))
        else:
            spans.append((s, e))
    return [(s, e - s) for s, e in spans]


def splice(parent: Chunked, fresh: Chunked, spans: list[tuple[int, int]]) -> Chunked:
    """The new manifest: the parent's chunks that overlap no span, plus the `fresh` chunks."""
    starts = [s for s, _ in spans]
    keep = []
    for i, (off, n) in enumerate(zip(parent.offsets, parent.lengths, strict=True)):
        k = bisect.bisect_right(starts, off + n - 1) - 1  # last span starting inside the chunk
        if k >= 0 and spans[k][0] + spans[k][1] > off:
            continue
        keep.append(i)
    rows = sorted(
        [(parent.offsets[i], parent.lengths[i], parent.digests[i]) for i in keep]
        + list(zip(fresh.offsets, fresh.lengths, fresh.digests, strict=True)),
        key=lambda r: r[0],
    )
    return Chunked(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        fresh.seconds,
        fresh.read_bytes,
    )


def _open(path: Path) -> mmap.mmap:
    with open(path, "rb") as f:
        return mmap.mmap(
            f.fileno(), 0, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ
        )


def run(quick: bool, cache: Path, only: list[str] | None) -> dict[str, object]:
    console = Console(width=170)
    size = 256 * MiB if quick else 2 * GiB
    imgs = build_images(cache, size, say=console.print)
    for p in (imgs.base, imgs.incr, imgs.reordered):
        warm(p)
    load_before = os.getloadavg()
    maps = {
        name: _open(p)
        for name, p in (("base", imgs.base), ("incr", imgs.incr), ("reordered", imgs.reordered))
    }
    extents = {
        name: data_extents(p)
        for name, p in (("base", imgs.base), ("incr", imgs.incr), ("reordered", imgs.reordered))
    }
    zeros = ZeroDigests()
    results: list[dict[str, object]] = []
    with ThreadPoolExecutor(2) as pool:
        for ch in CHUNKERS:
            if only and not any(o in ch.name for o in only):
                continue
            base = chunk_spans(maps["base"], _spans_of(extents["base"], ch, size), ch, size, zeros)
            row: dict[str, object] = {"chunker": ch.name, "kind": ch.kind, "size": ch.size}
            row["base"] = asdict(measure(maps["base"], base, set(), size, pool))
            known = {d for d in base.digests if d is not None}
            for name in ("incr", "reordered"):
                c = chunk_spans(maps[name], _spans_of(extents[name], ch, size), ch, size, zeros)
                row[f"{name}-full" if name == "incr" else name] = asdict(
                    measure(maps[name], c, known, size, pool)
                )
            spans = changed_spans(base, imgs.changed, ch, size)
            fresh = chunk_spans(maps["incr"], spans, ch, size, zeros)
            row["incr-changed"] = asdict(
                measure(maps["incr"], splice(base, fresh, spans), known, size, pool)
            )
            results.append(row)
            _print_row(console, row)
    out = {
        "machine": machine_info(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "image": {
            "size": imgs.size,
            "files": imgs.files,
            "file_bytes": imgs.file_bytes,
            "changed_ranges": len(imgs.changed),
            "changed_bytes": imgs.changed_bytes,
        },
        "results": results,
    }
    _print_table(console, out)
    return out


def _print_row(console: Console, row: dict[str, object]) -> None:
    b, i, c, r = (row[k] for k in ("base", "incr-full", "incr-changed", "reordered"))
    assert (
        isinstance(b, dict) and isinstance(i, dict) and isinstance(c, dict) and isinstance(r, dict)
    )
    console.print(
        f"{row['chunker']}: base {b['gbps_read']} GB/s, incr {i['new_zstd'] / MiB:.1f} "
        f"/ changed {c['new_zstd'] / MiB:.1f} / reordered {r['new_zstd'] / MiB:.1f} MiB new (zstd)"
    )


def _print_table(console: Console, out: dict[str, object]) -> None:
    t = Table(title="Chunking study: NEW MiB stored by the second import (zstd-1 per chunk; raw)")
    for col in (
        "chunker",
        "avg chunk",
        "base chunks",
        "base stored",
        "chunk+hash GB/s",
        "incr (re-read)",
        "incr (changed ranges)",
        "reordered",
    ):
        t.add_column(col, justify="right")
    results = out["results"]
    assert isinstance(results, list)
    for row in results:
        b, i, c, r = (row[k] for k in ("base", "incr-full", "incr-changed", "reordered"))
        t.add_row(
            row["chunker"],
            f"{b['avg_chunk'] / KiB:.1f} KiB",
            str(b["chunks"]),
            f"{b['new_zstd'] / MiB:.0f} ({b['new_raw'] / MiB:.0f})",
            f"{b['gbps_read']:.2f}",
            f"{i['new_zstd'] / MiB:.1f} ({i['new_raw'] / MiB:.1f})",
            f"{c['new_zstd'] / MiB:.1f} ({c['new_raw'] / MiB:.1f})",
            f"{r['new_zstd'] / MiB:.1f} ({r['new_raw'] / MiB:.1f})",
        )
    console.print(t)
    console.print(
        "targets (issue 2, 2 GiB image): incremental <= 130 MiB new, reordered <= 160 MiB new"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256 MiB images (smoke run)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--only", action="append", help="run chunkers whose name contains this")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = run(args.quick, args.cache, args.only)
    path = args.out or RESULTS / ("chunking-quick.json" if args.quick else "chunking.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
