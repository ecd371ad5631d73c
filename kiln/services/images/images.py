"""Image rules: RegisterImage, DeregisterImage, Enable/DisableImage, deprecation and
deregistration protection. DescribeImages lives in images_describe.py, the attributes in
image_attributes.py."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from kiln import errors
from kiln.catalog import Conflict, Tx
from kiln.catalog import images as cat
from kiln.catalog import marketplace as cat_marketplace
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import (
    BlockDeviceRecord,
    ImageRecord,
    ProductCodeRecord,
    ec2_time,
    utc_now,
)
from kiln.errors import KilnError
from kiln.services.accounts.quotas import check_image_quota
from kiln.services.context import Caller, Services
from kiln.services.images import bundles
from kiln.services.images.access import owned_image, visible_image
from kiln.services.images.block_devices import check_block_devices, check_device_name
from kiln.services.images.states import ImageState, change_image
from kiln.services.recyclebin.images import retain_image
from kiln.services.regions.availability_zones import zones
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import dry_run
from kiln.types import new_id

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-zA-Z0-9()\[\] ./\-'@_]{3,128}$")
NAME_RULE = (
    "AMI names must be between 3 and 128 characters long, and may contain letters, "
    "numbers, '(', ')', '[', ']', ' ', '.', '/', '-', ''', '@' and '_'"
)
MAX_UEFI_DATA = 64 * 1024
DEPRECATION_CAP = timedelta(days=365 * 10)
COOLDOWN = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RegisterImageRequest:
    name: str
    description: str | None = None
    architecture: str | None = None
    image_location: str | None = None
    root_device_name: str | None = None
    block_devices: tuple[BlockDeviceRecord, ...] = ()
    virtualization_type: str | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    sriov_net_support: str | None = None
    ena_support: bool | None = None
    boot_mode: str | None = None
    tpm_support: str | None = None
    uefi_data: str | None = None
    imds_support: str | None = None
    billing_products: tuple[str, ...] = ()
    tag_specs: tuple[TagSpec, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DeleteSnapshotResult:
    snapshot_id: str
    return_code: str  # EC2's DeleteSnapshotReturnCode


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise KilnError(errors.InvalidAMINameMalformed, NAME_RULE)
    return name


def _check_description(text: str | None) -> None:
    if text is not None and len(text) > 255:
        raise KilnError(
            errors.InvalidParameterValue, "AMI descriptions must be at most 255 characters long"
        )


def _check_kernel(tx: Tx, caller: Caller, image_id: str | None, kind: str) -> None:
    if image_id is None:
        return
    found = visible_image(tx, caller, image_id)
    if found.image_type != kind:
        raise KilnError(errors.InvalidParameterValue, f"{image_id} is not a {kind} image")


def _check_boot(req: RegisterImageRequest) -> None:
    if req.tpm_support is not None and req.boot_mode != "uefi":
        raise KilnError(errors.InvalidParameterCombination, "TpmSupport requires BootMode uefi")
    if req.uefi_data is not None:
        if req.boot_mode not in ("uefi", "uefi-preferred"):
            raise KilnError(
                errors.InvalidParameterCombination,
                "UefiData requires BootMode uefi or uefi-preferred",
            )
        try:
            blob = base64.b64decode(req.uefi_data, validate=True)
        except (binascii.Error, ValueError):
            raise KilnError(errors.InvalidParameterValue, "UefiData must be base64") from None
        if len(blob) > MAX_UEFI_DATA:
            raise KilnError(errors.InvalidParameterValue, "UefiData is larger than 64 KiB")


def register_image(services: Services, caller: Caller, req: RegisterImageRequest) -> str:
    """A new image; EBS-backed from snapshot mappings, or instance-store from a bundle."""
    check_name(req.name)
    _check_description(req.description)
    _check_boot(req)
    if req.billing_products:
        raise KilnError(
            errors.InvalidParameterValue,
            "BillingProducts are only available to marketplace sellers",
        )
    check_tag_specs(req.tag_specs, ("image", "snapshot"))
    ebs_root = any(bd.ebs is not None and bd.ebs.snapshot_id for bd in req.block_devices)
    if req.image_location is None and not ebs_root:
        raise KilnError(
            errors.MissingParameter,
            "The request must contain the parameter "
            "ImageLocation or a BlockDeviceMapping with a snapshot for the root device",
        )
    with services.catalog.write() as tx:
        _check_kernel(tx, caller, req.kernel_id, "kernel")
        _check_kernel(tx, caller, req.ramdisk_id, "ramdisk")
        bdms = check_block_devices(tx, caller, req.block_devices, zones(caller.region))
        image = _new_image(services, tx, caller, req, bdms)
        codes = cat_marketplace.snapshot_product_codes(
            tx, [bd.ebs.snapshot_id for bd in bdms if bd.ebs and bd.ebs.snapshot_id]
        )
        if codes:  # a snapshot of a marketplace image's lineage keeps its codes (marketplace.md)
            image = replace(
                image, product_codes=tuple(ProductCodeRecord(c, "marketplace") for c in codes)
            )
        taken = cat.live_image_named(tx, caller.region, caller.account_id, req.name)
        if taken:
            raise KilnError(
                errors.InvalidAMINameDuplicate,
                f"AMI name {req.name} is already in use by AMI {taken}",
            )
        check_image_quota(tx, caller.account_id, caller.region)  # docs/quotas.md
        dry_run(req.dry_run)
        try:
            cat.register_image(tx, image)
            snaps = [bd.ebs.snapshot_id for bd in bdms if bd.ebs and bd.ebs.snapshot_id]
            apply_tag_specs(
                tx, caller, req.tag_specs, {"image": [image.image_id], "snapshot": snaps}
            )
            tx.flush()
        except Conflict:
            raise KilnError(
                errors.InvalidAMINameDuplicate, f"AMI name {req.name} is already in use"
            ) from None
    log.info(
        "registered %s (%s) for %s in %s",
        image.image_id,
        req.name,
        caller.account_id,
        caller.region,
    )
    return image.image_id


def _new_image(
    services: Services,
    tx: Tx,
    caller: Caller,
    req: RegisterImageRequest,
    bdms: tuple[BlockDeviceRecord, ...],
) -> ImageRecord:
    base = ImageRecord(
        image_id="",
        region=caller.region,
        owner_id=caller.account_id,
        name=req.name,
        state=ImageState.AVAILABLE.value,
        architecture=req.architecture or "x86_64",
        root_device_type="ebs",
        virtualization_type=req.virtualization_type or "paravirtual",
        image_type="machine",
        creation_date=utc_now(),
        description=req.description,
        root_device_name=req.root_device_name,
        boot_mode=req.boot_mode,
        ena_support=req.ena_support,
        sriov_net_support=req.sriov_net_support,
        imds_support=req.imds_support,
        tpm_support=req.tpm_support,
        uefi_data=req.uefi_data,
        kernel_id=req.kernel_id,
        ramdisk_id=req.ramdisk_id,
        block_devices=bdms,
    )
    if req.image_location is not None:
        bundle = bundles.read_bundle(services, caller.region, req.image_location)
        prefix = {"machine": "ami", "kernel": "aki", "ramdisk": "ari"}[bundle.image_type]
        return replace(
            base,
            image_id=new_id(prefix),
            root_device_type="instance-store",
            image_location=req.image_location,
            image_type=bundle.image_type,
            architecture=req.architecture or bundle.architecture or "x86_64",
            root_device_name=req.root_device_name or "/dev/sda1",
            kernel_id=req.kernel_id or bundle.kernel_id,
            ramdisk_id=req.ramdisk_id or bundle.ramdisk_id,
            bundle=bundle.as_json(),
        )
    if req.root_device_name is None:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter RootDeviceName"
        )
    check_device_name(req.root_device_name, "root device name")
    root = req.root_device_name.removeprefix("/dev/")
    if not any(
        bd.device_name.removeprefix("/dev/") == root and bd.ebs and bd.ebs.snapshot_id
        for bd in bdms
    ):
        raise KilnError(
            errors.InvalidBlockDeviceMapping,
            f"The root device {req.root_device_name} must be mapped to a snapshot",
        )
    return replace(base, image_id=new_id("ami"), image_location=f"{caller.account_id}/{req.name}")


def deregister_image(
    services: Services,
    caller: Caller,
    image_id: str,
    delete_associated_snapshots: bool = False,
    dry_run_flag: bool = False,
) -> list[DeleteSnapshotResult]:
    results: list[DeleteSnapshotResult] = []
    deleted: list[str] = []
    with services.catalog.write() as tx:
        image = owned_image(tx, caller, image_id, dry_run_flag)
        check_deregistration_protection(image)
        dry_run(dry_run_flag)
        change_image(tx, image_id, ImageState.DEREGISTERED, {"deregistered_at": utc_now()})
        cat.reset_launch_permissions(tx, image_id)
        # A retention rule keeps the image and its snapshots (deleted at the purge if asked).
        binned = retain_image(services, tx, image, delete_associated_snapshots)
        if delete_associated_snapshots and binned is None:
            for bd in image.block_devices:
                sid = bd.ebs.snapshot_id if bd.ebs else None
                if sid is None:
                    continue
                snap = cat_snapshots.get_snapshot(tx, sid, caller.account_id)
                if snap is None or snap.owner_id != caller.account_id:
                    results.append(DeleteSnapshotResult(sid, "error-generic"))
                elif cat.images_using_snapshot(tx, sid):
                    results.append(DeleteSnapshotResult(sid, "warn-skipped-snapshot-in-use"))
                else:
                    cat_snapshots.delete_snapshot(tx, sid)
                    deleted.append(sid)
                    results.append(DeleteSnapshotResult(sid, "success"))
    store = services.stores.get(caller.region)
    for sid in deleted:  # after the commit: the catalog no longer names them
        if store is not None and store.has(sid):
            store.delete(sid)
    log.info("deregistered %s (snapshots deleted: %s)", image_id, deleted)
    return results


def check_deregistration_protection(image: ImageRecord) -> None:
    state = image.deregistration_protection
    if state.startswith("enabled"):
        raise KilnError(
            errors.InvalidParameterValue,
            f"Image {image.image_id} has deregistration protection enabled; "
            "disable it before deregistering the image.",
        )
    if state.startswith("disabled-until "):
        until = state.removeprefix("disabled-until ")
        if until > utc_now():
            raise KilnError(
                errors.InvalidParameterValue,
                f"Image {image.image_id} cannot be deregistered before {until}: "
                "deregistration protection was disabled with a cooldown.",
            )


def _set_state(
    services: Services, caller: Caller, image_id: str, target: ImageState, dry_run_flag: bool
) -> None:
    with services.catalog.write() as tx:
        image = owned_image(tx, caller, image_id, dry_run_flag)
        dry_run(dry_run_flag)
        if image.state == target.value:
            return
        change_image(tx, image_id, target)
        if target is ImageState.DISABLED:  # EC2 makes a disabled image private
            cat.reset_launch_permissions(tx, image_id)


def disable_image(services: Services, caller: Caller, image_id: str, dry_run_flag: bool) -> None:
    _set_state(services, caller, image_id, ImageState.DISABLED, dry_run_flag)


def enable_image(services: Services, caller: Caller, image_id: str, dry_run_flag: bool) -> None:
    _set_state(services, caller, image_id, ImageState.AVAILABLE, dry_run_flag)


def enable_image_deprecation(
    services: Services, caller: Caller, image_id: str, deprecate_at: datetime, dry_run_flag: bool
) -> None:
    if deprecate_at.tzinfo is None:
        deprecate_at = deprecate_at.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    if deprecate_at - now > DEPRECATION_CAP:
        raise KilnError(
            errors.InvalidParameterValue,
            "The deprecation time cannot be more than 10 years from now.",
        )
    # EC2 rounds the time down to the minute (seconds are dropped).
    deprecate_at = deprecate_at.replace(second=0, microsecond=0)
    with services.catalog.write() as tx:
        owned_image(tx, caller, image_id, dry_run_flag)
        dry_run(dry_run_flag)
        cat.update_image(tx, image_id, {"deprecation_time": ec2_time(deprecate_at)})


def disable_image_deprecation(
    services: Services, caller: Caller, image_id: str, dry_run_flag: bool
) -> None:
    with services.catalog.write() as tx:
        owned_image(tx, caller, image_id, dry_run_flag)
        dry_run(dry_run_flag)
        cat.update_image(tx, image_id, {"deprecation_time": None})


def enable_image_deregistration_protection(
    services: Services, caller: Caller, image_id: str, with_cooldown: bool, dry_run_flag: bool
) -> str:
    state = "enabled-with-cooldown" if with_cooldown else "enabled-without-cooldown"
    with services.catalog.write() as tx:
        owned_image(tx, caller, image_id, dry_run_flag)
        dry_run(dry_run_flag)
        cat.update_image(tx, image_id, {"deregistration_protection": state})
    return state


def disable_image_deregistration_protection(
    services: Services, caller: Caller, image_id: str, dry_run_flag: bool
) -> str:
    with services.catalog.write() as tx:
        image = owned_image(tx, caller, image_id, dry_run_flag)
        dry_run(dry_run_flag)
        state = "disabled"
        if image.deregistration_protection == "enabled-with-cooldown":
            state = f"disabled-until {ec2_time(datetime.now(UTC) + COOLDOWN)}"
        cat.update_image(tx, image_id, {"deregistration_protection": state})
    return state
