"""Paravirtual images: a machine image with a KernelId boots that kernel image directly.

EC2 booted such an image under Xen, through PV-GRUB or the AKI itself. Kiln hands the AKI's
file to QEMU (``-kernel``), the ARI's as ``-initrd``, with a command line: the kernel bundle's
``cmdline`` (kiln/services/images/bundles.py), else ``DEFAULT_CMDLINE``. A kernel that has a
PVH entry point is decompressed once and entered there when the command line has ``nokaslr``
(kiln/compute/direct_boot.py). No firmware, no bootloader (docs/instances.md#paravirtual).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import images as cat_images
from kiln.catalog.records import ImageRecord
from kiln.compute import direct_boot
from kiln.errors import KilnError
from kiln.runtime import layout
from kiln.services.context import Caller, Services
from kiln.services.images.access import visible_image

log = logging.getLogger(__name__)

#: The command line of a kernel whose bundle names none: the first partition of the first
#: virtio disk as the root, the console on the first serial port (GetConsoleOutput), no KASLR
#: (so a PVH kernel is entered at its PVH note).
DEFAULT_CMDLINE = "root=/dev/vda1 console=ttyS0,115200 nokaslr"


def check_boot_images(tx: Tx, caller: Caller, image: ImageRecord) -> None:
    """RunInstances' check of a machine image's KernelId and RamdiskId: each must be an image
    ``caller`` may see (InvalidAMIID.NotFound / .Unavailable otherwise) of that type."""
    for image_id, kind in ((image.kernel_id, "kernel"), (image.ramdisk_id, "ramdisk")):
        if image_id is None:
            continue
        found = visible_image(tx, caller, image_id)
        if found.image_type != kind or not _snapshot_of(found):
            raise KilnError(
                errors.InvalidParameterValue,
                f"The {kind} image {image_id} of {image.image_id} is not a {kind} image",
            )


def _snapshot_of(image: ImageRecord) -> str | None:
    snap = (image.bundle or {}).get("image", {}).get("snapshot_id")
    return snap if isinstance(snap, str) else None


def _file(services: Services, region: str, image: ImageRecord) -> Path:
    """The kernel or ramdisk image's file, restored from its bundle disk once per region."""
    snap = _snapshot_of(image)
    if snap is None:
        raise KilnError(errors.InvalidParameterValue, f"{image.image_id} has no bundle disk")
    path = layout.boot_image_path(services.data_dir, region, snap)
    if path.is_file():
        return path
    store = services.stores[region]
    if not store.has(snap):
        raise KilnError(
            errors.InvalidSnapshotNotFound,
            f"The bundle disk {snap} of {image.image_id} is not in the {region} store.",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        store.restore(snap, tmp, fmt="raw")
        tmp.chmod(0o444)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s: %s restored as %s", image.image_id, snap, path.name)
    return path


def kernel_boot(
    services: Services, region: str, owner_id: str, image_id: str
) -> direct_boot.DirectBoot | None:
    """How QEMU boots an instance of ``image_id``: its kernel image's, or None (the disk's own
    boot) when the image has no KernelId."""
    with services.catalog.read() as tx:
        image = cat_images.get_image(tx, image_id, owner_id)
        if image is None or image.kernel_id is None:
            return None
        kernel = cat_images.get_image(tx, image.kernel_id, owner_id)
        ramdisk = cat_images.get_image(tx, image.ramdisk_id, owner_id) if image.ramdisk_id else None
    for wanted, found, kind in (
        (image.kernel_id, kernel, "kernel"),
        (image.ramdisk_id, ramdisk, "ramdisk"),
    ):
        if wanted is not None and (found is None or found.image_type != kind):
            raise KilnError(
                errors.InvalidAMIIDNotFound, f"The image id '[{wanted}]' does not exist"
            )
    assert kernel is not None
    cmdline = (kernel.bundle or {}).get("cmdline")
    append = cmdline if isinstance(cmdline, str) else DEFAULT_CMDLINE
    initrd = _file(services, region, ramdisk) if ramdisk is not None else None
    boot = direct_boot.for_kernel_image(_file(services, region, kernel), initrd, append)
    log.info(
        "%s: boots %s (%s)%s",
        image_id,
        kernel.image_id,
        "PVH" if boot.pvh else "bzImage",
        f" with {ramdisk.image_id}" if ramdisk else "",
    )
    return boot
