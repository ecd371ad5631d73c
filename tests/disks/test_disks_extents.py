"""data_extents and overlay_changed_extents with the real qemu-img and qemu-io."""

from __future__ import annotations

from pathlib import Path

from disks_util import MiB, make_raw, qemu

from kiln.disks import (
    create_overlay,
    data_extents,
    inspect_disk,
    open_overlay_changes,
    overlay_changed_extents,
)
from kiln.types import Extent

GiB = 1024 * MiB


def test_data_extents_raw_lists_exactly_the_written_blocks(tmp_path: Path) -> None:
    path = make_raw(
        tmp_path / "d.raw",
        16 * MiB,
        {MiB: b"\x01" * 8192, 4 * MiB: b"\x02" * 4096, 4 * MiB + 4096: b"\x03" * 4096},
    )
    extents = data_extents(inspect_disk(path))
    # contiguous writes come back merged, holes left out
    assert extents == [Extent(MiB, 8192), Extent(4 * MiB, 8192)]


def test_data_extents_qcow2_lists_allocated_clusters(tmp_path: Path) -> None:
    path = tmp_path / "d.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", path, "16M")
    qemu(
        "qemu-io",
        "-f",
        "qcow2",
        "-c",
        "write -P 0x61 2M 64k",
        "-c",
        "write -P 0x62 2112k 64k",
        "-c",
        "write -z 8M 64k",
        path,
    )
    assert data_extents(inspect_disk(path)) == [Extent(2 * MiB, 128 * 1024)]


def test_data_extents_100_gib_sparse_raw_is_empty(tmp_path: Path) -> None:
    path = make_raw(tmp_path / "big.raw", 100 * GiB, {})
    info = inspect_disk(path)
    assert info.virtual_size == 100 * GiB
    assert data_extents(info) == []


def test_data_extents_100_gib_empty_qcow2_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "big.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", path, "100G")
    info = inspect_disk(path)
    assert info.virtual_size == 100 * GiB
    assert data_extents(info) == []


def test_overlay_changed_extents_lists_what_the_guest_wrote(tmp_path: Path) -> None:
    base = make_raw(tmp_path / "base.raw", 8 * MiB, {0: b"\xcc" * (2 * MiB)})
    overlay = tmp_path / "vol.qcow2"
    create_overlay(base, overlay)
    assert overlay_changed_extents(overlay) == []
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 0xab 1M 64k", overlay)
    assert overlay_changed_extents(overlay) == [Extent(MiB, 64 * 1024)]


def test_overlay_changed_extents_rounds_to_clusters_and_keeps_zeroing(tmp_path: Path) -> None:
    base = make_raw(tmp_path / "base.raw", 8 * MiB, {0: b"\xcc" * (2 * MiB)})
    overlay = tmp_path / "vol.qcow2"
    create_overlay(base, overlay, cluster_size=4096)
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 0xab 5000 100", "-c", "write -z 1M 8k", overlay)
    # the 100-byte write dirties one 4 KiB cluster; zeroing over base data is a change too
    assert overlay_changed_extents(overlay) == [Extent(4096, 4096), Extent(MiB, 8192)]
    # the overlay reads the base where it was not written
    out = qemu("qemu-io", "-f", "qcow2", "-c", "read -P 0xcc 0 4096", overlay)
    assert "read 4096/4096" in out


def test_open_overlay_changes_reads_the_written_bytes_only(tmp_path: Path) -> None:
    base = make_raw(tmp_path / "base.raw", 8 * MiB, {0: b"\xcc" * (4 * MiB)})
    overlay = tmp_path / "vol.qcow2"
    create_overlay(base, overlay)
    qemu(
        "qemu-io",
        "-f",
        "qcow2",
        "-c",
        "write -P 0xab 1M 64k",
        "-c",
        "write -z 2M 64k",
        "-c",
        "write -P 0x5e 6M 128k",
        overlay,
    )
    changed = overlay_changed_extents(overlay)
    assert changed == [
        Extent(MiB, 64 * 1024),
        Extent(2 * MiB, 64 * 1024),
        Extent(6 * MiB, 128 * 1024),
    ]
    full = tmp_path / "full.raw"
    qemu("qemu-img", "convert", "-f", "qcow2", "-O", "raw", overlay, full)
    whole = full.read_bytes()
    with open_overlay_changes(overlay, tmp_path / "tmp") as source:
        assert source.size == 8 * MiB
        for e in changed:
            assert source.pread(e.offset, e.length) == whole[e.offset : e.end]
        assert source.pread(MiB, 4) == b"\xab" * 4
        assert source.pread(2 * MiB, 4) == bytes(4)  # zeroed over base data
        # only the changed data was copied, not the base
        assert source.path.stat().st_blocks * 512 <= 256 * 1024
