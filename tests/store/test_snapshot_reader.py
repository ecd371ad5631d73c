"""SnapshotReader reads a file of a stored ext4 image by its blocks, fetching only the chunks
that hold them (what an offline filesystem scan of a snapshot needs)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from kiln.disks import raw_disk
from kiln.store import LocalBackend, SnapshotStore
from kiln.store.conformance import RecordingBackend
from kiln.store.reader import CACHE_CHUNKS

BLOCK = 4096
SNAP = "snap-0000000000000000e"
Stored = tuple[
    SnapshotStore, "CountingBackend", Path, bytes
]  # store, its backend, image, file bytes


class CountingBackend(RecordingBackend):
    """Counts ranged reads of packs: each is one chunk (or one run of chunks) fetched."""

    def __init__(self, inner: LocalBackend) -> None:
        super().__init__(inner)
        self.pack_reads = 0

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if name.startswith("packs/"):
            self.pack_reads += 1
        return super().get_range(name, offset, length)


def _ext4_image(tmp: Path, files: dict[str, bytes], size: int = 32 << 20) -> Path:
    """An ext4 image built from a directory with ``mke2fs -d`` (no mount, no loop device)."""
    src = tmp / "root"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    img = tmp / "fs.raw"
    with open(img, "wb") as f:
        f.truncate(size)
    subprocess.run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-b", str(BLOCK), "-d", str(src), str(img)],
        check=True,
        capture_output=True,
    )
    return img


def _extents(img: Path, path: str) -> list[tuple[int, int, int]]:
    """(first logical block, first physical block, block count) of the file, from debugfs."""
    out = subprocess.run(
        ["debugfs", "-R", f"stat {path}", str(img)], check=True, capture_output=True, text=True
    ).stdout
    found = []
    for lo, hi, plo in re.findall(r"\((\d+)(?:-(\d+))?\):(\d+)", out.split("EXTENTS:", 1)[1]):
        found.append((int(lo), int(plo), int(hi or lo) - int(lo) + 1))
    assert found, out
    return found


@pytest.fixture
def stored(tmp_path: Path) -> Stored:
    wanted = os.urandom(150_000)
    img = _ext4_image(tmp_path, {"hello.bin": wanted, "filler.bin": os.urandom(3_000_000)})
    backend = CountingBackend(LocalBackend(tmp_path / "store"))
    store = SnapshotStore(backend, scratch=tmp_path / "scratch")
    store.import_disk(raw_disk(img), SNAP)
    return store, backend, img, wanted


def test_reader_reads_a_file_by_its_blocks_and_fetches_only_its_chunks(stored: Stored) -> None:
    store, backend, img, wanted = stored
    reader = store.reader(SNAP)
    assert reader.size == img.stat().st_size
    m = store.manifest(SNAP)
    backend.pack_reads = 0
    got = bytearray(len(wanted) + BLOCK)
    spans, reads = [], []
    for logical, physical, count in _extents(img, "/hello.bin"):
        assert (
            f"{physical}"
            in subprocess.run(
                ["debugfs", "-R", f"bmap /hello.bin {logical}", str(img)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        data = reader.read(physical * BLOCK, count * BLOCK)
        got[logical * BLOCK : logical * BLOCK + len(data)] = data
        reads.append(data)
        spans.append((physical * BLOCK, (physical + count) * BLOCK))
    assert bytes(got[: len(wanted)]) == wanted
    # only the chunks covering the file's blocks were fetched, one read each
    covering = {
        i
        for i in range(len(m))
        for lo, hi in spans
        if m.offsets[i] < hi and m.offsets[i] + m.lengths[i] > lo
    }
    assert reader.chunks_read == len(covering) == backend.pack_reads
    assert len(covering) <= 10 < len(m) / 5  # a few chunks, not the image (~80 chunks of data)
    if len(covering) <= CACHE_CHUNKS:  # read again: served from the cache of the last chunks
        assert reader.read(spans[0][0], spans[0][1] - spans[0][0]) == reads[0]
        assert backend.pack_reads == len(covering)


def test_reader_holes_and_the_end_of_the_disk(stored: Stored) -> None:
    store, backend, img, _ = stored
    reader = store.reader(SNAP)
    m = store.manifest(SNAP)
    raw = img.read_bytes()
    last = m.offsets[len(m) - 1] + m.lengths[len(m) - 1]
    assert last < reader.size - 2 * BLOCK  # the image's end is a hole, never stored
    backend.pack_reads = 0
    assert reader.read(reader.size - 2 * BLOCK, BLOCK) == bytes(BLOCK)  # a hole: zeros, no fetch
    assert backend.pack_reads == 0
    assert reader.read(reader.size - 100, 4096) == bytes(100)  # short at the end, like pread
    assert reader.read(reader.size, 10) == b"" and reader.read(0, 0) == b""
    assert reader.read(1024, 2048) == raw[1024:3072]  # the ext4 superblock, across a chunk or not
    with pytest.raises(ValueError):
        reader.read(-1, 10)
