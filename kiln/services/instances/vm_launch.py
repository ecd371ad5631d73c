"""An instance's disks and its VM: what a boot needs, and what a stop or a terminate undoes.

Files (docs/instances.md#files), under ``DATA_DIR/regions/REGION/``::

    volumes/<vol-id>.qcow2          an EBS volume: qcow2 overlay over a shared read-only base
    bases/<snap-id>[@bytes].raw     that base, restored once per snapshot and region
    instances/<i-id>/               the run directory: seed.iso, console.log, qmp.sock, pid,
                                    and root.raw for an instance-store root (the ephemeral disk)

EBS volumes reuse the volume code (kiln/services/volume_disks.py): the first launch of an image
in a region restores its root snapshot as the base; every later launch only creates a small
overlay, so launching does not get slower as images get bigger.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import shutil
from pathlib import Path

from kiln import errors
from kiln.catalog import instances as cat
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.instances import InstanceRecord
from kiln.catalog.records import VolumeRecord
from kiln.compute import direct_boot
from kiln.compute.driver import DiskSpec, VmHandle, VmSpec
from kiln.compute.ports import pick_free_port, port_is_free
from kiln.compute.seed import make_nocloud_seed
from kiln.errors import KilnError
from kiln.runtime import layout
from kiln.runtime.instance_runtime import InstanceRuntime
from kiln.runtime.volume_disks import (
    base_path,
    create_volume_disk,
    materialize_base,
    remove_volume_disk,
    volume_path,
)
from kiln.services.context import Services
from kiln.services.instances import vm_kernel, vm_network
from kiln.services.keys import kms

log = logging.getLogger(__name__)

GIB = 1024**3
SEED = "seed.iso"
EPHEMERAL_ROOT = "root.raw"


def runtime_of(services: Services) -> InstanceRuntime:
    if services.compute is None:
        raise KilnError(
            errors.UnsupportedOperation,
            "This Kiln server runs no instances (no VM driver is wired).",
        )
    return services.compute


def instance_dir(services: Services, region: str, instance_id: str) -> Path:
    return layout.instance_dir(services.data_dir, region, instance_id)


def _volume_disk(services: Services, vol: VolumeRecord) -> Path:
    overlay = volume_path(services.data_dir, vol.region, vol.volume_id)
    if overlay.exists():
        return overlay
    key = None
    natural: int | None = None
    disk_bytes = vol.size * GIB
    if vol.snapshot_id is not None:
        with services.catalog.read() as tx:
            snap = cat_snapshots.get_snapshot(tx, vol.snapshot_id, vol.owner_id)
            if snap is None:
                raise KilnError(
                    errors.InvalidSnapshotNotFound,
                    f"The snapshot {vol.snapshot_id} no longer exists.",
                )
            if snap.data_key_id:
                key = kms.key_by_id(tx, services.catalog, snap.data_key_id)
        natural = snap.full_size_bytes
        if natural and vol.size == snap.volume_size:
            disk_bytes = natural
    base = base_path(services.data_dir, vol.region, vol.snapshot_id, disk_bytes, natural)
    store = services.stores[vol.region]
    if vol.snapshot_id is not None and not base.exists() and not store.has(vol.snapshot_id):
        raise KilnError(
            errors.InvalidSnapshotNotFound,
            f"The data of snapshot {vol.snapshot_id} is not in the {vol.region} store.",
        )
    materialize_base(store, base, vol.snapshot_id, disk_bytes, key)
    create_volume_disk(base, overlay)
    log.info(
        "%s: volume %s ready (%s over %s)", vol.instance_id, vol.volume_id, overlay.name, base.name
    )
    return overlay


def _ephemeral_root(services: Services, inst: InstanceRecord) -> Path:
    path = instance_dir(services, inst.region, inst.instance_id) / EPHEMERAL_ROOT
    if path.exists():
        return path
    if inst.root_snapshot_id is None:
        raise KilnError(errors.InternalError, f"{inst.instance_id}: no bundle to copy")
    store = services.stores[inst.region]
    if not store.has(inst.root_snapshot_id):
        raise KilnError(
            errors.InvalidSnapshotNotFound,
            f"The bundle disk {inst.root_snapshot_id} is not in the store.",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{EPHEMERAL_ROOT}.{secrets.token_hex(4)}.partial")
    try:
        store.restore(inst.root_snapshot_id, tmp, fmt="raw")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s: instance-store root copied from %s", inst.instance_id, inst.root_snapshot_id)
    return path


def prepare_disks(
    services: Services, inst: InstanceRecord, volumes: list[VolumeRecord]
) -> list[DiskSpec]:
    """The instance's disks, boot disk first, made if missing (idempotent)."""
    disks: list[DiskSpec] = []
    if inst.root_device_type == "instance-store":
        disks.append(DiskSpec(_ephemeral_root(services, inst), "raw"))
    root = inst.root_device_name.removeprefix("/dev/")
    ordered = sorted(
        volumes, key=lambda v: ((v.device or "").removeprefix("/dev/") != root, v.device or "")
    )
    disks += [DiskSpec(_volume_disk(services, v), "qcow2") for v in ordered]
    return disks


def _user_data(inst: InstanceRecord) -> bytes | None:
    return base64.b64decode(inst.user_data) if inst.user_data else None


def vm_size(services: Services, inst: InstanceRecord) -> tuple[int, int]:
    """The vCPUs and MiB the VM gets: its type's, capped by ``Services.instance_caps``
    (docs/regions.md#instance-types); a cap that bites is logged once per start."""
    vcpus, memory = services.instance_caps.apply(inst.vcpus, inst.memory_mib)
    if (vcpus, memory) != (inst.vcpus, inst.memory_mib):
        log.info(
            "%s: %s has %d vCPUs and %d MiB; the VM gets %d vCPUs and %d MiB (the host's and "
            "the operator's limit per instance)",
            inst.instance_id,
            inst.instance_type,
            inst.vcpus,
            inst.memory_mib,
            vcpus,
            memory,
        )
    return vcpus, memory


def start_vm(services: Services, inst: InstanceRecord, disks: list[DiskSpec]) -> VmHandle:
    """Write the NoCloud seed and start QEMU. On a VPC (``Services.networks``) the NIC is
    plugged first and unplugged again if QEMU does not start; with user networking the SSH
    port is the instance's own unless another process took it meanwhile (then a new one is
    recorded)."""
    runtime = runtime_of(services)
    run_dir = instance_dir(services, inst.region, inst.instance_id)
    seed = make_nocloud_seed(
        run_dir / SEED,
        inst.instance_id,
        inst.instance_id,
        [inst.public_key] if inst.public_key else [],
        _user_data(inst),
    )
    direct = vm_kernel.kernel_boot(services, inst.region, inst.owner_id, inst.image_id)
    if direct is None:  # the disk's own boot, its bootloader's kernel when that is certain
        direct = direct_boot.for_disk(disks[0].path, disks[0].format, run_dir / "direct-boot")
    vcpus, memory_mib = vm_size(services, inst)
    net = vm_network.plug(services, inst, str(run_dir))
    if net is not None:
        spec = VmSpec(
            inst.instance_id,
            run_dir,
            disks,
            seed,
            vcpus,
            memory_mib,
            0,
            runtime.accel(),
            net=net,
            smbios=vm_network.ec2_identity(inst),
            kernel=direct.kernel if direct else None,
            initrd=direct.initrd if direct else None,
            append=direct.append if direct else None,
        )
        try:
            return runtime.driver.start(spec)
        except BaseException:
            vm_network.unplug(services, inst)
            raise
    port = inst.ssh_port
    for attempt in range(3):
        if port is None or not port_is_free(port):
            with services.catalog.write() as tx:
                port = pick_free_port(exclude=cat.ports_in_use(tx))
                cat.update_instance(tx, inst.instance_id, {"ssh_port": port})
        spec = VmSpec(
            inst.instance_id,
            run_dir,
            disks,
            seed,
            vcpus,
            memory_mib,
            port,
            runtime.accel(),
            kernel=direct.kernel if direct else None,
            initrd=direct.initrd if direct else None,
            append=direct.append if direct else None,
        )
        try:
            return runtime.driver.start(spec)
        except KilnError as e:
            if attempt == 2 or port_is_free(port):
                raise
            log.info("%s: port %d was taken (%s); trying another", inst.instance_id, port, e)
            port = None
    raise AssertionError("unreachable")


def stop_vm(
    services: Services,
    inst: InstanceRecord,
    timeout: float,
    force: bool,
    keep_address: bool = False,
) -> None:
    """Power the VM off: ACPI power button and up to ``timeout`` s, then pull the plug;
    ``force`` pulls it at once. Its NIC is unplugged once it is down (also when no VM ran),
    its public address released unless ``keep_address`` (a reboot keeps it, as on EC2)."""
    runtime = runtime_of(services)
    handle = runtime.driver.find(instance_dir(services, inst.region, inst.instance_id))
    if handle is not None and (force or not runtime.driver.shutdown(handle, timeout)):
        runtime.driver.kill(handle)
    vm_network.unplug(services, inst, keep_address)


def vm_running(services: Services, inst: InstanceRecord) -> bool:
    runtime = runtime_of(services)
    return runtime.driver.find(instance_dir(services, inst.region, inst.instance_id)) is not None


def console_output(services: Services, inst: InstanceRecord) -> bytes:
    runtime = runtime_of(services)
    run_dir = instance_dir(services, inst.region, inst.instance_id)
    handle = runtime.driver.find(run_dir)
    if handle is not None:
        return runtime.driver.console_output(handle)
    try:  # stopped: the last boot's console stays readable, as on EC2
        return (run_dir / layout.CONSOLE_LOG).read_bytes()
    except OSError:
        return b""


def discard_disks(services: Services, inst: InstanceRecord, delete: list[VolumeRecord]) -> None:
    """Terminate's file work: the volumes deleted on termination and the run directory, all
    but the console log (GetConsoleOutput answers while the instance is still listed)."""
    for vol in delete:
        remove_volume_disk(volume_path(services.data_dir, vol.region, vol.volume_id))
    run_dir = instance_dir(services, inst.region, inst.instance_id)
    if run_dir.is_dir():
        for p in run_dir.iterdir():
            if not p.name.startswith(layout.CONSOLE_LOG):
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


def forget_run_dir(services: Services, region: str, instance_id: str) -> None:
    """Remove what is left of a terminated instance once it is no longer listed."""
    shutil.rmtree(instance_dir(services, region, instance_id), ignore_errors=True)
