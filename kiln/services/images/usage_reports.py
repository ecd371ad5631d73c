"""Image usage reports: CreateImageUsageReport, DescribeImageUsageReports,
DescribeImageUsageReportEntries, DeleteImageUsageReport (docs/lineage.md#usage-reports).

A report counts, when it is created, each other account's instances of the owner's image that
are not terminated (``ec2:Instance``; Kiln has no launch templates, so ``ec2:LaunchTemplate``
counts nothing). It is ``available`` at once and expires after 30 days, as on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from kiln import errors
from kiln.catalog import image_usage as cat
from kiln.catalog.records import (
    Filter,
    ImageUsageReportRecord,
    TagRecord,
    UsageEntryRecord,
    ec2_time,
)
from kiln.catalog.tags import delete_resource_tags, tags_for
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.images.access import owned_image
from kiln.services.row_filters import check_names, matches
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import (
    check_account_id,
    check_image_id,
    decode_token,
    dry_run,
    encode_token,
)
from kiln.types import is_id, new_id

T = TypeVar("T")
RESOURCE_TYPES = ("ec2:Instance", "ec2:LaunchTemplate")
LIFETIME = timedelta(days=30)
REPORT_FILTERS = ("creation-time", "state")
ENTRY_FILTERS = ("account-id", "creation-time", "resource-type")


@dataclass(frozen=True, slots=True)
class CreateImageUsageReportRequest:
    image_id: str
    resource_types: tuple[str, ...]
    account_ids: tuple[str, ...] = ()
    client_token: str | None = None
    tag_specs: tuple[TagSpec, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DescribeImageUsageReportsRequest:
    image_ids: tuple[str, ...] = ()
    report_ids: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    max_results: int | None = None
    next_token: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class UsageReport:
    report: ImageUsageReportRecord
    tags: tuple[TagRecord, ...]


@dataclass(frozen=True, slots=True)
class UsageEntry:
    report: ImageUsageReportRecord
    entry: UsageEntryRecord


@dataclass(frozen=True, slots=True)
class ReportPage:
    reports: tuple[UsageReport, ...]
    next_token: str | None


@dataclass(frozen=True, slots=True)
class EntryPage:
    entries: tuple[UsageEntry, ...]
    next_token: str | None


def _check_report_id(report_id: str) -> None:
    if not is_id(report_id, "amiur"):
        raise KilnError(
            errors.InvalidImageUsageReportIdMalformed,
            f'Invalid id: "{report_id}" (expecting "amiur-...")',
        )


def create_image_usage_report(
    services: Services, caller: Caller, req: CreateImageUsageReportRequest
) -> str:
    check_image_id(req.image_id)
    if not req.resource_types:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter ResourceType"
        )
    for kind in req.resource_types:
        if kind not in RESOURCE_TYPES:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Value ({kind}) for parameter ResourceType is invalid. "
                f"Valid values: {', '.join(RESOURCE_TYPES)}",
            )
    for account in req.account_ids:
        check_account_id(account, errors.InvalidParameterValue)
    check_tag_specs(req.tag_specs, ["image-usage-report"])
    now = datetime.now(UTC)
    with services.catalog.write() as tx:
        owned_image(tx, caller, req.image_id, req.dry_run)
        dry_run(req.dry_run)
        if req.client_token:
            for old in cat.reports(tx, caller.region, caller.account_id, ec2_time(now)):
                if old.client_token == req.client_token:
                    return old.report_id
        counts = cat.instance_counts(tx, caller.region, req.image_id)
        entries = tuple(
            UsageEntryRecord("ec2:Instance", account, n)
            for account, n in sorted(counts.items())
            if "ec2:Instance" in req.resource_types
            and account != caller.account_id
            and (not req.account_ids or account in req.account_ids)
        )
        report = ImageUsageReportRecord(
            report_id=new_id("amiur"),
            region=caller.region,
            owner_id=caller.account_id,
            image_id=req.image_id,
            creation_time=ec2_time(now),
            expiration_time=ec2_time(now + LIFETIME),
            resource_types=tuple(dict.fromkeys(req.resource_types)),
            account_ids=req.account_ids,
            entries=entries,
            client_token=req.client_token,
        )
        cat.create_report(tx, report)
        apply_tag_specs(tx, caller, req.tag_specs, {"image-usage-report": [report.report_id]})
    return report.report_id


def _selected(
    services: Services, caller: Caller, req: DescribeImageUsageReportsRequest
) -> list[UsageReport]:
    for image_id in req.image_ids:
        check_image_id(image_id)
    for report_id in req.report_ids:
        _check_report_id(report_id)
    dry_run(req.dry_run)
    with services.catalog.read() as tx:
        found = cat.reports(tx, caller.region, caller.account_id, ec2_time(datetime.now(UTC)))
        tags = tags_for(tx, [r.report_id for r in found], caller.account_id)
    missing = sorted(set(req.report_ids) - {r.report_id for r in found})
    if missing:
        raise KilnError(
            errors.InvalidImageUsageReportIdNotFound,
            f"The image usage report ID '{missing[0]}' does not exist",
        )
    return [
        UsageReport(r, tuple(tags.get(r.report_id, ())))
        for r in found
        if (not req.report_ids or r.report_id in req.report_ids)
        and (not req.image_ids or r.image_id in req.image_ids)
    ]


def _page(items: list[T], req: DescribeImageUsageReportsRequest) -> tuple[list[T], str | None]:
    query = (req.image_ids, req.report_ids, [(f.name, f.values) for f in req.filters])
    after = decode_token(req.next_token, query)
    start = int(str(after)) if after is not None else 0
    size = req.max_results or len(items) or 1
    more = start + size < len(items)
    return items[start : start + size], encode_token(start + size, query) if more else None


def describe_image_usage_reports(
    services: Services, caller: Caller, req: DescribeImageUsageReportsRequest
) -> ReportPage:
    check_names(req.filters, REPORT_FILTERS)
    getters = {
        "creation-time": lambda u: [u.report.creation_time],
        "state": lambda u: ["available"],
    }
    found = [
        u for u in _selected(services, caller, req) if matches(u, u.tags, req.filters, getters)
    ]
    page, token = _page(found, req)
    return ReportPage(tuple(page), token)


def describe_image_usage_report_entries(
    services: Services, caller: Caller, req: DescribeImageUsageReportsRequest
) -> EntryPage:
    check_names(req.filters, ENTRY_FILTERS)
    getters = {
        "account-id": lambda e: [e.entry.account_id],
        "creation-time": lambda e: [e.report.creation_time],
        "resource-type": lambda e: [e.entry.resource_type],
    }
    unfiltered = replace(req, filters=())
    found = [
        e
        for u in _selected(services, caller, unfiltered)
        for e in (UsageEntry(u.report, x) for x in u.report.entries)
        if matches(e, (), req.filters, getters)
    ]
    page, token = _page(found, req)
    return EntryPage(tuple(page), token)


def delete_image_usage_report(
    services: Services, caller: Caller, report_id: str, dry_run_flag: bool = False
) -> None:
    _check_report_id(report_id)
    with services.catalog.write() as tx:
        mine = cat.reports(tx, caller.region, caller.account_id, ec2_time(datetime.now(UTC)))
        if report_id not in {r.report_id for r in mine}:
            raise KilnError(
                errors.InvalidImageUsageReportIdNotFound,
                f"The image usage report ID '{report_id}' does not exist",
            )
        dry_run(dry_run_flag)
        cat.delete_report(tx, report_id)
        delete_resource_tags(tx, report_id)
