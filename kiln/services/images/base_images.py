"""Publishing a baked base image: the public images of the system account ``kiln``.

``kiln bake micro`` builds the disk (kiln/bake) and calls :func:`publish_base_image`, which, for
each region that lacks the image: imports the disk into the region's store, records the
snapshot (completed) and registers a public, EBS-backed HVM image named ``kiln/<recipe>/<version>``
(root device ``/dev/xvda``, BootMode ``legacy-bios``, x86_64) owned by the ``kiln`` account.
Store first, then catalog (docs/storage-format.md#write-order).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kiln.catalog import SYSTEM_ACCOUNT_ID
from kiln.catalog import images as cat_images
from kiln.catalog.records import BlockDeviceRecord, EbsRecord, LaunchPermissionRecord
from kiln.disks import raw_disk
from kiln.services.context import Caller, Services
from kiln.services.images.images import RegisterImageRequest, register_image
from kiln.services.snapshots.records import record_snapshot
from kiln.types import new_id

log = logging.getLogger(__name__)

ROOT_DEVICE = "/dev/xvda"


@dataclass(frozen=True, slots=True)
class PublishedImage:
    region: str
    image_id: str
    snapshot_id: str | None
    created: bool  # False: the region already had it


def image_name(recipe: str, version: str) -> str:
    return f"kiln/{recipe}/{version}"


def existing_images(services: Services, name: str) -> dict[str, str]:
    """region -> image id of the system account's live image called ``name``."""
    found = {}
    with services.catalog.read() as tx:
        for region in services.regions:
            iid = cat_images.live_image_named(tx, region, SYSTEM_ACCOUNT_ID, name)
            if iid is not None:
                found[region] = iid
    return found


def publish_base_image(
    services: Services, disk: Path, name: str, description: str
) -> list[PublishedImage]:
    """Import ``disk`` (raw) and register it as the public image ``name`` in every region of
    ``services`` that lacks it. Idempotent per region."""
    have = existing_images(services, name)
    out = []
    for region in services.regions:
        if region in have:
            out.append(PublishedImage(region, have[region], None, False))
            continue
        snapshot_id = new_id("snap")
        res = services.stores[region].import_disk(raw_disk(disk), snapshot_id)
        record_snapshot(
            services.catalog,
            region,
            SYSTEM_ACCOUNT_ID,
            snapshot_id,
            res.virtual_size,
            description=f"{name} root volume",
        )
        caller = Caller(SYSTEM_ACCOUNT_ID, region)
        image_id = register_image(
            services,
            caller,
            RegisterImageRequest(
                name=name,
                description=description,
                architecture="x86_64",
                root_device_name=ROOT_DEVICE,
                virtualization_type="hvm",
                boot_mode="legacy-bios",
                block_devices=(
                    BlockDeviceRecord(
                        ROOT_DEVICE,
                        ebs=EbsRecord(
                            snapshot_id=snapshot_id, volume_type="gp3", delete_on_termination=True
                        ),
                    ),
                ),
            ),
        )
        with services.catalog.write() as tx:
            cat_images.add_launch_permissions(tx, image_id, [LaunchPermissionRecord(group="all")])
        log.info("published %s in %s: %s (%s)", name, region, image_id, snapshot_id)
        out.append(PublishedImage(region, image_id, snapshot_id, True))
    return out
