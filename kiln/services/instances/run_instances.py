"""RunInstances: check everything, record the instances (``pending``) and their volumes, answer,
and boot the VMs in the background (kiln/services/instances/lifecycle.py).

Nothing is created unless every check passes; nothing on disk exists until the background
boot makes it, and a boot that fails leaves the instance ``terminated`` with its reason and
its disks removed (docs/instances.md).
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import images as cat_images
from kiln.catalog import instances as cat
from kiln.catalog import snapshots as cat_volumes
from kiln.catalog.instances import InstanceRecord
from kiln.catalog.records import BlockDeviceRecord, ImageRecord, VolumeRecord, utc_now
from kiln.compute.ports import pick_free_port
from kiln.compute.seed import USER_DATA_LIMIT
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.images.access import visible_image
from kiln.services.images.allowed_images import check_launch_allowed
from kiln.services.images.signing import check_signature_policy
from kiln.services.instances.access import InstanceView, views
from kiln.services.instances.block_devices import PlannedVolume, plan_volumes
from kiln.services.instances.instance_types import check_architecture, instance_type
from kiln.services.instances.lifecycle import submit_converge
from kiln.services.instances.placement import (
    InterfaceRequest,
    MetadataOptionsRequest,
    launch_metadata,
    place,
)
from kiln.services.instances.states import InstanceState
from kiln.services.instances.vm_kernel import check_boot_images
from kiln.services.instances.vm_launch import runtime_of
from kiln.services.keys import kms
from kiln.services.keys.key_pairs import key_pair_for_launch
from kiln.services.marketplace.access import require_subscriptions
from kiln.services.parameters.resolve import launch_image_id
from kiln.services.regions.availability_zones import check_zone
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import dry_run
from kiln.types import mac_address, new_id

log = logging.getLogger(__name__)

MAX_LIVE_INSTANCES = 32  # per account and region (EC2's answer beyond: InstanceLimitExceeded)
SHUTDOWN_BEHAVIOURS = ("stop", "terminate")


@dataclass(frozen=True, slots=True)
class RunInstancesRequest:
    image_id: str | None
    min_count: int | None
    max_count: int | None
    instance_type: str | None = None
    key_name: str | None = None
    user_data: str | None = None  # base64, as on the wire
    block_devices: tuple[BlockDeviceRecord, ...] = ()
    tag_specs: tuple[TagSpec, ...] = ()
    security_groups: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    subnet_id: str | None = None
    private_ip: str | None = None
    interfaces: tuple[InterfaceRequest, ...] = ()
    metadata_options: MetadataOptionsRequest = field(default_factory=MetadataOptionsRequest)
    availability_zone: str | None = None
    disable_api_termination: bool = False
    shutdown_behavior: str | None = None
    client_token: str | None = None
    ebs_optimized: bool = False
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: str
    owner_id: str
    groups: list[dict[str, str]]
    instances: list[InstanceView] = field(default_factory=list)


def check_user_data(value: str | None) -> str | None:
    """The user data as canonical base64; InvalidParameterValue for bad base64 or > 16 KiB."""
    if value is None or value == "":
        return None
    try:
        raw = base64.b64decode(value.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise KilnError(
            errors.InvalidParameterValue, "Invalid BASE64 encoding of user data."
        ) from None
    if len(raw) > USER_DATA_LIMIT:
        raise KilnError(
            errors.InvalidParameterValue, f"User data is limited to {USER_DATA_LIMIT} bytes."
        )
    return base64.b64encode(raw).decode()


def launchable_image(tx: Tx, caller: Caller, image_id: str) -> ImageRecord:
    """The image if ``caller`` may launch it: owner, granted account or public; available
    (deprecated images launch; disabled, pending, failed and deregistered ones do not)."""
    image = visible_image(tx, caller, image_id)
    if image.image_type != "machine":
        raise KilnError(
            errors.InvalidParameterValue,
            f"The image {image_id} is a {image.image_type} image; only machine "
            "images can be launched.",
        )
    if image.state != "available":
        raise KilnError(
            errors.InvalidAMIIDUnavailable,
            f"The image id '[{image_id}]' is {image.state} and cannot be launched.",
        )
    if image.root_device_type == "instance-store":
        if not image.bundle or not image.bundle.get("image", {}).get("snapshot_id"):
            raise KilnError(
                errors.InvalidAMIIDUnavailable,
                f"The image id '[{image_id}]' has no bundle to launch.",
            )
    elif not any(
        bd.device_name.removeprefix("/dev/") == (image.root_device_name or "").removeprefix("/dev/")
        and bd.ebs is not None
        and bd.ebs.snapshot_id
        for bd in image.block_devices
    ):
        raise KilnError(
            errors.InvalidAMIIDUnavailable,
            f"The image id '[{image_id}]' has no root volume snapshot.",
        )
    return image


def _counts(req: RunInstancesRequest) -> tuple[int, int]:
    lo, hi = req.min_count, req.max_count
    if lo is None or hi is None:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameters MinCount and MaxCount"
        )
    if lo < 1:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({lo}) for parameter minCount is invalid. Expected a positive integer.",
        )
    if hi < lo:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({hi}) for parameter maxCount is invalid. It must be at least minCount ({lo}).",
        )
    return lo, hi


def _by_token(tx: Tx, caller: Caller, token: str) -> Reservation | None:
    ids = cat.query_instance_ids(tx, caller.region, caller.account_id)
    found = [i for i in cat.get_instances(tx, ids, caller.account_id) if i.client_token == token]
    if not found:
        return None
    first = found[0]
    same = [i for i in found if i.reservation_id == first.reservation_id]
    return Reservation(first.reservation_id, first.owner_id, first.security_groups, views(tx, same))


def _volume(caller: Caller, iid: str, zone: str, plan: PlannedVolume, now: str) -> VolumeRecord:
    return VolumeRecord(
        volume_id=new_id("vol"),
        region=caller.region,
        owner_id=caller.account_id,
        size=plan.size_gib,
        availability_zone=zone,
        state="in-use",
        create_time=now,
        snapshot_id=plan.snapshot_id,
        volume_type=plan.volume_type,
        iops=plan.iops,
        throughput=plan.throughput,
        encrypted=plan.encrypted,
        kms_key_id=plan.kms_key_id,
        instance_id=iid,
        device=plan.device,
        attach_time=now,
        delete_on_termination=plan.delete_on_termination,
    )


def run_instances(services: Services, caller: Caller, req: RunInstancesRequest) -> Reservation:
    runtime = runtime_of(services)
    if not req.image_id:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter ImageId")
    lo, hi = _counts(req)
    itype = instance_type(req.instance_type)
    user_data = check_user_data(req.user_data)
    check_tag_specs(req.tag_specs, ("instance", "volume"))
    zone = req.availability_zone
    if zone is not None:
        check_zone(caller.region, zone)
    behaviour = req.shutdown_behavior or "stop"
    if behaviour not in SHUTDOWN_BEHAVIOURS:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Invalid value '{behaviour}' for InstanceInitiatedShutdownBehavior.",
        )
    metadata = launch_metadata(req.metadata_options)
    by_default = kms.by_default_key(services.catalog, caller.account_id, caller.region)
    with services.catalog.write() as tx:
        if req.client_token:
            again = _by_token(tx, caller, req.client_token)
            if again is not None:
                return again
        image_id = launch_image_id(tx, services.catalog.sealer, caller, req.image_id)
        image = launchable_image(tx, caller, image_id)
        check_boot_images(tx, caller, image)  # its KernelId and RamdiskId (paravirtual)
        check_launch_allowed(tx, caller, image)  # Allowed AMIs (docs/governance.md)
        require_subscriptions(tx, caller.account_id, image.product_codes)
        check_signature_policy(
            tx, services, caller, image, "launch instances with"
        )  # docs/signing.md
        check_architecture(itype, image.architecture)
        key = key_pair_for_launch(tx, caller, req.key_name) if req.key_name else None
        plans = plan_volumes(tx, caller, image, req.block_devices, by_default)
        store_root = image.root_device_type == "instance-store"
        if store_root and req.shutdown_behavior == "stop":
            raise KilnError(
                errors.UnsupportedOperation,
                "An instance-store-backed instance cannot be stopped; use "
                "InstanceInitiatedShutdownBehavior 'terminate'.",
            )
        live = cat.query_instance_ids(
            tx,
            caller.region,
            caller.account_id,
            states=[s.value for s in InstanceState if s is not InstanceState.TERMINATED],
        )
        count = min(hi, MAX_LIVE_INSTANCES - len(live))
        if count < lo:
            raise KilnError(
                errors.InstanceLimitExceeded,
                f"You have requested more instances ({lo}) than your current instance "
                f"limit of {MAX_LIVE_INSTANCES} allows ({len(live)} in use).",
            )
        where = place(
            tx,
            caller,
            count=count,
            zone=zone,
            subnet_id=req.subnet_id,
            private_ip=req.private_ip,
            group_ids=req.security_group_ids,
            group_names=req.security_groups,
            interfaces=req.interfaces,
        )
        groups = where.groups
        dry_run(req.dry_run)
        runtime.check_available()
        reservation_id = new_id("r")
        now = utc_now()
        ports = cat.ports_in_use(tx)
        iids, vol_ids = [], []
        for index in range(count):
            iid = new_id("i")
            # VPC networking reaches the guest at its own address; user networking needs a
            # host port for its SSH forward
            port = None if services.networks is not None else pick_free_port(exclude=ports)
            if port is not None:
                ports.add(port)
            cat.insert_instance(
                tx,
                InstanceRecord(
                    instance_id=iid,
                    region=caller.region,
                    owner_id=caller.account_id,
                    reservation_id=reservation_id,
                    image_id=image.image_id,
                    instance_type=itype.name,
                    vcpus=itype.vcpus,
                    memory_mib=itype.memory_mib,
                    state=InstanceState.PENDING.value,
                    launch_time=now,
                    availability_zone=where.availability_zone,
                    architecture=image.architecture,
                    root_device_name=image.root_device_name or "/dev/sda1",
                    root_device_type=image.root_device_type,
                    private_ip=where.private_ips[index],
                    vpc_id=where.vpc_id,
                    subnet_id=where.subnet_id,
                    mac_address=mac_address(iid),
                    security_groups=groups,
                    ami_launch_index=index,
                    key_name=key.key_name if key else None,
                    public_key=key.public_key if key else None,
                    root_snapshot_id=image.bundle["image"]["snapshot_id"]
                    if store_root and image.bundle
                    else None,
                    ssh_port=port,
                    user_data=user_data,
                    disable_api_termination=req.disable_api_termination,
                    shutdown_behavior="terminate" if store_root else behaviour,
                    client_token=req.client_token,
                    ebs_optimized=req.ebs_optimized,
                    state_transition_reason="",
                    metadata_http_tokens=metadata.http_tokens,
                    metadata_hop_limit=metadata.hop_limit,
                    metadata_http_endpoint=metadata.http_endpoint,
                    metadata_tags=metadata.tags,
                    product_codes=image.product_codes,
                ),
            )
            for plan in plans:
                vol = _volume(caller, iid, where.availability_zone, plan, now)
                cat_volumes.insert_volume(tx, vol)
                vol_ids.append(vol.volume_id)
            iids.append(iid)
        apply_tag_specs(tx, caller, req.tag_specs, {"instance": iids, "volume": vol_ids})
        cat_images.update_image(tx, image.image_id, {"last_launched_time": now})
        made = views(tx, cat.get_instances(tx, iids, caller.account_id))
    for iid in iids:
        submit_converge(services, iid, "launch")
    log.info(
        "RunInstances %s: %d x %s from %s for %s",
        reservation_id,
        count,
        itype.name,
        image.image_id,
        caller.account_id,
    )
    return Reservation(reservation_id, caller.account_id, groups, made)
