"""Build versions of image recipes (docs/builds.md#versions; table ``build_versions``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import utc_now


@dataclass(frozen=True, slots=True)
class BuildVersionRecord:
    account_id: str
    region: str
    recipe: str
    version: str
    build: int
    state: str  # building | available | failed
    image_id: str | None
    parent_image_id: str | None
    reason: str | None
    log: str
    started_at: str
    finished_at: str | None


def _record(row: models.BuildVersion) -> BuildVersionRecord:
    return BuildVersionRecord(
        row.account_id,
        row.region,
        row.recipe,
        row.version,
        row.build,
        row.state,
        row.image_id,
        row.parent_image_id,
        row.reason,
        row.log,
        row.started_at,
        row.finished_at,
    )


def start_build_version(
    tx: Session, account_id: str, region: str, recipe: str, version: str
) -> BuildVersionRecord:
    """The next build number of the recipe's version (1 for the first; a failed build keeps
    its number), recorded ``building``. The unique index makes a concurrent duplicate fail."""
    last = tx.scalar(
        select(func.max(models.BuildVersion.build)).where(
            models.BuildVersion.account_id == account_id,
            models.BuildVersion.region == region,
            models.BuildVersion.recipe == recipe,
            models.BuildVersion.version == version,
        )
    )
    row = models.BuildVersion(
        account_id=account_id,
        region=region,
        recipe=recipe,
        version=version,
        build=(last or 0) + 1,
        state="building",
        log="",
        started_at=utc_now(),
    )
    tx.add(row)
    tx.flush()
    return _record(row)


def _row(tx: Session, b: BuildVersionRecord) -> models.BuildVersion:
    row = tx.scalars(
        select(models.BuildVersion).where(
            models.BuildVersion.account_id == b.account_id,
            models.BuildVersion.region == b.region,
            models.BuildVersion.recipe == b.recipe,
            models.BuildVersion.version == b.version,
            models.BuildVersion.build == b.build,
        )
    ).one()
    return row


def finish_build_version(
    tx: Session,
    b: BuildVersionRecord,
    *,
    state: str,
    image_id: str | None,
    parent_image_id: str | None,
    reason: str | None,
    log: str,
) -> BuildVersionRecord:
    row = _row(tx, b)
    row.state = state
    row.image_id = image_id
    row.parent_image_id = parent_image_id
    row.reason = reason
    row.log = log
    row.finished_at = utc_now()
    tx.flush()
    return _record(row)


def build_versions(
    tx: Session, account_id: str, region: str, recipe: str | None = None
) -> list[BuildVersionRecord]:
    """The account's builds in the region (of one recipe), oldest first."""
    q = select(models.BuildVersion).where(
        models.BuildVersion.account_id == account_id, models.BuildVersion.region == region
    )
    if recipe is not None:
        q = q.where(models.BuildVersion.recipe == recipe)
    return [_record(r) for r in tx.scalars(q.order_by(models.BuildVersion.id))]
