"""Handlers for an image's Recycle Bin, lineage, references and usage reports
(docs/recycle-bin.md, docs/lineage.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from kiln.aws.context import RequestContext
from kiln.ec2.snapshots import required
from kiln.ec2.tags import (
    Params,
    caller_of,
    dicts,
    filters,
    flag,
    opt_int,
    opt_str,
    services_of,
    strs,
    tag_specs,
    tags_out,
)
from kiln.services.images import lineage
from kiln.services.images import usage_reports as reports
from kiln.services.recyclebin import images as recycle_bin


def _time(text: str) -> datetime:
    """A catalog timestamp as the ``MillisecondDateTime`` these shapes render."""
    return datetime.fromisoformat(text)


def list_images_in_recycle_bin(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = recycle_bin.list_images_in_recycle_bin(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("ImageIds")),
        opt_int(params, "MaxResults"),
        opt_str(params, "NextToken"),
        flag(params, "DryRun"),
    )
    return {
        "Images": [
            {
                "ImageId": b.image.image_id,
                "Name": b.image.name,
                "Description": b.image.description,
                "RecycleBinEnterTime": _time(b.entry.enter_time),
                "RecycleBinExitTime": _time(b.entry.exit_time),
            }
            for b in page.images
        ],
        "NextToken": page.next_token,
    }


def restore_image_from_recycle_bin(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    recycle_bin.restore_image_from_recycle_bin(
        services_of(ctx), caller_of(ctx), required(params, "ImageId"), flag(params, "DryRun")
    )
    return {"Return": True}


def get_image_ancestry(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    chain = lineage.get_image_ancestry(
        services_of(ctx), caller_of(ctx), required(params, "ImageId"), flag(params, "DryRun")
    )
    return {
        "ImageAncestryEntries": [
            {
                "CreationDate": _time(i.creation_date),
                "ImageId": i.image_id,
                "ImageOwnerAlias": i.owner_alias,
                "SourceImageId": i.source_image_id,
                "SourceImageRegion": i.source_image_region,
            }
            for i in chain
        ]
    }


def describe_image_references(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = lineage.describe_image_references(
        services_of(ctx),
        caller_of(ctx),
        lineage.DescribeImageReferencesRequest(
            image_ids=strs(params.get("ImageIds")),
            include_all_resource_types=flag(params, "IncludeAllResourceTypes"),
            resource_types=tuple(
                str(t.get("ResourceType", "")) for t in dicts(params.get("ResourceTypes"))
            ),
            max_results=opt_int(params, "MaxResults"),
            next_token=opt_str(params, "NextToken"),
            dry_run=flag(params, "DryRun"),
        ),
    )
    return {
        "ImageReferences": [
            {"ImageId": r.image_id, "ResourceType": r.resource_type, "Arn": r.arn}
            for r in page.references
        ],
        "NextToken": page.next_token,
    }


def create_image_usage_report(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    report_id = reports.create_image_usage_report(
        services_of(ctx),
        caller_of(ctx),
        reports.CreateImageUsageReportRequest(
            image_id=required(params, "ImageId"),
            resource_types=tuple(
                str(t.get("ResourceType", "")) for t in dicts(params.get("ResourceTypes"))
            ),
            account_ids=strs(params.get("AccountIds")),
            client_token=opt_str(params, "ClientToken"),
            tag_specs=tag_specs(params),
            dry_run=flag(params, "DryRun"),
        ),
    )
    return {"ReportId": report_id}


def _describe_request(params: Params) -> reports.DescribeImageUsageReportsRequest:
    return reports.DescribeImageUsageReportsRequest(
        image_ids=strs(params.get("ImageIds")),
        report_ids=strs(params.get("ReportIds")),
        filters=filters(params),
        max_results=opt_int(params, "MaxResults"),
        next_token=opt_str(params, "NextToken"),
        dry_run=flag(params, "DryRun"),
    )


def describe_image_usage_reports(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = reports.describe_image_usage_reports(
        services_of(ctx), caller_of(ctx), _describe_request(params)
    )
    return {
        "ImageUsageReports": [
            {
                "ImageId": u.report.image_id,
                "ReportId": u.report.report_id,
                "ResourceTypes": [{"ResourceType": t} for t in u.report.resource_types],
                "AccountIds": list(u.report.account_ids) or None,
                "State": "available",
                "CreationTime": _time(u.report.creation_time),
                "ExpirationTime": _time(u.report.expiration_time),
                "Tags": tags_out(u.tags),
            }
            for u in page.reports
        ],
        "NextToken": page.next_token,
    }


def describe_image_usage_report_entries(
    ctx: RequestContext, params: Params
) -> Mapping[str, object]:
    page = reports.describe_image_usage_report_entries(
        services_of(ctx), caller_of(ctx), _describe_request(params)
    )
    return {
        "ImageUsageReportEntries": [
            {
                "ResourceType": e.entry.resource_type,
                "ReportId": e.report.report_id,
                "UsageCount": e.entry.usage_count,
                "AccountId": e.entry.account_id,
                "ImageId": e.report.image_id,
                "ReportCreationTime": _time(e.report.creation_time),
            }
            for e in page.entries
        ],
        "NextToken": page.next_token,
    }


def delete_image_usage_report(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    reports.delete_image_usage_report(
        services_of(ctx), caller_of(ctx), required(params, "ReportId"), flag(params, "DryRun")
    )
    return {"Return": True}
