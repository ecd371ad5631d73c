"""Who uses an image: the instances launched from it, and image usage reports."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import ImageUsageReportRecord, UsageEntryRecord

I = models.Instance  # noqa: E741
R = models.ImageUsageReport


def instances_using(
    tx: Session, region: str, owner_id: str, image_ids: Sequence[str]
) -> list[tuple[str, str]]:
    """``(image_id, instance_id)`` of the owner's instances in ``region`` launched from one of
    ``image_ids`` that are not terminated, by image then instance."""
    rows = tx.execute(
        select(I.image_id, I.instance_id)
        .where(
            I.region == region,
            I.owner_id == owner_id,
            I.image_id.in_(list(image_ids)),
            I.state != "terminated",
        )
        .order_by(I.image_id, I.instance_id)
    )
    return [(str(a), str(b)) for a, b in rows]


def instance_counts(tx: Session, region: str, image_id: str) -> dict[str, int]:
    """Every account's number of not-terminated instances of ``image_id`` in ``region``."""
    rows = tx.execute(
        select(I.owner_id, func.count())
        .where(I.region == region, I.image_id == image_id, I.state != "terminated")
        .group_by(I.owner_id)
    )
    return {str(a): int(n) for a, n in rows}


def create_report(tx: Session, report: ImageUsageReportRecord) -> None:
    tx.execute(
        insert(R).values(
            report_id=report.report_id,
            region=report.region,
            owner_id=report.owner_id,
            image_id=report.image_id,
            resource_types=list(report.resource_types),
            account_ids=list(report.account_ids),
            entries=[
                {
                    "ResourceType": e.resource_type,
                    "AccountId": e.account_id,
                    "UsageCount": e.usage_count,
                }
                for e in report.entries
            ],
            client_token=report.client_token,
            creation_time=report.creation_time,
            expiration_time=report.expiration_time,
        )
    )


def _record(row: models.ImageUsageReport) -> ImageUsageReportRecord:
    return ImageUsageReportRecord(
        report_id=row.report_id,
        region=row.region,
        owner_id=row.owner_id,
        image_id=row.image_id,
        creation_time=row.creation_time,
        expiration_time=row.expiration_time,
        resource_types=tuple(str(t) for t in row.resource_types),
        account_ids=tuple(str(a) for a in row.account_ids),
        entries=tuple(
            UsageEntryRecord(str(e["ResourceType"]), str(e["AccountId"]), int(e["UsageCount"]))
            for e in row.entries
        ),
        client_token=row.client_token,
    )


def reports(tx: Session, region: str, owner_id: str, now: str) -> list[ImageUsageReportRecord]:
    """The owner's reports in ``region`` not expired at ``now``, oldest first."""
    rows = tx.scalars(
        select(R)
        .where(R.region == region, R.owner_id == owner_id, R.expiration_time > now)
        .order_by(R.creation_time, R.report_id)
    )
    return [_record(r) for r in rows]


def delete_report(tx: Session, report_id: str) -> None:
    tx.execute(delete(R).where(R.report_id == report_id))
