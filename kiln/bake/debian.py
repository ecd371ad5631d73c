"""``kiln bake debian``: Debian 12 (bookworm) with cloud-init and OpenSSH, built by mmdebstrap.

Unlike the micro image this one downloads its packages from a Debian mirror (the only network
it needs; default ``http://deb.debian.org/debian``, or ``$KILN_DEBIAN_MIRROR``). The root
filesystem comes from ``mmdebstrap --variant=minbase`` with the kernel, systemd, udev,
OpenSSH, cloud-init, ifupdown + DHCP, sudo and Python 3; Debian's own initramfs (built by the kernel
package) boots it. The disk is assembled like the micro image's (kiln/bake/disk.py): syslinux
on a FAT boot partition holding the kernel and initramfs, the ext4 root written by ``mke2fs -d``.

Contract with Kiln (docs/instances.md#debian): cloud-init reads EC2's metadata service where
the guest's DMI identity says EC2 (VPC networks), else the NoCloud seed
(``datasource_list: [Ec2, NoCloud, None]``), installs the key pair for the default user ``admin``
(as on EC2's Debian AMIs; passwordless sudo), runs user data, makes per-instance SSH host keys;
a unit after ``cloud-final`` prints ``KILN-READY instance-id=<id>`` on the serial console.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from kiln import errors
from kiln.bake.disk import DiskLayout, assemble_disk
from kiln.bake.micro import BakeResult
from kiln.bake.tools import remove_scratch, run
from kiln.errors import KilnError

log = logging.getLogger(__name__)

NAME = "debian"
VERSION = "12.2026.12.0"  # Debian 12; bump when the recipe changes
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "linux-image-amd64",
    "systemd-sysv",
    "udev",
    "openssh-server",
    "cloud-init",
    "netbase",
    "ifupdown",
    "isc-dhcp-client",
    "sudo",
    "iproute2",
    "python3",  # Ansible manages the guest over SSH with it
)
LAYOUT = DiskLayout(size_mib=2048, boot_size_mib=120)
KERNEL_ARGS = (
    "root=LABEL={root} ro console=ttyS0,115200 quiet cryptomgr.notests nokaslr 8250.nr_uarts=1"
)
SYSLINUX_CFG = """DEFAULT kiln
PROMPT 0
TIMEOUT 0
LABEL kiln
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND {args}
"""
CLOUD_CFG = """# Kiln: EC2's metadata service on a VPC network (the guest's DMI says "Amazon EC2" there),
# else the NoCloud seed Kiln attaches to every instance (docs/instances.md#debian)
datasource_list: [ Ec2, NoCloud, None ]
manage_etc_hosts: true
locale: C.UTF-8
system_info:
  default_user:
    name: admin
    lock_passwd: true
    gecos: Debian
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
"""
READY_UNIT = """[Unit]
Description=Print KILN-READY on the serial console once cloud-init and SSH are done
After=cloud-final.service ssh.service
Wants=ssh.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "KILN-READY instance-id=$(cat /var/lib/cloud/data/instance-id)" > /dev/ttyS0'

[Install]
WantedBy=cloud-init.target
"""


def _customize(root: Path) -> None:
    (root / "etc/fstab").write_text(f"LABEL={LAYOUT.root_label} / ext4 defaults,discard 0 1\n")
    (root / "etc/cloud/cloud.cfg.d/90-kiln.cfg").write_text(CLOUD_CFG)
    unit = root / "etc/systemd/system/kiln-ready.service"
    unit.write_text(READY_UNIT)
    wants = root / "etc/systemd/system/cloud-init.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "kiln-ready.service").unlink(missing_ok=True)
    (wants / "kiln-ready.service").symlink_to("/etc/systemd/system/kiln-ready.service")
    for key in (root / "etc/ssh").glob("ssh_host_*"):  # cloud-init makes them per instance
        key.unlink()
    (root / "etc/machine-id").write_text("")  # systemd makes one per instance
    (root / "etc/hostname").write_text("localhost\n")


def _kernel(root: Path) -> tuple[str, Path, Path]:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise KilnError(errors.InternalError, "bake: no kernel in the Debian root filesystem")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    initrd = root / "boot" / f"initrd.img-{version}"
    if not initrd.is_file():
        raise KilnError(errors.InternalError, f"bake: no initramfs for kernel {version}")
    return version, kernels[-1], initrd


def build_debian_image(out: Path, work_dir: Path, mirror: str | None = None) -> BakeResult:
    """Build the Debian image as a raw disk at ``out`` (replaced atomically). Needs root and
    the Debian package mmdebstrap; ``KilnError`` if a tool fails (``out`` is left untouched)."""
    started = time.monotonic()
    mirror = mirror or os.environ.get("KILN_DEBIAN_MIRROR") or DEFAULT_MIRROR
    scratch = work_dir / f"bake-{NAME}-{VERSION}"
    remove_scratch(scratch)
    scratch.mkdir(parents=True)
    try:
        root = scratch / "rootfs"
        root.mkdir()  # mmdebstrap wants an existing, empty directory
        run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                "--mode=root",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                f"{root}/",
                mirror,
            ]
        )
        _customize(root)
        kernel_version, vmlinuz, initrd = _kernel(root)
        args = KERNEL_ARGS.format(root=LAYOUT.root_label)
        boot_files: dict[str, bytes | Path] = {
            "vmlinuz": vmlinuz,
            "initrd.img": initrd,
            "syslinux.cfg": SYSLINUX_CFG.format(args=args).encode(),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        assemble_disk(out, LAYOUT, boot_files, root, scratch)
    finally:
        remove_scratch(scratch)
    log.info(
        "baked %s %s (kernel %s) in %.1f s",
        NAME,
        VERSION,
        kernel_version,
        time.monotonic() - started,
    )
    return BakeResult(out, out.stat().st_size, VERSION, kernel_version)
