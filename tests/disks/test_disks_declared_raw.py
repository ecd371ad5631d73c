"""A disk declared raw is data: its bytes are never sniffed (docs/disks.md#safety-rules).

A guest may write anything at sector 0 of its disk, a raw upload may hold anything; only when
the caller names no format is the file identified and refused by its magic bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from disks_util import MiB, make_raw, qemu
from real_luks import luks_volume

from kiln import errors
from kiln.disks import data_extents, inspect_disk, raw_disk
from kiln.errors import KilnError


def _qcow2_header_with_backing(tmp: Path) -> bytes:
    path = tmp / "hdr.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", path)
    return path.read_bytes()[:65536]


def _luks_header(tmp: Path) -> bytes:
    return luks_volume(tmp / "hdr.luks", 3 * MiB)[: 2 * MiB]


@pytest.mark.parametrize(
    "header", [_qcow2_header_with_backing, _luks_header], ids=["qcow2-with-backing", "luks"]
)
def test_declared_raw_takes_any_header_as_data(
    tmp_path: Path, header: Callable[[Path], bytes]
) -> None:
    head = header(tmp_path)
    disk = make_raw(tmp_path / "guest.raw", 4 * MiB, {0: head, 3 * MiB: b"tail"})
    for info in (inspect_disk(disk, "raw"), inspect_disk(disk, "RAW"), raw_disk(disk)):
        assert (info.format, info.virtual_size) == ("raw", 4 * MiB)
        assert data_extents(info)[0].offset == 0
    with pytest.raises(KilnError) as caught:  # no declared format: probing and refusals stay
        inspect_disk(disk)
    assert caught.value.code in (errors.UnsafeDiskImage, errors.InvalidDiskImage)
    assert "backing file" in caught.value.message or "luks" in caught.value.message


def test_declared_raw_keeps_the_raw_rule(tmp_path: Path) -> None:
    odd = tmp_path / "odd.raw"
    odd.write_bytes(b"LUKS\xba\xbe" + bytes(100))
    with pytest.raises(KilnError) as caught:
        inspect_disk(odd, "raw")
    assert (
        caught.value.code is errors.InvalidDiskImage and "512-byte sectors" in caught.value.message
    )
    with pytest.raises(KilnError) as caught:
        raw_disk(tmp_path / "missing.raw")
    assert caught.value.message == f"disk image not found: {tmp_path / 'missing.raw'}"
    with pytest.raises(KilnError) as caught:
        raw_disk(tmp_path)
    assert "not a regular file" in caught.value.message
