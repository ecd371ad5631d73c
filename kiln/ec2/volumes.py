"""Volume handlers: CreateVolume, DescribeVolumes, DeleteVolume."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import RequestContext
from kiln.catalog.records import VolumeRecord
from kiln.ec2.snapshots import required
from kiln.ec2.tags import (
    Params,
    caller_of,
    filters,
    flag,
    opt_bool,
    opt_int,
    opt_str,
    services_of,
    strs,
    tag_specs,
    tags_out,
)
from kiln.services.snapshots import describe_volumes as volume_query
from kiln.services.snapshots import volumes as rules
from kiln.services.snapshots.access import parse_time


def volume_out(v: VolumeRecord) -> dict[str, object]:
    attachments = []
    if v.instance_id:
        attachments.append(
            {
                "VolumeId": v.volume_id,
                "InstanceId": v.instance_id,
                "Device": v.device,
                "State": "attached",
                "AttachTime": parse_time(v.attach_time),
                "DeleteOnTermination": bool(v.delete_on_termination),
            }
        )
    return {
        "VolumeId": v.volume_id,
        "Size": v.size,
        "SnapshotId": v.snapshot_id or "",
        "AvailabilityZone": v.availability_zone,
        "State": v.state,
        "CreateTime": parse_time(v.create_time),
        "Attachments": attachments,
        "Encrypted": v.encrypted,
        "KmsKeyId": v.kms_key_id,
        "VolumeType": v.volume_type,
        "Iops": v.iops,
        "Throughput": v.throughput,
        "MultiAttachEnabled": v.multi_attach_enabled,
        "Tags": tags_out(v.tags),
        "FastRestored": False,
    }


def create_volume(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    vol = rules.create_volume(
        services_of(ctx),
        caller_of(ctx),
        rules.CreateVolumeRequest(
            availability_zone=opt_str(params, "AvailabilityZone"),
            size=opt_int(params, "Size"),
            snapshot_id=opt_str(params, "SnapshotId"),
            volume_type=opt_str(params, "VolumeType"),
            iops=opt_int(params, "Iops"),
            throughput=opt_int(params, "Throughput"),
            encrypted=opt_bool(params, "Encrypted"),
            kms_key_id=opt_str(params, "KmsKeyId") or None,
            multi_attach_enabled=flag(params, "MultiAttachEnabled"),
            tag_specs=tag_specs(params),
            dry_run=flag(params, "DryRun"),
        ),
    )
    return volume_out(vol)


def describe_volumes(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = volume_query.describe_volumes(
        services_of(ctx),
        caller_of(ctx),
        volume_query.DescribeVolumesRequest(
            volume_ids=strs(params.get("VolumeIds")),
            filters=filters(params),
            max_results=opt_int(params, "MaxResults"),
            next_token=opt_str(params, "NextToken"),
            dry_run=flag(params, "DryRun"),
        ),
    )
    return {"Volumes": [volume_out(v) for v in res.volumes], "NextToken": res.next_token}


def delete_volume(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.delete_volume(
        services_of(ctx), caller_of(ctx), required(params, "VolumeId"), flag(params, "DryRun")
    )
    return {}
