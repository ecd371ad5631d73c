"""Round trips through the real qemu-img: raw -> every export format -> raw, bit-exact."""

from __future__ import annotations

from pathlib import Path

import pytest
from disks_util import DISK_SIZE, DISK_WRITES, MiB, make_raw

from kiln import errors
from kiln.disks import (
    EXPORT_FORMATS,
    convert_raw,
    data_extents,
    inspect_disk,
    open_raw_source,
)
from kiln.disks.extents import raw_data_extents
from kiln.errors import KilnError
from kiln.types import Extent


def _covered(extents: list[Extent], offset: int, length: int) -> bool:
    return any(e.offset <= offset and offset + length <= e.end for e in extents)


@pytest.mark.parametrize("fmt", [f for f in EXPORT_FORMATS if f != "raw"])
def test_round_trip_is_bit_exact(tmp_path: Path, fmt: str) -> None:
    src = make_raw(tmp_path / "src.raw", DISK_SIZE, DISK_WRITES)
    out = tmp_path / f"disk.{fmt}"
    seen: list[tuple[int, int]] = []
    convert_raw(src, out, fmt, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (DISK_SIZE, DISK_SIZE)

    info = inspect_disk(out)
    assert (info.format, info.virtual_size) == (fmt, DISK_SIZE)
    extents = data_extents(info)
    for offset, data in DISK_WRITES.items():
        assert _covered(extents, offset, len(data)), (offset, extents)
    if fmt != "vhdx":  # qemu's vhdx driver reports no allocation status: all of it is "data"
        assert sum(e.length for e in extents) < DISK_SIZE // 2

    with open_raw_source(info, tmp_path / "tmp") as source:
        assert source.temporary and source.path.parent == tmp_path / "tmp"
        assert source.size == DISK_SIZE
        assert source.path.read_bytes() == src.read_bytes()
        assert source.pread(MiB, 256) == bytes(range(256))
        # holes stay holes in the temporary raw file
        assert sum(e.length for e in raw_data_extents(source.path, DISK_SIZE)) < DISK_SIZE // 2
        tmp_file = source.path
    assert not tmp_file.exists()

    back = tmp_path / "back.raw"
    with open_raw_source(info, tmp_path / "tmp") as source:
        convert_raw(source.path, back, "raw")
    assert back.read_bytes() == src.read_bytes()


def test_open_raw_source_raw_is_the_file_itself(tmp_path: Path) -> None:
    src = make_raw(tmp_path / "src.raw", DISK_SIZE, DISK_WRITES)
    with open_raw_source(inspect_disk(src), tmp_path / "tmp") as source:
        assert source.path == src and not source.temporary
        assert source.pread(DISK_SIZE - 512, 1024) == b"\x77" * 512
    assert src.exists() and not (tmp_path / "tmp").exists()


def test_convert_raw_export_to_raw_stays_sparse(tmp_path: Path) -> None:
    src = make_raw(tmp_path / "src.raw", 64 * MiB, {32 * MiB: b"\x09" * 4096})
    out = tmp_path / "out.raw"
    convert_raw(src, out, "raw")
    assert out.read_bytes() == src.read_bytes()
    assert out.stat().st_blocks * 512 < MiB


def test_convert_raw_refuses_unknown_format_and_leaves_nothing(tmp_path: Path) -> None:
    src = make_raw(tmp_path / "src.raw", MiB, {})
    with pytest.raises(KilnError) as caught:
        convert_raw(src, tmp_path / "out.qed", "qed")
    assert caught.value.code is errors.InvalidParameterValue
    assert "unsupported export format 'qed'" in caught.value.message
    assert not (tmp_path / "out.qed").exists()


def test_convert_raw_failure_is_one_line_and_removes_partial_output(tmp_path: Path) -> None:
    src = make_raw(tmp_path / "src.raw", MiB, {})
    out = tmp_path / "missing-dir" / "out.qcow2"
    with pytest.raises(KilnError) as caught:
        convert_raw(src, out, "qcow2")
    assert "cannot write qcow2 image out.qcow2" in caught.value.message
    assert "\n" not in caught.value.message
    assert not out.exists()
