"""``kiln bake micro``: a tiny disk that boots by itself, built only from installed Debian packages.

The recipe (docs/bake.md): Debian's kernel and the modules it needs in a busybox initramfs
(kiln.bake.kernel), a busybox + dropbear root filesystem (kiln.bake.rootfs), both put on an MBR
disk with syslinux (kiln.bake.disk). Nothing is downloaded, nothing binary lives in the repository.
"""

from __future__ import annotations

import io
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import zstandard

from kiln import errors
from kiln.bake import cpio, small_kernel
from kiln.bake.disk import DiskLayout, assemble_disk
from kiln.bake.kernel import Kernel, find_kernel, resolve_modules
from kiln.bake.rootfs import FILES, build_rootfs
from kiln.bake.tools import which
from kiln.errors import KilnError

log = logging.getLogger(__name__)

NAME = "micro"
# The recipe's version: bump when anything in kiln/bake changes what the image contains.
VERSION = "2026.12.1"
# console on the first serial port; the others trim boot time under TCG (see MACHINE-NOTES and
# docs/bake.md): no crypto self-tests, no KASLR relocation, one 8250 UART probed, and two
# initcalls that cost 0.1-0.4 s each under TCG and that a micro VM does not need (the tracefs
# kprobe interface, the SP800-108 KDF self-test).
KERNEL_ARGS = (
    "root=LABEL={root} console=ttyS0,115200 quiet cryptomgr.notests nokaslr "
    "8250.nr_uarts=1 tsc=reliable no_timer_check "
    "initcall_blacklist=init_kprobe_trace,crypto_kdf108_init"
)
#: With the micro kernel (kiln/bake/small_kernel.py) there is no initramfs to find the root by
#: label: the kernel mounts the first virtio disk's second partition itself, read-write.
SMALL_KERNEL_ARGS = (
    "root=/dev/vda2 rw rootwait console=ttyS0,115200 quiet nokaslr 8250.nr_uarts=1 "
    "tsc=reliable no_timer_check"
)
SMALL_SYSLINUX_CFG = """DEFAULT kiln
PROMPT 0
TIMEOUT 0
LABEL kiln
  LINUX /vmlinuz
  APPEND {args}
"""
SYSLINUX_CFG = """DEFAULT kiln
PROMPT 0
TIMEOUT 0
LABEL kiln
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND {args}
"""


@dataclass(frozen=True, slots=True)
class BakeResult:
    path: Path
    size_bytes: int  # virtual size of the raw disk
    version: str
    kernel_version: str


def build_initramfs(kernel: Kernel) -> bytes:
    """A zstd-compressed newc cpio: busybox, the boot modules and their load order, and /init."""
    modules = resolve_modules(kernel)
    entries = [
        cpio.directory("bin"),
        cpio.directory("dev"),
        cpio.directory("proc"),
        cpio.directory("sys"),
        cpio.directory("lib"),
        cpio.directory("lib/modules"),
        cpio.char_device("dev/console", 5, 1),
        cpio.regular("bin/busybox", which("busybox").read_bytes(), 0o755),
        cpio.symlink("bin/sh", "busybox"),
        cpio.regular("init", (FILES / "initramfs-init").read_bytes(), 0o755),
        cpio.regular("lib/modules/load-order", "".join(f"{m.name}\n" for m in modules).encode()),
    ]
    entries += [cpio.regular(f"lib/modules/{m.name}.ko", m.path.read_bytes()) for m in modules]
    buf = io.BytesIO()
    cpio.write_cpio(buf, entries)
    # zstd: the kernel unpacks it about three times faster than gzip under TCG (CONFIG_RD_ZSTD)
    return zstandard.ZstdCompressor(level=3).compress(buf.getvalue())


def build_micro_image(
    out: Path,
    work_dir: Path,
    *,
    kernel_version: str | None = None,
    layout: DiskLayout | None = None,
    small: bool | None = None,
) -> BakeResult:
    """Build the micro image as a raw disk at ``out`` (replaced atomically).

    ``work_dir`` holds scratch files and is emptied of them afterwards. ``small``: boot the micro
    kernel (kiln/bake/small_kernel.py; True requires it built), Debian's kernel + an initramfs
    (False), or the micro kernel when it is built and KILN_SMALL_KERNEL is not 0 (None). Raises
    ``KilnError`` if a Debian package it needs is missing or a tool fails; ``out`` is then left
    untouched.
    """
    started = time.monotonic()
    layout = layout or DiskLayout()
    chosen = None
    if small or (small is None and small_kernel.wanted() and kernel_version is None):
        chosen = small_kernel.cached()
        if chosen is None and small:
            raise KilnError(
                errors.InternalError,
                "bake: the micro kernel is not built; run `kiln bake kernel` (scripts/install does)",
            )
    small_built = chosen
    kernel = None if small_built is not None else find_kernel(version=kernel_version)
    release = small_built.release if small_built is not None else kernel.version if kernel else ""
    scratch = work_dir / f"bake-micro-{VERSION}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        rootfs = scratch / "rootfs"
        rootfs.mkdir()
        build_rootfs(rootfs, VERSION, release)
        boot_files: dict[str, bytes | Path]
        if small_built is not None:  # all built in, no initramfs (kiln/bake/small_kernel.py)
            boot_files = {
                "vmlinuz": small_built.bzimage,
                "syslinux.cfg": SMALL_SYSLINUX_CFG.format(args=SMALL_KERNEL_ARGS).encode(),
            }
        else:
            assert kernel is not None
            args = KERNEL_ARGS.format(root=layout.root_label)
            boot_files = {
                "vmlinuz": kernel.image,
                "initrd.img": build_initramfs(kernel),
                "syslinux.cfg": SYSLINUX_CFG.format(args=args).encode(),
            }
        out.parent.mkdir(parents=True, exist_ok=True)
        assemble_disk(out, layout, boot_files, rootfs, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = BakeResult(out, out.stat().st_size, VERSION, release)
    log.info(
        "baked %s %s (kernel %s) in %.1f s",
        NAME,
        VERSION,
        release,
        time.monotonic() - started,
    )
    return result
