"""Image handlers: params -> request dataclass -> rule -> result dict (botocore member names)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from kiln import errors
from kiln.aws.context import RequestContext
from kiln.catalog.records import (
    BlockDeviceRecord,
    EbsRecord,
    ImageRecord,
    LaunchPermissionRecord,
)
from kiln.ec2.tags import (
    Params,
    caller_of,
    dicts,
    filters,
    flag,
    implied_operation,
    opt_bool,
    opt_int,
    opt_str,
    services_of,
    strs,
    tag_specs,
    tags_out,
)
from kiln.errors import KilnError
from kiln.services.images import image_attributes as attrs
from kiln.services.images import images as rules
from kiln.services.images.describe_images import DescribeImagesRequest
from kiln.services.images.describe_images import describe_images as describe

# --- params -> records -------------------------------------------------------------------------


def block_devices_in(value: object) -> tuple[BlockDeviceRecord, ...]:
    out = []
    for bd in dicts(value):
        ebs_in = bd.get("Ebs")
        ebs = None
        if isinstance(ebs_in, Mapping):
            ebs = EbsRecord(
                snapshot_id=opt_str(ebs_in, "SnapshotId"),
                volume_size=opt_int(ebs_in, "VolumeSize"),
                volume_type=opt_str(ebs_in, "VolumeType"),
                iops=opt_int(ebs_in, "Iops"),
                throughput=opt_int(ebs_in, "Throughput"),
                delete_on_termination=opt_bool(ebs_in, "DeleteOnTermination"),
                encrypted=opt_bool(ebs_in, "Encrypted"),
                kms_key_id=opt_str(ebs_in, "KmsKeyId") or None,
                outpost_arn=opt_str(ebs_in, "OutpostArn"),
                availability_zone=opt_str(ebs_in, "AvailabilityZone"),
                volume_initialization_rate=opt_int(ebs_in, "VolumeInitializationRate"),
                ebs_card_index=opt_int(ebs_in, "EbsCardIndex"),
            )
        out.append(
            BlockDeviceRecord(
                device_name=opt_str(bd, "DeviceName") or "",
                virtual_name=opt_str(bd, "VirtualName"),
                no_device="NoDevice" in bd,
                ebs=ebs,
            )
        )
    return tuple(out)


def permissions_in(value: object) -> tuple[LaunchPermissionRecord, ...]:
    return tuple(
        LaunchPermissionRecord(
            opt_str(p, "UserId"),
            opt_str(p, "Group"),
            opt_str(p, "OrganizationArn"),
            opt_str(p, "OrganizationalUnitArn"),
        )
        for p in dicts(value)
    )


def _image_id(params: Params) -> str:
    image_id = opt_str(params, "ImageId")
    if not image_id:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter ImageId")
    return image_id


# --- records -> output dicts -------------------------------------------------------------------


def block_devices_out(bdms: tuple[BlockDeviceRecord, ...]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for bd in bdms:
        item: dict[str, object] = {"DeviceName": bd.device_name, "VirtualName": bd.virtual_name}
        if bd.no_device:
            item["NoDevice"] = ""
        if bd.ebs is not None:
            e = bd.ebs
            item["Ebs"] = {
                "SnapshotId": e.snapshot_id,
                "VolumeSize": e.volume_size,
                "VolumeType": e.volume_type,
                "Iops": e.iops,
                "Throughput": e.throughput,
                "DeleteOnTermination": e.delete_on_termination,
                "Encrypted": e.encrypted,
                "KmsKeyId": e.kms_key_id,
                "OutpostArn": e.outpost_arn,
                "AvailabilityZone": e.availability_zone,
                "VolumeInitializationRate": e.volume_initialization_rate,
                "EbsCardIndex": e.ebs_card_index,
            }
        out.append(item)
    return out


def image_out(i: ImageRecord) -> dict[str, object]:
    reason = (
        {"Code": i.state_reason_code, "Message": i.state_reason_message}
        if i.state_reason_code
        else None
    )
    return {
        "ImageId": i.image_id,
        "ImageLocation": i.image_location,
        "State": i.state,
        "OwnerId": i.owner_id,
        "CreationDate": i.creation_date,
        "Public": i.is_public,
        "ProductCodes": [
            {"ProductCodeId": p.product_code_id, "ProductCodeType": p.product_code_type}
            for p in i.product_codes
        ]
        or None,
        "Architecture": i.architecture,
        "ImageType": i.image_type,
        "KernelId": i.kernel_id,
        "RamdiskId": i.ramdisk_id,
        "Platform": i.platform,
        "PlatformDetails": i.platform_details,
        "UsageOperation": i.usage_operation,
        "BlockDeviceMappings": block_devices_out(i.block_devices),
        "Description": i.description,
        "EnaSupport": i.ena_support,
        "Hypervisor": i.hypervisor,
        "ImageOwnerAlias": i.owner_alias,
        "Name": i.name,
        "RootDeviceName": i.root_device_name,
        "RootDeviceType": i.root_device_type,
        "SriovNetSupport": i.sriov_net_support,
        "StateReason": reason,
        "Tags": tags_out(i.tags),
        "VirtualizationType": i.virtualization_type,
        "BootMode": i.boot_mode,
        "TpmSupport": i.tpm_support,
        "DeprecationTime": i.deprecation_time,
        "ImdsSupport": i.imds_support,
        "SourceInstanceId": i.source_instance_id,
        "DeregistrationProtection": i.deregistration_protection,
        "LastLaunchedTime": i.last_launched_time,
        "SourceImageId": i.source_image_id,
        "SourceImageRegion": i.source_image_region,
        "ImageAllowed": i.image_allowed,
    }


# --- handlers ----------------------------------------------------------------------------------


def register_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = rules.RegisterImageRequest(
        name=opt_str(params, "Name") or "",
        description=opt_str(params, "Description"),
        architecture=opt_str(params, "Architecture"),
        image_location=opt_str(params, "ImageLocation"),
        root_device_name=opt_str(params, "RootDeviceName"),
        block_devices=block_devices_in(params.get("BlockDeviceMappings")),
        virtualization_type=opt_str(params, "VirtualizationType"),
        kernel_id=opt_str(params, "KernelId"),
        ramdisk_id=opt_str(params, "RamdiskId"),
        sriov_net_support=opt_str(params, "SriovNetSupport"),
        ena_support=opt_bool(params, "EnaSupport"),
        boot_mode=opt_str(params, "BootMode"),
        tpm_support=opt_str(params, "TpmSupport"),
        uefi_data=opt_str(params, "UefiData"),
        imds_support=opt_str(params, "ImdsSupport"),
        billing_products=strs(params.get("BillingProducts")),
        tag_specs=tag_specs(params),
        dry_run=flag(params, "DryRun"),
    )
    return {"ImageId": rules.register_image(services_of(ctx), caller_of(ctx), req)}


def describe_images(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = DescribeImagesRequest(
        image_ids=strs(params.get("ImageIds")),
        owners=strs(params.get("Owners")),
        executable_users=strs(params.get("ExecutableUsers")),
        filters=filters(params),
        include_deprecated=flag(params, "IncludeDeprecated"),
        include_disabled=flag(params, "IncludeDisabled"),
        max_results=opt_int(params, "MaxResults"),
        next_token=opt_str(params, "NextToken"),
        dry_run=flag(params, "DryRun"),
    )
    res = describe(services_of(ctx), caller_of(ctx), req)
    return {"Images": [image_out(i) for i in res.images], "NextToken": res.next_token}


def deregister_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    results = rules.deregister_image(
        services_of(ctx),
        caller_of(ctx),
        _image_id(params),
        flag(params, "DeleteAssociatedSnapshots"),
        flag(params, "DryRun"),
    )
    return {
        "Return": True,
        "DeleteSnapshotResults": [
            {"SnapshotId": r.snapshot_id, "ReturnCode": r.return_code} for r in results
        ]
        or None,
    }


def enable_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.enable_image(services_of(ctx), caller_of(ctx), _image_id(params), flag(params, "DryRun"))
    return {"Return": True}


def disable_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.disable_image(services_of(ctx), caller_of(ctx), _image_id(params), flag(params, "DryRun"))
    return {"Return": True}


def enable_image_deprecation(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    at = params.get("DeprecateAt")
    if not isinstance(at, datetime):
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter DeprecateAt"
        )
    rules.enable_image_deprecation(
        services_of(ctx), caller_of(ctx), _image_id(params), at, flag(params, "DryRun")
    )
    return {"Return": True}


def disable_image_deprecation(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.disable_image_deprecation(
        services_of(ctx), caller_of(ctx), _image_id(params), flag(params, "DryRun")
    )
    return {"Return": True}


def enable_image_deregistration_protection(
    ctx: RequestContext, params: Params
) -> Mapping[str, object]:
    state = rules.enable_image_deregistration_protection(
        services_of(ctx),
        caller_of(ctx),
        _image_id(params),
        flag(params, "WithCooldown"),
        flag(params, "DryRun"),
    )
    return {"Return": state}


def disable_image_deregistration_protection(
    ctx: RequestContext, params: Params
) -> Mapping[str, object]:
    state = rules.disable_image_deregistration_protection(
        services_of(ctx), caller_of(ctx), _image_id(params), flag(params, "DryRun")
    )
    return {"Return": state}


_ATTR_KEYS = {
    "description": "Description",
    "kernel": "KernelId",
    "ramdisk": "RamdiskId",
    "sriovNetSupport": "SriovNetSupport",
    "bootMode": "BootMode",
    "tpmSupport": "TpmSupport",
    "uefiData": "UefiData",
    "lastLaunchedTime": "LastLaunchedTime",
    "imdsSupport": "ImdsSupport",
    "deregistrationProtection": "DeregistrationProtection",
}
_ATTR_FIELDS = {
    "description": "description",
    "kernel": "kernel_id",
    "ramdisk": "ramdisk_id",
    "sriovNetSupport": "sriov_net_support",
    "bootMode": "boot_mode",
    "tpmSupport": "tpm_support",
    "uefiData": "uefi_data",
    "lastLaunchedTime": "last_launched_time",
    "imdsSupport": "imds_support",
    "deregistrationProtection": "deregistration_protection",
}


def describe_image_attribute(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    attribute = opt_str(params, "Attribute") or ""
    got = attrs.describe_image_attribute(
        services_of(ctx), caller_of(ctx), _image_id(params), attribute, flag(params, "DryRun")
    )
    out: dict[str, object] = {"ImageId": got.image.image_id}
    if attribute == "launchPermission":
        out["LaunchPermissions"] = [
            {
                "UserId": p.user_id,
                "Group": p.group,
                "OrganizationArn": p.organization_arn,
                "OrganizationalUnitArn": p.organizational_unit_arn,
            }
            for p in got.launch_permissions
        ]
    elif attribute == "productCodes":
        out["ProductCodes"] = [
            {"ProductCodeId": p.product_code_id, "ProductCodeType": p.product_code_type}
            for p in got.image.product_codes
        ]
    elif attribute == "blockDeviceMapping":
        out["BlockDeviceMappings"] = block_devices_out(got.image.block_devices)
    else:
        value = getattr(got.image, _ATTR_FIELDS[attribute])
        out[_ATTR_KEYS[attribute]] = {"Value": value} if value is not None else {}
    return out


def modify_image_attribute(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    attribute = opt_str(params, "Attribute")
    add: list[LaunchPermissionRecord] = []
    remove: list[LaunchPermissionRecord] = []
    lp = params.get("LaunchPermission")
    if isinstance(lp, Mapping):
        add += permissions_in(lp.get("Add"))
        remove += permissions_in(lp.get("Remove"))
    legacy = (
        [LaunchPermissionRecord(user_id=u) for u in strs(params.get("UserIds"))]
        + [LaunchPermissionRecord(group=g) for g in strs(params.get("UserGroups"))]
        + [LaunchPermissionRecord(organization_arn=a) for a in strs(params.get("OrganizationArns"))]
        + [
            LaunchPermissionRecord(organizational_unit_arn=a)
            for a in strs(params.get("OrganizationalUnitArns"))
        ]
    )
    op = opt_str(params, "OperationType") or implied_operation(add, remove)
    if legacy and op not in ("add", "remove"):
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter OperationType"
        )
    (add if op == "add" else remove).extend(legacy)
    add, remove = list(dict.fromkeys(add)), list(dict.fromkeys(remove))
    description = opt_str(params, "Value") if attribute == "description" else None
    desc_in = params.get("Description")
    if isinstance(desc_in, Mapping):
        description = opt_str(desc_in, "Value") or ""
    imds_in = params.get("ImdsSupport")
    imds = (
        opt_str(imds_in, "Value")
        if isinstance(imds_in, Mapping)
        else (opt_str(params, "Value") if attribute == "imdsSupport" else None)
    )
    req = attrs.ModifyImageAttributeRequest(
        image_id=_image_id(params),
        attribute=attribute,
        description=description,
        add=tuple(add),
        remove=tuple(remove),
        product_codes=strs(params.get("ProductCodes")),
        imds_support=imds,
        dry_run=flag(params, "DryRun"),
    )
    attrs.modify_image_attribute(services_of(ctx), caller_of(ctx), req)
    return {}


def reset_image_attribute(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    attrs.reset_image_attribute(
        services_of(ctx),
        caller_of(ctx),
        _image_id(params),
        opt_str(params, "Attribute") or "",
        flag(params, "DryRun"),
    )
    return {}
