"""Assemble a bootable MBR disk in a plain file: no mounts, no loop devices.

Layout (see docs/bake.md): syslinux's ``mbr.bin`` in the first 440 bytes; partition 1, a small
FAT16 boot partition (bootable) holding syslinux, the kernel and the initramfs; partition 2, the
ext4 root written in place by ``mke2fs -d``. Each filesystem is made at its byte offset inside
the file (``mkfs.vfat --offset``, ``syslinux --offset``, ``mcopy -i disk@@offset``,
``mke2fs -E offset=``), so the file stays sparse where nothing was written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kiln import errors
from kiln.bake.tools import run
from kiln.errors import KilnError

log = logging.getLogger(__name__)

MIB = 1024 * 1024
SECTOR = 512
MBR_CODE_BYTES = 440
MBR_BIN_CANDIDATES = (Path("/usr/lib/syslinux/mbr/mbr.bin"), Path("/usr/lib/SYSLINUX/mbr.bin"))


@dataclass(frozen=True, slots=True)
class DiskLayout:
    size_mib: int = 64
    boot_start_mib: int = 1
    boot_size_mib: int = 20
    boot_label: str = "KILNBOOT"
    root_label: str = "kiln-root"

    @property
    def boot_offset(self) -> int:
        return self.boot_start_mib * MIB

    @property
    def root_offset(self) -> int:
        return (self.boot_start_mib + self.boot_size_mib) * MIB

    @property
    def root_size(self) -> int:
        return self.size_mib * MIB - self.root_offset


def _mbr_bin() -> Path:
    for p in MBR_BIN_CANDIDATES:
        if p.is_file():
            return p
    raise KilnError(
        errors.InternalError,
        "bake: syslinux mbr.bin not found; install the Debian package syslinux-common",
    )


def _partition(disk: Path, layout: DiskLayout) -> None:
    boot_start = layout.boot_offset // SECTOR
    boot_sectors = layout.boot_size_mib * MIB // SECTOR
    script = (
        "label: dos\n"
        "label-id: 0x4b494c4e\n"
        f"start={boot_start}, size={boot_sectors}, type=e, bootable\n"
        f"start={layout.root_offset // SECTOR}, type=83\n"
    )
    run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", disk], stdin=script.encode())
    code = _mbr_bin().read_bytes()[:MBR_CODE_BYTES]
    with disk.open("r+b") as f:  # the boot code only: the partition table follows at 446
        f.write(code)


def _make_boot(
    disk: Path, layout: DiskLayout, boot_files: dict[str, bytes | Path], work_dir: Path
) -> None:
    off = layout.boot_offset
    run(
        [
            "mkfs.vfat",
            "--offset",
            off // SECTOR,
            "-F",
            "16",
            "-n",
            layout.boot_label,
            "-i",
            "4b494c4e",
            disk,
            layout.boot_size_mib * 1024,
        ]
    )
    run(["syslinux", "--offset", off, "--install", disk])
    env = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}
    for name, content in boot_files.items():
        if isinstance(content, bytes):
            src = work_dir / f"boot-{name}"
            src.write_bytes(content)
        else:
            src = content
        run(["mcopy", "-o", "-i", f"{disk}@@{off}", src, f"::{name}"], env=env)


def _make_root(disk: Path, layout: DiskLayout, rootfs: Path) -> None:
    run(
        [
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-L",
            layout.root_label,
            "-d",
            rootfs,
            "-m",
            "0",
            "-E",
            f"offset={layout.root_offset},root_owner=0:0,nodiscard,assume_storage_prezeroed=1",
            disk,
            f"{layout.root_size // 1024}k",
        ]
    )


def assemble_disk(
    out: Path, layout: DiskLayout, boot_files: dict[str, bytes | Path], rootfs: Path, work_dir: Path
) -> None:
    """Write the bootable raw disk ``out`` (replaced atomically if it exists).

    ``boot_files`` maps FAT file names (``vmlinuz``, ``initrd.img``, ``syslinux.cfg``) to their
    content or a path; ``rootfs`` is the directory copied into the ext4 root.
    """
    tmp = out.with_name(out.name + ".part")
    tmp.unlink(missing_ok=True)
    with tmp.open("wb") as f:
        f.truncate(layout.size_mib * MIB)
    try:
        _partition(tmp, layout)
        _make_boot(tmp, layout, boot_files, work_dir)
        _make_root(tmp, layout, rootfs)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("assembled %s (%d MiB)", out, layout.size_mib)
