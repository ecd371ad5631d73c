"""inspect_disk with the real qemu-img: formats recognised, every bad input refused clearly."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from disks_util import MiB, make_raw, qemu

from kiln import errors
from kiln.disks import inspect_disk
from kiln.errors import KilnError


@pytest.mark.parametrize("fmt", ["qcow2", "vmdk", "vpc", "vhdx"])
def test_inspect_disk_recognises_format_without_being_told(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"disk.{fmt}"
    opts = ["-o", "force_size=on"] if fmt == "vpc" else []
    qemu("qemu-img", "create", "-q", "-f", fmt, *opts, path, "8M")
    info = inspect_disk(path)
    assert info.format == fmt
    assert info.virtual_size == 8 * MiB
    assert info.path == path


def test_inspect_disk_raw_uses_file_size(tmp_path: Path) -> None:
    path = make_raw(tmp_path / "disk.img", 3 * 512, {0: b"x"})
    info = inspect_disk(path)
    assert (info.format, info.virtual_size, info.cluster_size) == ("raw", 1536, None)


def test_inspect_disk_fixed_vhd_is_vpc_not_raw(tmp_path: Path) -> None:
    # A fixed VHD has its footer at the end only; qemu-img's probe would call it raw.
    path = tmp_path / "fixed.vhd"
    qemu("qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed,force_size=on", path, "2M")
    info = inspect_disk(path)
    assert (info.format, info.virtual_size) == ("vpc", 2 * MiB)


def test_inspect_disk_explicit_format_alias(tmp_path: Path) -> None:
    path = tmp_path / "d.vhd"
    qemu("qemu-img", "create", "-q", "-f", "vpc", "-o", "force_size=on", path, "1M")
    assert inspect_disk(path, fmt="VHD").format == "vpc"


def _text(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_text("this is not a disk image\n")
    return path


def _truncated_qcow2(tmp: Path) -> Path:
    full = tmp / "full.qcow2"
    raw = make_raw(tmp / "src.raw", 4 * MiB, {MiB: b"\x11" * 65536, 3 * MiB: b"\x22" * 4096})
    qemu("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, full)
    data = full.read_bytes()
    path = tmp / "half.qcow2"
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt_qcow2_header(tmp: Path) -> Path:
    path = tmp / "corrupt.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", path, "4M")
    data = bytearray(path.read_bytes())
    data[20:24] = (40).to_bytes(4, "big")  # cluster_bits = 40
    path.write_bytes(bytes(data))
    return path


def _corrupt_qcow2_refcounts(tmp: Path) -> Path:
    path = tmp / "badref.qcow2"
    raw = make_raw(tmp / "src.raw", 4 * MiB, {0: b"\x33" * 65536})
    qemu("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, path)
    data = bytearray(path.read_bytes())
    refcount_table = int.from_bytes(data[48:56], "big")
    block = int.from_bytes(data[refcount_table : refcount_table + 8], "big")
    data[block : block + 16] = bytes(16)  # refcounts of the first clusters -> 0
    path.write_bytes(bytes(data))
    return path


def _qcow2_with_backing(tmp: Path) -> Path:
    base = make_raw(tmp / "base.raw", MiB, {0: b"secret"})
    path = tmp / "child.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", path)
    return path


def _qcow2_with_data_file(tmp: Path) -> Path:
    path = tmp / "ext.qcow2"
    qemu(
        "qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={tmp / 'host.dat'}", path, "1M"
    )
    return path


def _vmdk_flat(tmp: Path) -> Path:
    path = tmp / "flat.vmdk"
    qemu("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", path, "1M")
    return path


def _vmdk_descriptor_to_host_file(tmp: Path) -> Path:
    path = tmp / "evil.vmdk"
    path.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
        'createType="monolithicFlat"\n\nRW 8 FLAT "/etc/passwd" 0\n'
    )
    return path


def _vmdk_sparse_with_embedded_flat_extent(tmp: Path) -> Path:
    # A KDMV header with capacity 0 makes QEMU use the embedded descriptor, whose extent here is
    # a host file: qemu-img convert of this file really copies that file's bytes.
    secret = tmp / "secret.raw"
    secret.write_bytes(b"TOPSECRET".ljust(4096, b"\0"))
    path = tmp / "sparse.vmdk"
    qemu("qemu-img", "create", "-q", "-f", "vmdk", path, "1M")
    data = bytearray(path.read_bytes())
    desc_at, desc_len = (
        int.from_bytes(data[28 + 8 * i : 36 + 8 * i], "little") * 512 for i in (0, 1)
    )
    desc = bytes(data[desc_at : desc_at + desc_len]).rstrip(b"\0").decode()
    desc = re.sub(r'RW \d+ SPARSE ".*"', f'RW 8 FLAT "{secret}" 0', desc)
    desc = desc.replace('createType="monolithicSparse"', 'createType="monolithicFlat"')
    data[desc_at : desc_at + desc_len] = desc.encode().ljust(desc_len, b"\0")
    data[12:20] = bytes(8)  # capacity = 0
    path.write_bytes(bytes(data))
    return path


def _vmdk_with_parent(tmp: Path) -> Path:
    parent = tmp / "parent.vmdk"
    qemu("qemu-img", "create", "-q", "-f", "vmdk", parent, "1M")
    path = tmp / "child.vmdk"
    qemu("qemu-img", "create", "-q", "-f", "vmdk", "-b", parent, "-F", "vmdk", path)
    return path


def _qed(tmp: Path) -> Path:
    path = tmp / "d.qed"
    qemu("qemu-img", "create", "-q", "-f", "qed", path, "1M")
    return path


def _vdi(tmp: Path) -> Path:
    path = tmp / "d.vdi"
    qemu("qemu-img", "create", "-q", "-f", "vdi", path, "1M")
    return path


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.img"
    path.write_bytes(b"")
    return path


BAD_INPUTS: list[tuple[Callable[[Path], Path], errors.ErrorCode, str]] = [
    (_text, errors.InvalidDiskImage, "not a disk image"),
    (_empty, errors.InvalidDiskImage, "empty file"),
    (_truncated_qcow2, errors.InvalidDiskImage, "truncated qcow2"),
    (_corrupt_qcow2_header, errors.InvalidDiskImage, "not a valid qcow2 image"),
    (_corrupt_qcow2_refcounts, errors.InvalidDiskImage, "corrupt"),
    (_qcow2_with_backing, errors.UnsafeDiskImage, "backing file"),
    (_qcow2_with_data_file, errors.UnsafeDiskImage, "external data file"),
    (_vmdk_flat, errors.UnsafeDiskImage, "refers to other files"),
    (_vmdk_descriptor_to_host_file, errors.UnsafeDiskImage, "refers to other files"),
    (_vmdk_sparse_with_embedded_flat_extent, errors.UnsafeDiskImage, "refers to other files"),
    (_vmdk_with_parent, errors.UnsafeDiskImage, "backing file"),
    (_qed, errors.InvalidDiskImage, "qed disk images are not supported"),
    (_vdi, errors.InvalidDiskImage, "vdi disk images are not supported"),
]


@pytest.mark.parametrize(
    ("build", "code", "words"), BAD_INPUTS, ids=[b.__name__.strip("_") for b, _, _ in BAD_INPUTS]
)
def test_inspect_disk_refuses_bad_input(
    tmp_path: Path, build: Callable[[Path], Path], code: errors.ErrorCode, words: str
) -> None:
    path = build(tmp_path)
    with pytest.raises(KilnError) as caught:
        inspect_disk(path)
    # InvalidDiskImage and UnsafeDiskImage share the EC2 code; tell them apart by identity.
    assert caught.value.code is code
    assert words in caught.value.message
    assert path.name in caught.value.message
    assert "\n" not in caught.value.message


def test_inspect_disk_missing_path(tmp_path: Path) -> None:
    with pytest.raises(KilnError) as caught:
        inspect_disk(tmp_path / "nope.qcow2")
    assert caught.value.code is errors.InvalidParameterValue
    assert caught.value.message == f"disk image not found: {tmp_path / 'nope.qcow2'}"


def test_inspect_disk_refuses_wrong_explicit_format(tmp_path: Path) -> None:
    path = make_raw(tmp_path / "disk.raw", MiB, {})
    with pytest.raises(KilnError) as caught:
        inspect_disk(path, fmt="qcow2")
    assert caught.value.code is errors.InvalidDiskImage
    assert "not a valid qcow2 image" in caught.value.message
    with pytest.raises(KilnError) as caught:
        inspect_disk(path, fmt="qed")
    assert "unsupported disk image format 'qed'" in caught.value.message
