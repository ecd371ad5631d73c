"""Images' latest scans and their findings (docs/scan.md; table ``image_scans``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import ImageFindingRecord, ImageScanRecord


def _finding_out(f: ImageFindingRecord) -> dict[str, Any]:
    return {
        "CheckId": f.check_id,
        "Severity": f.severity,
        "Title": f.title,
        "Paths": list(f.paths),
        "FirstObservedAt": f.first_observed_at,
    }


def _finding_in(d: dict[str, Any]) -> ImageFindingRecord:
    return ImageFindingRecord(
        str(d["CheckId"]),
        str(d["Severity"]),
        str(d["Title"]),
        tuple(str(p) for p in d.get("Paths", ())),
        str(d["FirstObservedAt"]),
    )


def get_image_scan(tx: Session, image_id: str) -> ImageScanRecord | None:
    row = tx.get(models.ImageScan, image_id)
    if row is None:
        return None
    return ImageScanRecord(
        image_id=row.image_id,
        region=row.region,
        snapshot_id=row.snapshot_id,
        status=row.status,
        reason=row.reason,
        policy=row.policy,
        bytes_read=row.bytes_read,
        findings=tuple(_finding_in(d) for d in row.findings),
        first_scanned_at=row.first_scanned_at,
        scanned_at=row.scanned_at,
    )


def put_image_scan(tx: Session, scan: ImageScanRecord) -> None:
    """Store ``scan`` as the image's latest, replacing the one before."""
    row = tx.get(models.ImageScan, scan.image_id)
    if row is None:
        row = models.ImageScan(image_id=scan.image_id, first_scanned_at=scan.first_scanned_at)
        tx.add(row)
    row.region = scan.region
    row.snapshot_id = scan.snapshot_id
    row.status = scan.status
    row.reason = scan.reason
    row.policy = scan.policy
    row.bytes_read = scan.bytes_read
    row.findings = [_finding_out(f) for f in scan.findings]
    row.scanned_at = scan.scanned_at
    tx.flush()
