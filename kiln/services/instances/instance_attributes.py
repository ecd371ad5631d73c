"""DescribeInstanceAttribute and ModifyInstanceAttribute (the basics).

Modifiable: ``instanceType`` and ``userData`` (only while stopped, as on EC2),
``disableApiTermination``, ``instanceInitiatedShutdownBehavior`` and the ``DeleteOnTermination``
of attached volumes (any time).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import instances as cat
from kiln.catalog import snapshots as cat_volumes
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.instances.access import InstanceView, owned_instances, views
from kiln.services.instances.instance_types import check_architecture, instance_type
from kiln.services.instances.lifecycle import hidden_before
from kiln.services.instances.run_instances import SHUTDOWN_BEHAVIOURS, check_user_data
from kiln.services.instances.states import InstanceState
from kiln.services.validate import dry_run

log = logging.getLogger(__name__)

DESCRIBABLE = (
    "instanceType",
    "kernel",
    "ramdisk",
    "userData",
    "disableApiTermination",
    "instanceInitiatedShutdownBehavior",
    "rootDeviceName",
    "blockDeviceMapping",
    "productCodes",
    "sourceDestCheck",
    "groupSet",
    "ebsOptimized",
    "sriovNetSupport",
    "enaSupport",
    "enclaveOptions",
    "disableApiStop",
)


@dataclass(frozen=True, slots=True)
class ModifyInstanceAttributeRequest:
    instance_id: str | None
    instance_type: str | None = None
    user_data: bytes | None = None
    disable_api_termination: bool | None = None
    shutdown_behavior: str | None = None
    delete_on_termination: tuple[tuple[str, bool], ...] = ()  # (device, flag)
    unsupported: str | None = None  # an attribute Kiln does not change
    dry_run: bool = False


def _one(services: Services, caller: Caller, instance_id: str | None) -> InstanceView:
    if not instance_id:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter InstanceId"
        )
    with services.catalog.read() as tx:
        return views(tx, owned_instances(tx, caller, [instance_id], hidden_before()))[0]


def describe_instance_attribute(
    services: Services,
    caller: Caller,
    instance_id: str | None,
    attribute: str | None,
    dry_run_flag: bool,
) -> InstanceView:
    if not attribute:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter Attribute")
    if attribute not in DESCRIBABLE:
        raise KilnError(
            errors.InvalidParameterValue, f"Value ({attribute}) for parameter attribute is invalid."
        )
    view = _one(services, caller, instance_id)
    dry_run(dry_run_flag)
    return view


def modify_instance_attribute(
    services: Services, caller: Caller, req: ModifyInstanceAttributeRequest
) -> None:
    if req.unsupported:
        raise KilnError(
            errors.UnsupportedOperation,
            f"Kiln does not change the instance attribute {req.unsupported}.",
        )
    view = _one(services, caller, req.instance_id)
    inst = view.instance
    changes: dict[str, object] = {}
    stopped_only = []
    if req.instance_type is not None:
        t = instance_type(req.instance_type)
        check_architecture(t, inst.architecture)
        changes.update(instance_type=t.name, vcpus=t.vcpus, memory_mib=t.memory_mib)
        stopped_only.append("instanceType")
    if req.user_data is not None:
        encoded = base64.b64encode(req.user_data).decode() if req.user_data else None
        changes["user_data"] = check_user_data(encoded)
        stopped_only.append("userData")
    if req.disable_api_termination is not None:
        changes["disable_api_termination"] = req.disable_api_termination
    if req.shutdown_behavior is not None:
        if req.shutdown_behavior not in SHUTDOWN_BEHAVIOURS:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Invalid value '{req.shutdown_behavior}' for InstanceInitiatedShutdownBehavior.",
            )
        if inst.root_device_type != "ebs" and req.shutdown_behavior == "stop":
            raise KilnError(
                errors.UnsupportedOperation, "An instance-store-backed instance cannot be stopped."
            )
        changes["shutdown_behavior"] = req.shutdown_behavior
    by_device = {(v.device or "").removeprefix("/dev/"): v for v in view.volumes}
    for device, _ in req.delete_on_termination:
        if device.removeprefix("/dev/") not in by_device:
            raise KilnError(
                errors.InvalidInstanceAttributeValue, f"No device is currently mapped at {device}"
            )
    if not changes and not req.delete_on_termination:
        raise KilnError(errors.MissingParameter, "The request must name an attribute to modify")
    if stopped_only and inst.state != InstanceState.STOPPED:
        raise KilnError(
            errors.IncorrectInstanceState,
            f"The instance '{inst.instance_id}' is not in the 'stopped' state.",
        )
    dry_run(req.dry_run)
    with services.catalog.write() as tx:
        expect = [InstanceState.STOPPED.value] if stopped_only else None
        if changes and not cat.update_instance(tx, inst.instance_id, changes, expect):
            raise KilnError(
                errors.IncorrectInstanceState,
                f"The instance '{inst.instance_id}' is not in the 'stopped' state.",
            )
        for device, flag in req.delete_on_termination:
            vol = by_device[device.removeprefix("/dev/")]
            cat_volumes.update_volume(tx, vol.volume_id, {"delete_on_termination": flag})
    log.info(
        "%s: modified %s",
        inst.instance_id,
        sorted(changes) + [f"{d}.deleteOnTermination" for d, _ in req.delete_on_termination],
    )
