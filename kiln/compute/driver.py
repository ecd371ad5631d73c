"""The hypervisor driver interface: what the instance rules need from a VM, and nothing more.

One implementation today (kiln/compute/qemu.py: a local QEMU process per VM); a libvirt driver
for many hosts can follow behind the same Protocol. A VM is identified by its *run directory*,
which holds everything about it that must outlive a ``kiln serve`` restart (pid file, console
log, QMP socket, the spec it was started with): the rules keep one run directory per instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kiln.compute.network.types import Attachment

ACCELERATORS = ("tcg", "kvm")
DISK_FORMATS = ("raw", "qcow2")


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """A disk attached as a virtio block device. ``format`` is one of :data:`DISK_FORMATS`."""

    path: Path
    format: str


@dataclass(frozen=True, slots=True)
class VmSpec:
    """Everything needed to start a VM.

    ``disks[0]`` is the boot disk (the firmware boots it first); ``seed`` is a NoCloud seed image
    (kiln/compute/seed.py) attached read-only as the second disk; the remaining disks follow.
    ``ssh_host_port`` is the 127.0.0.1 port forwarded to the guest's port 22
    (kiln/compute/ports.py picks one). ``accel`` is ``"tcg"`` or ``"kvm"`` — resolve ``"auto"``
    with :func:`kiln.compute.accel.probe_accelerator` first.

    ``net``: the NIC's attachment to its VPC (``NetworkHost.plug``); the hypervisor then runs
    where the attachment says (``argv_prefix``) with its ``-netdev``/``-device`` arguments, and
    ``ssh_host_port`` is not used (pass 0: the guest is reached at its public address). None:
    QEMU user networking with ``ssh_host_port`` forwarded to the guest's port 22.

    ``kernel`` (with ``initrd`` and the command line ``append``): boot this kernel directly
    instead of the firmware booting ``disks[0]`` (kiln/compute/direct_boot.py: what the disk's
    own bootloader would load); None: the firmware boots the disk.
    """

    instance_id: str
    run_dir: Path
    disks: list[DiskSpec]
    seed: Path | None
    vcpus: int
    memory_mib: int
    ssh_host_port: int
    accel: str
    net: Attachment | None = None
    # ``-smbios`` values (e.g. ``type=1,manufacturer=Amazon EC2``): the identity cloud-init's
    # ds-identify reads from DMI to pick its datasource (kiln/services/instances/vm_network.py).
    smbios: tuple[str, ...] = ()
    kernel: Path | None = None
    initrd: Path | None = None
    append: str | None = None


@dataclass(frozen=True, slots=True)
class VmHandle:
    """A started VM. Everything in it can be recovered from ``run_dir`` by ``VmDriver.find``."""

    instance_id: str
    pid: int
    run_dir: Path
    ssh_host_port: int
    accel: str


class VmDriver(Protocol):
    """Starts, stops and watches VMs. No method raises for a VM that is not running (anymore).

    A VM keeps running when the process that started it exits; ``find`` attaches to it again.
    Methods are safe to call from several threads for different VMs; for one VM, the caller
    serialises lifecycle calls (start / shutdown / kill).
    """

    def start(self, spec: VmSpec) -> VmHandle:
        """Boot a VM from ``spec`` and return once the hypervisor runs it (not once the guest is
        ready: watch ``console_output`` for that).

        Not idempotent. Raises ``KilnError``: ``IncorrectInstanceState`` if a VM already runs in
        ``spec.run_dir``; ``InvalidParameterValue`` for a bad spec (missing disk file, unknown
        format or accelerator); ``InsufficientInstanceCapacity`` if the hypervisor is missing or
        fails to start — in every failure case nothing is left running.
        """
        ...

    def shutdown(self, handle: VmHandle, timeout: float) -> bool:
        """Ask the guest to power off (ACPI power button) and wait up to ``timeout`` seconds.

        True once the VM is off, False if it is still running at the deadline (the caller may
        then ``kill`` it). Idempotent: True at once if the VM is not running.
        """
        ...

    def kill(self, handle: VmHandle) -> None:
        """Stop the VM now, like pulling the plug (the hypervisor still closes its disk images
        cleanly if it can). Returns once the process is gone. Idempotent: a no-op if the VM is
        not running."""
        ...

    def is_running(self, handle: VmHandle) -> bool:
        """True if the VM's hypervisor process is alive and is really this VM (a reused pid is
        not mistaken for it)."""
        ...

    def console_output(self, handle: VmHandle) -> bytes:
        """Everything the guest wrote to its serial console since it was last started, also
        after it stopped; ``b""`` if it never started."""
        ...

    def find(self, run_dir: Path) -> VmHandle | None:
        """The VM running from ``run_dir``, or None if none runs there (never started, stopped,
        crashed, or its pid now belongs to another process). Used after a server restart."""
        ...
