"""Imports cut segments in parallel and stitch them: the chunks must be exactly the ones a serial
cut from each span's start gives, whatever the data, or snapshots would stop deduplicating."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from store_helpers import disk_like_bytes, make_disk, same_bytes

from kiln.disks import data_extents, inspect_disk
from kiln.store import importer, open_store
from kiln.store import store as store_module
from kiln.store.chunker import Chunker, ChunkerConfig

MIB = 1024 * 1024
SMALL = ChunkerConfig("fastcdc", avg=4096, min=1024, max=16384)


def _serial_chunks(data: bytes, base: int, config: ChunkerConfig) -> list[tuple[int, int]]:
    out = []
    pos = base
    for ln in Chunker(config).cut(data, base, True):
        out.append((pos, ln))
        pos += ln
    return out


def _runs(n: int, seed: int) -> bytes:
    """Long runs of one byte value (no content-defined cut points: chunks end at max size)
    between stretches of real data, so segments must fall back to the serial cut."""
    rng = random.Random(seed)
    parts = []
    size = 0
    while size < n:
        part = (
            bytes([rng.randrange(1, 256)]) * rng.randrange(1, 200_000)
            if rng.random() < 0.5
            else disk_like_bytes(rng.randrange(1, 100_000), rng.randrange(1 << 30))
        )
        parts.append(part)
        size += len(part)
    return b"".join(parts)[:n]


@pytest.mark.parametrize("workers", ["threads", "processes"])
@pytest.mark.parametrize("kind", ["disk-like", "random", "runs", "text"])
def test_parallel_cut_equals_serial_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, workers: str
) -> None:
    monkeypatch.setattr(importer, "SEGMENT", 64 * 1024)  # many seams for little data
    if workers == "processes":
        monkeypatch.setattr(store_module, "PROCESS_MIN_BYTES", 0)
    else:
        monkeypatch.setattr(store_module, "PROCESS_MIN_BYTES", 1 << 62)
    n = 3 * MIB + 12345
    data = {
        "disk-like": lambda: disk_like_bytes(n, 7),
        "random": lambda: os.urandom(n),
        "runs": lambda: _runs(n, 3),
        "text": lambda: (b"the quick brown fox jumps over the lazy dog\n" * (n // 44 + 1))[:n],
    }[kind]()
    disk = make_disk(tmp_path / "d.raw", 16 * MIB, [(MIB + 512, data)])
    store = open_store((tmp_path / "store").as_uri(), chunker=SMALL)
    first = store.import_disk(inspect_disk(disk), "snap-1")
    m = store.manifest("snap-1")
    assert first.new_chunks == len(m.chunk_ids())
    got = [(e.offset, e.length) for e in m.entries()]
    raw = disk.read_bytes()
    want = []
    for ext in data_extents(inspect_disk(disk)):  # what the import reads: the file's data extents
        for o, ln in _serial_chunks(raw[ext.offset : ext.end], ext.offset, SMALL):
            if raw[o : o + ln].count(0) != ln:  # all-zero chunks are stored as nothing
                want.append((o, ln))
    assert len(want) > 150
    assert got == want
    # and the snapshot reads back bit-exact
    out = tmp_path / "out.raw"
    store.restore("snap-1", out)
    assert out.read_bytes() == disk.read_bytes()
    again = store.import_disk(
        inspect_disk(disk), "snap-2"
    )  # the same chunks again: nothing new is stored
    assert again.new_chunks == 0 and again.new_stored_bytes == 0
    assert store.manifest("snap-2").ids == m.ids


def test_large_import_through_worker_processes_round_trips(kiln, tmp_path: Path) -> None:
    """A disk with more data than PROCESS_MIN_BYTES goes through the worker processes (the
    `kiln` command as users run it): bit-exact back, and a re-import stores nothing."""
    n = store_module.PROCESS_MIN_BYTES + 16 * MIB
    text = disk_like_bytes(4 * MIB, 11)
    disk = make_disk(
        tmp_path / "big.raw",
        2 * n,
        [
            (0, os.urandom(n // 2)),
            (n // 2 + 4096, text * ((n // 2) // len(text))),
            (n + 8 * MIB, text),
        ],
    )
    first = kiln("snapshot", "import", str(disk), "--json").json()
    assert first["data_bytes"] >= store_module.PROCESS_MIN_BYTES
    assert first["new_chunks"] > 0 and first["new_stored_bytes"] < first["data_bytes"]
    again = kiln("snapshot", "import", str(disk), "--json").json()
    assert again["new_chunks"] == 0 and again["new_stored_bytes"] == 0
    assert again["chunks"] == first["chunks"]
    out = tmp_path / "out.raw"
    kiln("snapshot", "export", again["snapshot_id"], str(out))
    assert same_bytes(disk, out)
    report = kiln("store", "verify", "--json").json()
    assert report["ok"] and report["chunks_checked"] >= first["new_chunks"]
