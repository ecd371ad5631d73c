"""Image Builder API resources (docs/imagebuilder.md; table ``imagebuilder_resources``):
components, image recipes, distribution and infrastructure configurations and images, each a
JSON ``body`` under its ARN."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import utc_now


@dataclass(frozen=True, slots=True)
class IbResourceRecord:
    arn: str
    account_id: str
    region: str
    kind: str
    name: str
    version: str
    state: str
    body: dict[str, object]
    log: list[dict[str, object]]
    created_at: str


def _record(row: models.ImageBuilderResource) -> IbResourceRecord:
    return IbResourceRecord(
        row.arn,
        row.account_id,
        row.region,
        row.kind,
        row.name,
        row.version,
        row.state,
        json.loads(row.body),
        [json.loads(line) for line in row.log.splitlines() if line],
        row.created_at,
    )


def add_resource(
    tx: Session,
    *,
    arn: str,
    account_id: str,
    region: str,
    kind: str,
    name: str,
    version: str,
    state: str,
    body: dict[str, object],
) -> IbResourceRecord:
    row = models.ImageBuilderResource(
        arn=arn,
        account_id=account_id,
        region=region,
        kind=kind,
        name=name,
        version=version,
        state=state,
        body=json.dumps(body),
        log="",
        created_at=utc_now(),
    )
    tx.add(row)
    tx.flush()
    return _record(row)


def _row(tx: Session, arn: str) -> models.ImageBuilderResource | None:
    return tx.scalars(
        select(models.ImageBuilderResource).where(models.ImageBuilderResource.arn == arn)
    ).one_or_none()


def get_resource(tx: Session, arn: str) -> IbResourceRecord | None:
    row = _row(tx, arn)
    return None if row is None else _record(row)


def list_resources(
    tx: Session, account_id: str, region: str, kind: str, name: str | None = None
) -> list[IbResourceRecord]:
    """The account's resources of ``kind`` in the region (of one name), oldest first."""
    q = select(models.ImageBuilderResource).where(
        models.ImageBuilderResource.account_id == account_id,
        models.ImageBuilderResource.region == region,
        models.ImageBuilderResource.kind == kind,
    )
    if name is not None:
        q = q.where(models.ImageBuilderResource.name == name)
    return [_record(r) for r in tx.scalars(q.order_by(models.ImageBuilderResource.id))]


def count_resources(
    tx: Session, account_id: str, region: str, kind: str, name: str, version: str
) -> int:
    return int(
        tx.scalar(
            select(func.count(models.ImageBuilderResource.id)).where(
                models.ImageBuilderResource.account_id == account_id,
                models.ImageBuilderResource.region == region,
                models.ImageBuilderResource.kind == kind,
                models.ImageBuilderResource.name == name,
                models.ImageBuilderResource.version == version,
            )
        )
        or 0
    )


def update_resource(
    tx: Session,
    arn: str,
    *,
    state: str | None = None,
    body: dict[str, object] | None = None,
    log_entry: dict[str, object] | None = None,
) -> None:
    row = _row(tx, arn)
    if row is None:
        return
    if state is not None:
        row.state = state
    if body is not None:
        row.body = json.dumps(body)
    if log_entry is not None:
        row.log = row.log + json.dumps(log_entry) + "\n"
    tx.flush()


def every_resource(tx: Session, kind: str) -> list[IbResourceRecord]:
    """Every account's resources of ``kind`` (the server's start: builds left running)."""
    q = select(models.ImageBuilderResource).where(models.ImageBuilderResource.kind == kind)
    return [_record(r) for r in tx.scalars(q.order_by(models.ImageBuilderResource.id))]


def delete_resource(tx: Session, arn: str) -> None:
    row = _row(tx, arn)
    if row is not None:
        tx.delete(row)
        tx.flush()
