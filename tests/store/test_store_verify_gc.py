"""verify finds damage and names the snapshots it hurts; gc sweeps safely beside imports."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from store_helpers import make_disk, same_bytes

from kiln.disks import inspect_disk
from kiln.store import gc, open_store, verify


def _pack_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "regions/us-east-1/store/packs").rglob("*") if p.is_file())


def test_verify_finds_a_flipped_byte(
    kiln, small_disk: Path, tmp_path: Path, data_dir: Path
) -> None:
    a = kiln("snapshot", "import", str(small_disk), "--json").json()["snapshot_id"]
    other = make_disk(tmp_path / "o.raw", 1 << 20, [(0, os.urandom(100_000))])
    b = kiln("snapshot", "import", str(other), "--json").json()["snapshot_id"]
    assert kiln("store", "verify", "--json").json()["ok"] is True
    victim = _pack_files(data_dir)[0]
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 3] ^= 0x01  # inside a chunk, not the pack's table of contents
    victim.write_bytes(bytes(blob))
    r = kiln("store", "verify", "--json", check=False)
    assert r.rc == 1
    rep = r.json()
    assert rep["damaged_packs"] == [victim.name]
    assert len(rep["damaged_chunks"]) == 1
    hurt = set(rep["damaged_snapshots"])
    assert hurt and hurt <= {a, b}
    # the damaged snapshot cannot be exported silently
    bad = sorted(hurt)[0]
    r = kiln("snapshot", "export", bad, str(tmp_path / "x.raw"), check=False)
    assert r.rc != 0 and "damaged" in r.err


def test_gc_sweeps_chunks_of_deleted_snapshots(small_disk: Path, tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    keep = make_disk(tmp_path / "k.raw", 1 << 20, [(0, os.urandom(200_000))])
    store.import_disk(inspect_disk(small_disk), "snap-0000000000000000a")
    store.import_disk(inspect_disk(keep), "snap-0000000000000000b")
    before = sum(o.size for o in store.backend.list("packs/"))
    store.delete("snap-0000000000000000a")
    rep = gc(store, grace_seconds=0)
    assert rep.chunks_deleted > 0 and rep.packs_deleted >= 1
    after = sum(o.size for o in store.backend.list("packs/"))
    assert after < before / 5 and rep.bytes_freed > 0
    assert verify(store).ok
    out = tmp_path / "out.raw"
    store.restore("snap-0000000000000000b", out)
    assert same_bytes(keep, out)


def test_gc_beside_a_concurrent_import_loses_nothing(small_disk: Path, tmp_path: Path) -> None:
    """GC runs in a loop (grace 0) while imports write and reuse chunks, including chunks of a
    deleted snapshot that GC would otherwise sweep."""
    store = open_store((tmp_path / "store").as_uri())
    store.import_disk(inspect_disk(small_disk), "snap-00000000000000001")
    store.delete("snap-00000000000000001")  # its chunks are garbage now, and about to be reused
    stop = threading.Event()
    sweeps: list[int] = []

    def collector() -> None:
        while not stop.is_set():
            sweeps.append(gc(store, grace_seconds=0).chunks_deleted)

    t = threading.Thread(target=collector)
    t.start()
    try:
        for i in range(2, 6):
            store.import_disk(inspect_disk(small_disk), f"snap-0000000000000000{i}")
    finally:
        stop.set()
        t.join()
    assert len(sweeps) >= 2
    assert verify(store).ok
    for i in range(2, 6):
        out = tmp_path / f"out{i}.raw"
        store.restore(f"snap-0000000000000000{i}", out)
        assert same_bytes(small_disk, out)


def test_stale_lease_of_a_killed_import_does_not_hold_back_gc(
    small_disk: Path, tmp_path: Path
) -> None:
    store = open_store((tmp_path / "store").as_uri())
    store.import_disk(inspect_disk(small_disk), "snap-0000000000000000a")
    store.delete("snap-0000000000000000a")
    lease = store.take_lease("snap-0000000000000000b")  # as a killed import leaves it
    old = time.time() - 2 * 3600
    os.utime(tmp_path / "store" / lease, (old, old))
    rep = gc(store, grace_seconds=0)
    assert rep.packs_deleted >= 1
    assert not list(store.backend.list("leases/"))


def test_fresh_lease_protects_packs_written_since_it_started(
    small_disk: Path, tmp_path: Path
) -> None:
    store = open_store((tmp_path / "store").as_uri())
    store.take_lease("snap-0000000000000000b")  # a running import, started just now
    store.import_disk(inspect_disk(small_disk), "snap-0000000000000000a")
    store.delete("snap-0000000000000000a")
    rep = gc(store, grace_seconds=0)
    assert rep.packs_deleted == 0  # they may be the running import's


def test_gc_keeps_a_small_pack_whose_chunks_are_all_live(tmp_path: Path) -> None:
    """A pack of one tiny chunk is mostly table of contents; GC must not "repack" it (that
    writes the same bytes under the same name) and then delete it as the old pack."""
    disk = tmp_path / "tiny.raw"
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
        f.write(b"end of disk" * 100)
    store = open_store((tmp_path / "store").as_uri())
    store.import_disk(inspect_disk(disk), "snap-0000000000000000b")
    for _ in range(2):
        gc(store, grace_seconds=0)
    assert verify(store).ok
    out = tmp_path / "out.raw"
    store.restore("snap-0000000000000000b", out)
    assert same_bytes(disk, out)


def test_import_reusing_a_pack_that_gc_is_deleting_loses_nothing(
    small_disk: Path, tmp_path: Path
) -> None:
    """The last window: another process's import reuses chunks of a pack after GC decided to
    delete it. The import touches the pack and finds GC's marker, so it stores them itself."""
    gc_side = open_store((tmp_path / "store").as_uri())
    importer_side = open_store(
        (tmp_path / "store").as_uri()
    )  # its own index, as another process has
    importer_side.import_disk(inspect_disk(small_disk), "snap-00000000000000001")
    importer_side.delete("snap-00000000000000001")  # its packs are garbage now
    importer_side.index.refresh()
    ran: list[object] = []
    delete = gc_side.backend.delete

    def delete_after_an_import(name: str) -> None:
        if name.startswith("packs/") and not ran:  # GC has decided: run a whole import now
            ran.append(
                importer_side.import_disk(inspect_disk(small_disk), "snap-00000000000000002")
            )
        delete(name)

    gc_side.backend.delete = delete_after_an_import  # type: ignore[method-assign]  # a hook
    report = gc(gc_side, grace_seconds=0)
    assert ran and report.packs_deleted >= 1
    assert verify(gc_side).ok
    out = tmp_path / "out.raw"
    gc_side.restore("snap-00000000000000002", out)
    assert same_bytes(small_disk, out)
