"""A damaged chunk can be healed: verify (or a failed read) quarantines it, and the next import
of an intact disk stores it again; `kiln store verify --repair` fixes what it can.
See docs/storage-format.md#quarantine."""

from __future__ import annotations

import os
from pathlib import Path

from store_helpers import make_disk, same_bytes

STORE = "regions/us-east-1/store"


def _packs(data_dir: Path, region: str = "us-east-1") -> set[Path]:
    return {p for p in (data_dir / f"regions/{region}/store/packs").rglob("*") if p.is_file()}


def _flip(pack: Path) -> None:
    blob = bytearray(pack.read_bytes())
    blob[len(blob) // 3] ^= 0x01  # inside a chunk, not the pack's table of contents
    pack.write_bytes(bytes(blob))


def _import(kiln, disk: Path, *args: str) -> dict:  # type: ignore[no-untyped-def]
    res = kiln("snapshot", "import", str(disk), *args, "--json").json()
    assert isinstance(res, dict)
    return res


def _exports_bit_exact(kiln, snap: str, disk: Path, tmp_path: Path, *args: str) -> bool:  # type: ignore[no-untyped-def]
    out = tmp_path / f"{snap}.{len(list(tmp_path.iterdir()))}.raw"
    kiln("snapshot", "export", snap, str(out), *args)
    ok = same_bytes(disk, out)
    out.unlink()
    return ok


def test_reimporting_the_intact_disk_heals_a_damaged_chunk(
    kiln, small_disk: Path, tmp_path: Path, data_dir: Path
) -> None:
    old = _import(kiln, small_disk)["snapshot_id"]
    _flip(sorted(_packs(data_dir))[0])
    r = kiln("store", "verify", "--json", check=False)
    assert r.rc == 1
    rep = r.json()
    assert len(rep["damaged_chunks"]) == 1 and rep["damaged_snapshots"] == [old]
    assert list((data_dir / STORE / "quarantine").iterdir())  # verify recorded what it found

    new = _import(kiln, small_disk)
    assert new["new_chunks"] == 1  # the damaged chunk was stored again, nothing else
    assert _exports_bit_exact(kiln, new["snapshot_id"], small_disk, tmp_path)
    assert _exports_bit_exact(
        kiln, old, small_disk, tmp_path
    )  # the old snapshot reads the good copy
    r = kiln("store", "verify", "--json", check=False)
    assert r.rc == 0, r.out
    assert r.json()["ok"] is True and len(r.json()["superseded_packs"]) == 1

    # the good copy is found from now on: never stored over and over
    assert _import(kiln, small_disk)["new_chunks"] == 0
    # GC stays safe: it drops the damaged copy and keeps every snapshot whole
    kiln("store", "gc", "--grace-seconds", "0")
    r = kiln("store", "verify", "--json", check=False)
    assert r.rc == 0 and r.json()["superseded_packs"] == [] and r.json()["damaged_packs"] == []
    assert not list((data_dir / STORE / "quarantine").iterdir())
    assert _exports_bit_exact(kiln, old, small_disk, tmp_path)


def test_a_failed_read_quarantines_the_chunk(
    kiln, small_disk: Path, tmp_path: Path, data_dir: Path
) -> None:
    """No verify in between: the export that finds the damage records it, and an import of the
    intact disk with the damaged snapshot as its parent (reading the whole disk) heals it."""
    old = _import(kiln, small_disk)["snapshot_id"]
    _flip(sorted(_packs(data_dir))[0])
    r = kiln("snapshot", "export", old, str(tmp_path / "x.raw"), check=False)
    assert r.rc != 0 and "damaged" in r.err
    new = _import(kiln, small_disk, "--parent", old)
    assert new["new_chunks"] == 1
    assert _exports_bit_exact(kiln, old, small_disk, tmp_path)
    assert _exports_bit_exact(kiln, new["snapshot_id"], small_disk, tmp_path)
    assert kiln("store", "verify", "--json", check=False).rc == 0


def test_verify_repair_fixes_what_it_can_and_names_what_it_cannot(
    kiln, small_disk: Path, tmp_path: Path, data_dir: Path
) -> None:
    # a: its chunks are in this store and in eu-west-1's; b: only here
    a = _import(kiln, small_disk)["snapshot_id"]
    a_packs = _packs(data_dir)
    _import(kiln, small_disk, "--region", "eu-west-1")
    lonely = make_disk(tmp_path / "lonely.raw", 1 << 20, [(0, os.urandom(100_000))])
    b = _import(kiln, lonely)["snapshot_id"]
    (b_pack,) = _packs(data_dir) - a_packs
    _flip(sorted(a_packs)[0])
    _flip(b_pack)
    rep = kiln("store", "verify", "--json", check=False).json()
    assert set(rep["damaged_snapshots"]) == {a, b} and len(rep["damaged_chunks"]) == 2

    r = kiln("store", "verify", "--repair", "--json", check=False)
    assert r.rc == 1
    fix = r.json()
    assert [c["source"] for c in fix["copied"]] == ["eu-west-1"]  # a's chunk, from the other region
    assert fix["packs_rewritten"] == [sorted(a_packs)[0].name]  # its bad copy is dropped
    (lost,) = fix["unrepairable"]  # b's chunk has no intact copy anywhere
    b_chunk = lost["chunk"]
    assert lost["snapshots"] == [b] and b_chunk in rep["damaged_chunks"]
    assert fix["after"]["damaged_snapshots"] == [b]
    assert _exports_bit_exact(kiln, a, small_disk, tmp_path)

    r = kiln("store", "verify", "--repair", check=False)  # the text form names it on one line
    assert r.rc == 1
    assert f"cannot repair chunk {b_chunk}: breaks {b}" in r.out.splitlines()
    assert r.err.startswith("error: ") and len(r.err.strip().splitlines()) == 1

    # a good copy from outside heals b; --repair then rewrites the pack that holds the bad copy
    _import(kiln, lonely)
    assert kiln("store", "verify", "--json", check=False).json()["superseded_packs"] == [
        b_pack.name
    ]
    r = kiln("store", "verify", "--repair", "--json", check=False)
    assert r.rc == 0, r.out
    fix = r.json()
    assert fix["packs_rewritten"] == [b_pack.name] and fix["unrepairable"] == []
    assert fix["after"]["ok"] is True and fix["after"]["superseded_packs"] == []
    assert not b_pack.exists()
    assert not list((data_dir / STORE / "quarantine").iterdir())
    assert _exports_bit_exact(kiln, b, lonely, tmp_path)
    assert _exports_bit_exact(kiln, a, small_disk, tmp_path)


def test_gc_keeps_the_only_copy_of_a_quarantined_chunk(
    kiln, small_disk: Path, data_dir: Path
) -> None:
    _import(kiln, small_disk)
    victim = sorted(_packs(data_dir))[0]
    _flip(victim)
    before = kiln("store", "verify", "--json", check=False).json()
    kiln("store", "gc", "--grace-seconds", "0")
    assert victim.exists()  # the damaged copy is the last one: kept (and still quarantined)
    after = kiln("store", "verify", "--json", check=False).json()
    assert after["damaged_chunks"] == before["damaged_chunks"] and after["missing_chunks"] == []


def test_a_copy_into_a_region_stores_a_quarantined_chunk_again(
    small_disk: Path, tmp_path: Path
) -> None:
    """copy_snapshot (CopySnapshot, CopyImage) treats a quarantined chunk as absent too."""
    from kiln.disks import inspect_disk
    from kiln.store import copy_snapshot, open_store, verify

    src, dst = open_store((tmp_path / "src").as_uri()), open_store((tmp_path / "dst").as_uri())
    src.import_disk(inspect_disk(small_disk), "snap-0000000000000000a")
    dst.import_disk(inspect_disk(small_disk), "snap-0000000000000000b")
    _flip(sorted(p for p in (tmp_path / "dst/packs").rglob("*") if p.is_file())[0])
    assert not verify(dst).ok
    res = copy_snapshot(src, dst, "snap-0000000000000000a", "snap-0000000000000000c")
    assert res.chunks_sent == 1
    assert verify(dst).ok
    for snap in ("snap-0000000000000000b", "snap-0000000000000000c"):
        out = tmp_path / f"{snap}.raw"
        dst.restore(snap, out)
        assert same_bytes(small_disk, out)
