"""Snapshot handlers: DescribeSnapshots, CreateSnapshot, CopySnapshot, DeleteSnapshot and
Describe/Modify/ResetSnapshotAttribute (params -> request -> rule -> result dict)."""

from __future__ import annotations

from collections.abc import Mapping

from kiln import errors
from kiln.aws.context import RequestContext
from kiln.catalog.records import SnapshotRecord
from kiln.catalog.snapshots import SnapshotPermissionRecord
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
from kiln.services.snapshots import copy_snapshot as copy_rule
from kiln.services.snapshots import create_snapshot as create_snapshot_rule
from kiln.services.snapshots import snapshot_attributes as attrs
from kiln.services.snapshots import snapshots as rules
from kiln.services.snapshots.access import parse_time


def required(params: Params, key: str) -> str:
    value = opt_str(params, key)
    if not value:
        raise KilnError(errors.MissingParameter, f"The request must contain the parameter {key}")
    return value


def snapshot_out(s: SnapshotRecord) -> dict[str, object]:
    return {
        "SnapshotId": s.snapshot_id,
        "VolumeId": s.volume_id,
        "State": s.state,
        "StateMessage": s.state_message or None,
        "StartTime": parse_time(s.start_time),
        "Progress": s.progress,
        "OwnerId": s.owner_id,
        "Description": s.description or "",
        "VolumeSize": s.volume_size,
        "OwnerAlias": s.owner_alias,
        "Tags": tags_out(s.tags),
        "Encrypted": s.encrypted,
        "KmsKeyId": s.kms_key_id,
        "StorageTier": s.storage_tier,
        "CompletionTime": parse_time(s.completion_time),
        "FullSnapshotSizeInBytes": s.full_size_bytes,
        "SseType": "sse-ebs" if s.encrypted else None,
    }


def describe_snapshots(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = rules.describe_snapshots(
        services_of(ctx),
        caller_of(ctx),
        rules.DescribeSnapshotsRequest(
            snapshot_ids=strs(params.get("SnapshotIds")),
            owner_ids=strs(params.get("OwnerIds")),
            restorable_by=strs(params.get("RestorableByUserIds")),
            filters=filters(params),
            max_results=opt_int(params, "MaxResults"),
            next_token=opt_str(params, "NextToken"),
            dry_run=flag(params, "DryRun"),
        ),
    )
    return {"Snapshots": [snapshot_out(s) for s in res.snapshots], "NextToken": res.next_token}


def create_snapshot(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    snap = create_snapshot_rule.create_snapshot(
        services_of(ctx),
        caller_of(ctx),
        required(params, "VolumeId"),
        opt_str(params, "Description"),
        tag_specs(params),
        flag(params, "DryRun"),
    )
    return snapshot_out(snap)


def copy_snapshot(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = copy_rule.CopySnapshotRequest(
        source_region=required(params, "SourceRegion"),
        source_snapshot_id=required(params, "SourceSnapshotId"),
        description=opt_str(params, "Description"),
        encrypted=opt_bool(params, "Encrypted"),
        kms_key_id=opt_str(params, "KmsKeyId") or None,
        destination_region=opt_str(params, "DestinationRegion"),
        tag_specs=tag_specs(params),
        dry_run=flag(params, "DryRun"),
    )
    snapshot_id = copy_rule.copy_snapshot(services_of(ctx), caller_of(ctx), req)
    specs = [s for s in tag_specs(params) if s.resource_type == "snapshot"]
    tags = [{"Key": k, "Value": v} for s in specs for k, v in s.tags]
    return {"SnapshotId": snapshot_id, "Tags": tags or None}


def delete_snapshot(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.delete_snapshot(
        services_of(ctx), caller_of(ctx), required(params, "SnapshotId"), flag(params, "DryRun")
    )
    return {}


def _perms(value: object) -> tuple[SnapshotPermissionRecord, ...]:
    return tuple(
        SnapshotPermissionRecord(opt_str(p, "UserId"), opt_str(p, "Group")) for p in dicts(value)
    )


def describe_snapshot_attribute(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = attrs.describe_snapshot_attribute(
        services_of(ctx),
        caller_of(ctx),
        required(params, "SnapshotId"),
        required(params, "Attribute"),
        flag(params, "DryRun"),
    )
    out: dict[str, object] = {"SnapshotId": res.snapshot_id}
    if res.create_volume_permissions is not None:
        out["CreateVolumePermissions"] = [
            {"UserId": p.user_id, "Group": p.group} for p in res.create_volume_permissions
        ]
    if res.product_codes is not None:
        out["ProductCodes"] = [
            {"ProductCodeId": c, "ProductCodeType": "marketplace"} for c in res.product_codes
        ]
    return out


def modify_snapshot_attribute(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    perm = params.get("CreateVolumePermission")
    add = _perms(perm.get("Add")) if isinstance(perm, Mapping) else ()
    remove = _perms(perm.get("Remove")) if isinstance(perm, Mapping) else ()
    # The older form: Attribute + OperationType + UserIds / GroupNames.
    listed = tuple(
        SnapshotPermissionRecord(user_id=u) for u in strs(params.get("UserIds"))
    ) + tuple(SnapshotPermissionRecord(group=g) for g in strs(params.get("GroupNames")))
    operation = opt_str(params, "OperationType") or implied_operation(add, remove)
    if listed:
        if operation not in ("add", "remove"):
            raise KilnError(
                errors.MissingParameter, "The request must contain the parameter OperationType"
            )
        if operation == "add":
            add += listed
        else:
            remove += listed
    add, remove = tuple(dict.fromkeys(add)), tuple(dict.fromkeys(remove))
    attrs.modify_snapshot_attribute(
        services_of(ctx),
        caller_of(ctx),
        attrs.ModifySnapshotAttributeRequest(
            snapshot_id=required(params, "SnapshotId"),
            attribute=opt_str(params, "Attribute"),
            operation_type=operation,
            add=add,
            remove=remove,
            dry_run=flag(params, "DryRun"),
        ),
    )
    return {}


def reset_snapshot_attribute(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    attrs.reset_snapshot_attribute(
        services_of(ctx),
        caller_of(ctx),
        required(params, "SnapshotId"),
        required(params, "Attribute"),
        flag(params, "DryRun"),
    )
    return {}
