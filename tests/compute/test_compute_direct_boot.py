"""Direct kernel boot (kiln/compute/direct_boot.py): the syslinux.cfg parser, the kernel and
initrd taken from a real baked micro image, the cache beside a base, and the firmware fallback."""

from __future__ import annotations

import json
import lzma
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import zstandard

from kiln.bake import small_kernel
from kiln.bake.disk import DiskLayout
from kiln.bake.micro import KERNEL_ARGS, BakeResult, build_micro_image
from kiln.compute import direct_boot as db
from kiln.compute.driver import DiskSpec, VmSpec
from kiln.compute.qemu import QemuDriver
from kiln.runtime.volume_disks import create_volume_disk, remove_bases

MICRO_CFG = (
    "DEFAULT kiln\nPROMPT 0\nTIMEOUT 0\nLABEL kiln\n  LINUX /vmlinuz\n  INITRD /initrd.img\n"
    "  APPEND root=LABEL=kiln-root console=ttyS0 nokaslr\n"
)
BOOT = DiskLayout().boot_offset
ENV = {"MTOOLS_SKIP_CHECK": "1"}


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory) -> BakeResult:
    d = tmp_path_factory.mktemp("micro")
    return build_micro_image(d / "micro.raw", d / "work", small=False)  # the kernel + initrd


def _boot_file(disk: Path, name: str, dest: Path) -> bytes:
    subprocess.run(["mcopy", "-n", "-i", f"{disk}@@{BOOT}", f"::{name}", dest], check=True, env=ENV)
    return dest.read_bytes()


def _copy_with_cfg(micro: BakeResult, tmp: Path, cfg: str) -> Path:
    disk = tmp / "disk.raw"
    shutil.copyfile(micro.path, disk)
    (tmp / "syslinux.cfg").write_text(cfg)
    subprocess.run(
        ["mcopy", "-o", "-i", f"{disk}@@{BOOT}", tmp / "syslinux.cfg", "::syslinux.cfg"],
        check=True,
        env=ENV,
    )
    return disk


def test_the_micro_config_boots_its_default_label_with_syslinux_command_line() -> None:
    entry = db.parse_syslinux(MICRO_CFG)
    assert entry == db.BootEntry(
        "/vmlinuz", "/initrd.img", "root=LABEL=kiln-root console=ttyS0 nokaslr"
    )
    # what a firmware boot's dmesg shows syslinux passing
    assert db.syslinux_cmdline(entry) == (
        "BOOT_IMAGE=/vmlinuz root=LABEL=kiln-root console=ttyS0 nokaslr initrd=/initrd.img"
    )
    inline = db.parse_syslinux("DEFAULT a\nLABEL a\nKERNEL vmlinuz\nAPPEND initrd=/i.gz ro\n")
    assert inline == db.BootEntry("vmlinuz", "/i.gz", "initrd=/i.gz ro")
    assert db.syslinux_cmdline(inline) == "BOOT_IMAGE=vmlinuz initrd=/i.gz ro"


@pytest.mark.parametrize(
    "cfg",
    [
        "UI menu.c32\nDEFAULT kiln\nLABEL kiln\nLINUX /vmlinuz\n",  # a menu
        "DEFAULT kiln\nPROMPT 1\nTIMEOUT 0\nLABEL kiln\nLINUX /vmlinuz\n",  # waits for a key
        "DEFAULT kiln\nLABEL kiln\nKERNEL chain.c32\nAPPEND hd0 1\n",  # a module, not Linux
        "INCLUDE other.cfg\nDEFAULT kiln\nLABEL kiln\nLINUX /vmlinuz\n",
        "DEFAULT nothere\nLABEL kiln\nLINUX /vmlinuz\n",
        "DEFAULT kiln\nLABEL kiln\nLINUX /vmlinuz\nINITRD /ucode.img,/initrd.img\n",
    ],
)
def test_configs_whose_outcome_is_not_certain_boot_through_the_firmware(cfg: str) -> None:
    with pytest.raises(db.NotDirect):
        db.parse_syslinux(cfg)


def test_a_baked_micro_image_gives_its_own_kernel_uncompressed_and_its_initrd_as_cpio(
    micro: BakeResult, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    boot = db.extract(micro.path, out)
    args = KERNEL_ARGS.format(root=DiskLayout().root_label)
    assert boot.append == f"BOOT_IMAGE=/vmlinuz {args} initrd=/initrd.img"
    assert boot.pvh  # Debian's kernel has CONFIG_PVH, and the micro command line says nokaslr
    vmlinuz = _boot_file(micro.path, "vmlinuz", tmp_path / "vmlinuz")
    elf = boot.kernel.read_bytes()
    assert elf.startswith(b"\x7fELF") and db.has_pvh_note(elf)
    setup = (vmlinuz[0x1F1] + 1) * 512
    offset, length = struct.unpack("<II", vmlinuz[0x248:0x250])
    payload = vmlinuz[setup + offset : setup + offset + length]
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    assert elf == dec.decompress(payload) and dec.eof  # the kernel the bzImage unpacks itself
    assert struct.unpack("<I", dec.unused_data) == (len(elf),)  # then its size, as a le32
    initrd = _boot_file(micro.path, "initrd.img", tmp_path / "initrd.img")
    assert boot.initrd is not None
    plain = boot.initrd.read_bytes()
    assert plain.startswith(b"070701")
    assert plain == zstandard.ZstdDecompressor().decompressobj().decompress(initrd)


def test_with_kaslr_the_bzimage_itself_is_booted(micro: BakeResult, tmp_path: Path) -> None:
    disk = _copy_with_cfg(micro, tmp_path, MICRO_CFG.replace(" nokaslr", ""))
    out = tmp_path / "out"
    out.mkdir()
    boot = db.extract(disk, out)
    assert not boot.pvh
    assert boot.kernel.read_bytes() == _boot_file(disk, "vmlinuz", tmp_path / "vmlinuz")
    assert boot.append == (
        "BOOT_IMAGE=/vmlinuz root=LABEL=kiln-root console=ttyS0 initrd=/initrd.img"
    )


def test_a_base_is_read_once_and_a_disk_without_syslinux_is_remembered(
    micro: BakeResult, tmp_path: Path
) -> None:
    bases = tmp_path / "bases"
    bases.mkdir()
    base = bases / "snap-1.raw"
    shutil.copyfile(micro.path, base)
    first = db.for_base(base)
    assert first is not None and first.kernel.parent == bases / "snap-1.raw.boot"
    stamp = first.kernel.stat().st_mtime_ns
    assert db.for_base(base) == first and first.kernel.stat().st_mtime_ns == stamp
    blank = bases / "snap-2.raw"
    with blank.open("wb") as f:
        f.truncate(64 << 20)
    assert db.for_base(blank) is None
    state = json.loads((bases / "snap-2.raw.boot" / "boot.json").read_text())
    assert state["direct"] is False and "partition" in state["why"]


def test_an_overlay_boots_directly_until_its_guest_writes_into_the_boot_partition(
    micro: BakeResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "snap-1.raw"
    shutil.copyfile(micro.path, base)
    overlay = tmp_path / "vol.qcow2"
    create_volume_disk(base, overlay)
    scratch = tmp_path / "scratch"
    boot = db.for_disk(overlay, "qcow2", scratch)
    assert (
        boot is not None and boot.pvh and boot.kernel.is_relative_to(tmp_path / "snap-1.raw.boot")
    )
    root = DiskLayout().root_offset
    subprocess.run(["qemu-io", "-c", f"write -P 0x55 {root} 64k", str(overlay)], check=True)
    assert db.for_disk(overlay, "qcow2", scratch) == boot  # the root changed, not /boot
    monkeypatch.setenv("KILN_DIRECT_KERNEL", "0")
    assert db.for_disk(overlay, "qcow2", scratch) is None  # the opt-out
    monkeypatch.delenv("KILN_DIRECT_KERNEL")
    subprocess.run(["qemu-io", "-c", f"write -P 0x55 {BOOT + 4096} 4k", str(overlay)], check=True)
    assert db.for_disk(overlay, "qcow2", scratch) is None  # the guest changed its boot files
    raw = db.for_disk(micro.path, "raw", scratch)  # an instance-store root: read every boot
    assert raw is not None and raw.kernel == scratch / "kernel"


def test_remove_bases_removes_the_direct_boot_cache(micro: BakeResult, tmp_path: Path) -> None:
    bases = tmp_path / "regions" / "r1" / "bases"
    bases.mkdir(parents=True)
    shutil.copyfile(micro.path, bases / "snap-1.raw")
    assert db.for_base(bases / "snap-1.raw") is not None
    remove_bases(tmp_path, "r1", "snap-1")
    assert not [p for p in bases.iterdir() if p.name.startswith("snap-1.")]


def test_the_qemu_command_boots_the_kernel_and_frees_bootindex_0(tmp_path: Path) -> None:
    spec = VmSpec(
        "i-1",
        tmp_path,
        [DiskSpec(tmp_path / "a.qcow2", "qcow2")],
        None,
        1,
        256,
        2222,
        "tcg",
        kernel=tmp_path / "kernel",
        initrd=tmp_path / "initrd",
        append="BOOT_IMAGE=/vmlinuz quiet",
    )
    argv = QemuDriver().command(spec, "qemu-system-x86_64")
    i = argv.index("-kernel")
    assert argv[i : i + 6] == [
        "-kernel",
        str(tmp_path.resolve() / "kernel"),
        "-initrd",
        str(tmp_path.resolve() / "initrd"),
        "-append",
        "BOOT_IMAGE=/vmlinuz quiet",
    ]
    assert not any("bootindex" in a for a in argv)
    firmware = QemuDriver().command(
        VmSpec("i-1", tmp_path, spec.disks, None, 1, 256, 2222, "tcg"), "qemu-system-x86_64"
    )
    assert "-kernel" not in firmware and "virtio-blk-pci,drive=disk0,bootindex=0" in firmware


def test_a_kernel_images_file_is_entered_at_its_pvh_note_only_with_nokaslr(
    tmp_path: Path,
) -> None:
    kernel = small_kernel.cached()
    if kernel is None:
        pytest.skip("the micro kernel is not built on this host (kiln bake kernel)")
    image = tmp_path / "snap-1.image"
    shutil.copyfile(kernel.bzimage, image)
    boot = db.for_kernel_image(image, None, "root=/dev/vda2 nokaslr")
    assert boot.pvh and boot.kernel == tmp_path / "snap-1.image.pvh"
    assert db.has_pvh_note(boot.kernel.read_bytes())
    made = boot.kernel.stat().st_mtime_ns
    again = db.for_kernel_image(image, tmp_path / "ramdisk", "nokaslr")  # decompressed once
    assert again.kernel.stat().st_mtime_ns == made and again.initrd == tmp_path / "ramdisk"
    with_kaslr = db.for_kernel_image(image, None, "root=/dev/vda2")
    assert not with_kaslr.pvh and with_kaslr.kernel == image


def test_a_kernel_image_that_is_no_bzimage_is_booted_as_it_is(tmp_path: Path) -> None:
    image = tmp_path / "snap-2.image"
    image.write_bytes(b"\0" * 4096)
    boot = db.for_kernel_image(image, None, "nokaslr")
    assert boot == db.DirectBoot(image, None, "nokaslr", False)
    assert not (tmp_path / "snap-2.image.pvh").exists()
