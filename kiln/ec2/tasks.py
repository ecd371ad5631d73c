"""Import / export task handlers: ImportSnapshot, ImportImage, ExportImage, their Describe…Tasks,
and CancelImportTask."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import RequestContext
from kiln.ec2.snapshots import required
from kiln.ec2.tags import (
    Params,
    caller_of,
    dicts,
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
from kiln.runtime.jobs import from_json
from kiln.services.tasks import export_image as exports
from kiln.services.tasks import import_image as imports
from kiln.services.tasks import tasks as rules
from kiln.services.tasks.tasks import TaskView


def _container(d: Mapping[str, object]) -> imports.DiskContainer:
    bucket = d.get("UserBucket")
    b = bucket if isinstance(bucket, Mapping) else {}
    return imports.DiskContainer(
        url=opt_str(d, "Url"),
        bucket=opt_str(b, "S3Bucket"),
        key=opt_str(b, "S3Key"),
        format=opt_str(d, "Format"),
        description=opt_str(d, "Description"),
        device_name=opt_str(d, "DeviceName"),
        snapshot_id=opt_str(d, "SnapshotId"),
    )


def _disk_detail(v: TaskView, disk: imports.ImportDisk) -> dict[str, object]:
    """SnapshotTaskDetail / SnapshotDetail of one disk of a task."""
    done = from_json(imports.ImportResult, v.result).disks.get(disk.snapshot_id)
    source = disk.source
    finished = v.status == "completed"
    size = done.disk_image_size if done else None
    return {
        "Description": disk.description,
        "DiskImageSize": float(size) if size is not None else None,
        "Format": (done.format if done else None) or (disk.format or "").upper() or None,
        "SnapshotId": disk.snapshot_id if finished or disk.existing else None,
        "Status": v.status,
        "StatusMessage": v.status_message,
        "Progress": v.progress,
        "Url": disk.url,
        "UserBucket": {"S3Bucket": source.bucket, "S3Key": source.key}
        if source is not None and source.bucket
        else None,
    }


def snapshot_task_out(v: TaskView) -> dict[str, object]:
    p = from_json(imports.ImportSnapshotParams, v.params)
    detail = _disk_detail(v, p.disk)
    detail["Description"] = p.disk.description or p.description
    detail["Encrypted"] = p.key_id is not None
    detail["KmsKeyId"] = p.kms_arn
    return {
        "ImportTaskId": v.task_id,
        "Description": p.description,
        "SnapshotTaskDetail": detail,
        "Tags": tags_out(v.tags),
    }


def image_task_out(v: TaskView, with_boot_mode: bool = True) -> dict[str, object]:
    p = from_json(imports.ImportImageParams, v.params)
    out: dict[str, object] = {
        "ImportTaskId": v.task_id,
        "Architecture": p.architecture,
        "Description": p.description,
        "Encrypted": p.key_id is not None,
        "KmsKeyId": p.kms_arn,
        "Hypervisor": p.hypervisor,
        "ImageId": p.image_id if v.status == "completed" else None,
        "LicenseType": p.license_type,
        "Platform": p.platform,
        "Progress": v.progress,
        "Status": v.status,
        "StatusMessage": v.status_message,
        "SnapshotDetails": [
            {
                **{k: val for k, val in _disk_detail(v, d).items() if k != "Progress"},
                "DeviceName": d.device_name,
            }
            for d in p.disks
        ],
        "Tags": tags_out(v.tags),
        "UsageOperation": p.usage_operation,
    }
    if with_boot_mode:
        out["BootMode"] = p.boot_mode
    return out


def export_task_out(v: TaskView) -> dict[str, object]:
    p = from_json(exports.ExportImageParams, v.params)
    return {
        "ExportImageTaskId": v.task_id,
        "Description": p.description,
        "ImageId": p.image_id,
        "Progress": v.progress,
        "S3ExportLocation": {"S3Bucket": p.s3_bucket, "S3Prefix": p.s3_prefix or None},
        "Status": v.status,
        "StatusMessage": v.status_message,
        "Tags": tags_out(v.tags),
    }


def import_snapshot(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    disk = params.get("DiskContainer")
    services, caller = services_of(ctx), caller_of(ctx)
    task_id = imports.import_snapshot(
        services,
        caller,
        imports.ImportSnapshotRequest(
            disk=_container(disk if isinstance(disk, Mapping) else {}),
            description=opt_str(params, "Description"),
            encrypted=opt_bool(params, "Encrypted"),
            kms_key_id=opt_str(params, "KmsKeyId") or None,
            tag_specs=tag_specs(params),
            dry_run=flag(params, "DryRun"),
        ),
    )
    return snapshot_task_out(rules.get_task(services, caller, task_id))


def import_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    services, caller = services_of(ctx), caller_of(ctx)
    task_id = imports.import_image(
        services,
        caller,
        imports.ImportImageRequest(
            disks=tuple(_container(d) for d in dicts(params.get("DiskContainers"))),
            description=opt_str(params, "Description"),
            architecture=opt_str(params, "Architecture"),
            platform=opt_str(params, "Platform"),
            boot_mode=opt_str(params, "BootMode"),
            license_type=opt_str(params, "LicenseType"),
            hypervisor=opt_str(params, "Hypervisor"),
            usage_operation=opt_str(params, "UsageOperation"),
            encrypted=opt_bool(params, "Encrypted"),
            kms_key_id=opt_str(params, "KmsKeyId") or None,
            tag_specs=tag_specs(params),
            dry_run=flag(params, "DryRun"),
        ),
    )
    return image_task_out(rules.get_task(services, caller, task_id), with_boot_mode=False)


def export_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    services, caller = services_of(ctx), caller_of(ctx)
    loc = params.get("S3ExportLocation")
    location = loc if isinstance(loc, Mapping) else {}
    task_id = exports.export_image(
        services,
        caller,
        exports.ExportImageRequest(
            image_id=required(params, "ImageId"),
            disk_image_format=required(params, "DiskImageFormat"),
            s3_bucket=opt_str(location, "S3Bucket") or "",
            s3_prefix=opt_str(location, "S3Prefix") or "",
            description=opt_str(params, "Description"),
            role_name=opt_str(params, "RoleName"),
            tag_specs=tag_specs(params),
            dry_run=flag(params, "DryRun"),
        ),
    )
    v = rules.get_task(services, caller, task_id)
    p = from_json(exports.ExportImageParams, v.params)
    return {**export_task_out(v), "DiskImageFormat": p.disk_image_format, "RoleName": p.role_name}


def _describe_request(params: Params, ids_key: str) -> rules.DescribeTasksRequest:
    return rules.DescribeTasksRequest(
        strs(params.get(ids_key)),
        filters(params),
        opt_int(params, "MaxResults"),
        opt_str(params, "NextToken"),
        flag(params, "DryRun"),
    )


def describe_import_snapshot_tasks(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = rules.describe_import_snapshot_tasks(
        services_of(ctx), caller_of(ctx), _describe_request(params, "ImportTaskIds")
    )
    return {
        "ImportSnapshotTasks": [snapshot_task_out(v) for v in res.tasks],
        "NextToken": res.next_token,
    }


def describe_import_image_tasks(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = rules.describe_import_image_tasks(
        services_of(ctx), caller_of(ctx), _describe_request(params, "ImportTaskIds")
    )
    return {"ImportImageTasks": [image_task_out(v) for v in res.tasks], "NextToken": res.next_token}


def describe_export_image_tasks(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = rules.describe_export_image_tasks(
        services_of(ctx), caller_of(ctx), _describe_request(params, "ExportImageTaskIds")
    )
    return {
        "ExportImageTasks": [export_task_out(v) for v in res.tasks],
        "NextToken": res.next_token,
    }


def cancel_import_task(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = rules.cancel_import_task(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "ImportTaskId"),
        opt_str(params, "CancelReason"),
        flag(params, "DryRun"),
    )
    return {"ImportTaskId": res.task_id, "PreviousState": res.previous_state, "State": res.state}
