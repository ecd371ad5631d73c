"""Lifecycle policies and the images they look at: what kiln/services/lifecycle/ reads and
writes (docs/lifecycle.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import LifecyclePolicyRecord

_P = models.LifecyclePolicy


def _record(r: models.LifecyclePolicy) -> LifecyclePolicyRecord:
    return LifecyclePolicyRecord(
        account_id=r.account_id,
        region=r.region,
        name=r.name,
        arn=r.arn,
        status=r.status,
        document=dict(r.document),
        selection=dict(r.selection),
        created=r.created,
        updated=r.updated,
        last_run_at=r.last_run_at,
        run_started_at=r.run_started_at,
        last_run=dict(r.last_run) if r.last_run is not None else None,
    )


def put_lifecycle_policy(
    tx: Session,
    account_id: str,
    region: str,
    name: str,
    *,
    arn: str,
    status: str,
    document: dict[str, Any],
    selection: dict[str, Any],
    now: str,
) -> LifecyclePolicyRecord:
    """Create the policy, or replace the one of that name (its run times are kept)."""
    row = tx.get(_P, (account_id, region, name))
    if row is None:
        row = _P(
            account_id=account_id,
            region=region,
            name=name,
            arn=arn,
            status=status,
            document=document,
            selection=selection,
            created=now,
            updated=now,
        )
        tx.add(row)
    else:
        row.arn, row.status, row.document, row.selection = arn, status, document, selection
        row.updated = now
    tx.flush()
    return _record(row)


def get_lifecycle_policy(
    tx: Session, account_id: str, region: str, name: str
) -> LifecyclePolicyRecord | None:
    row = tx.get(_P, (account_id, region, name))
    return _record(row) if row is not None else None


def list_lifecycle_policies(
    tx: Session, account_id: str | None = None, region: str | None = None
) -> list[LifecyclePolicyRecord]:
    """The policies (of one account and/or region if given), by account, region and name."""
    query = select(_P)
    if account_id is not None:
        query = query.where(_P.account_id == account_id)
    if region is not None:
        query = query.where(_P.region == region)
    return [_record(r) for r in tx.scalars(query.order_by(_P.account_id, _P.region, _P.name))]


def delete_lifecycle_policy(tx: Session, account_id: str, region: str, name: str) -> bool:
    result = tx.execute(
        delete(_P).where(_P.account_id == account_id, _P.region == region, _P.name == name)
    )
    return bool(getattr(result, "rowcount", 0))


def claim_lifecycle_run(
    tx: Session, account_id: str, region: str, name: str, now: str, stale_before: str
) -> bool:
    """Mark the policy as being run from ``now`` unless another run holds it (one whose claim
    is newer than ``stale_before``). True if this caller holds it now."""
    result = tx.execute(
        update(_P)
        .where(
            _P.account_id == account_id,
            _P.region == region,
            _P.name == name,
            or_(_P.run_started_at.is_(None), _P.run_started_at < stale_before),
        )
        .values(run_started_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def finish_lifecycle_run(
    tx: Session, account_id: str, region: str, name: str, started: str, summary: dict[str, Any]
) -> None:
    """Release the run's claim and record it: ``started`` becomes the last run time."""
    tx.execute(
        update(_P)
        .where(_P.account_id == account_id, _P.region == region, _P.name == name)
        .values(run_started_at=None, last_run_at=started, last_run=summary)
    )


def lifecycle_image_ids(tx: Session, region: str, owner_id: str) -> list[str]:
    """The owner's images in ``region`` a lifecycle policy may act on: available or disabled
    (not pending, failed or deregistered)."""
    i = models.Image
    return list(
        tx.scalars(
            select(i.image_id)
            .where(
                i.region == region,
                i.owner_id == owner_id,
                i.state.in_(("available", "disabled")),
            )
            .order_by(i.image_id)
        )
    )
