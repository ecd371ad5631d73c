"""Recycle Bin retention rules and the images the bin keeps (docs/recycle-bin.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import BinnedImageRecord, RetentionRuleRecord

_RULE = models.RecycleBinRule
_BIN = models.RecycleBinImage


def _pairs_out(pairs: Sequence[tuple[str, str | None]]) -> list[dict[str, object]]:
    return [{"ResourceTagKey": k, "ResourceTagValue": v} for k, v in pairs]


def _pairs_in(items: Sequence[Mapping[str, object]]) -> tuple[tuple[str, str | None], ...]:
    return tuple(
        (
            str(i["ResourceTagKey"]),
            None if i.get("ResourceTagValue") is None else str(i["ResourceTagValue"]),
        )
        for i in items
    )


def _row(rule: RetentionRuleRecord) -> dict[str, object]:
    return {
        "rule_id": rule.rule_id,
        "region": rule.region,
        "owner_id": rule.owner_id,
        "resource_type": rule.resource_type,
        "description": rule.description,
        "retention_days": rule.retention_days,
        "resource_tags": _pairs_out(rule.resource_tags),
        "exclude_tags": _pairs_out(rule.exclude_tags),
        "tags": [{"Key": k, "Value": v} for k, v in rule.tags],
        "unlock_delay_days": rule.unlock_delay_days,
        "lock_state": rule.lock_state,
        "lock_end_time": rule.lock_end_time,
        "created": rule.created,
    }


def _record(row: models.RecycleBinRule) -> RetentionRuleRecord:
    return RetentionRuleRecord(
        rule_id=row.rule_id,
        region=row.region,
        owner_id=row.owner_id,
        resource_type=row.resource_type,
        retention_days=row.retention_days,
        created=row.created,
        description=row.description,
        resource_tags=_pairs_in(row.resource_tags),
        exclude_tags=_pairs_in(row.exclude_tags),
        tags=tuple((str(t["Key"]), str(t["Value"])) for t in row.tags),
        unlock_delay_days=row.unlock_delay_days,
        lock_state=row.lock_state,
        lock_end_time=row.lock_end_time,
    )


def create_rule(tx: Session, rule: RetentionRuleRecord) -> None:
    tx.execute(insert(_RULE).values(**_row(rule)))


def save_rule(tx: Session, rule: RetentionRuleRecord) -> None:
    """Write every field of ``rule`` over its row."""
    tx.execute(update(_RULE).where(_RULE.rule_id == rule.rule_id).values(**_row(rule)))


def get_rule(tx: Session, region: str, owner_id: str, rule_id: str) -> RetentionRuleRecord | None:
    row = tx.scalars(
        select(_RULE).where(
            _RULE.rule_id == rule_id, _RULE.region == region, _RULE.owner_id == owner_id
        )
    ).one_or_none()
    return _record(row) if row is not None else None


def list_rules(
    tx: Session, region: str, owner_id: str, resource_type: str
) -> list[RetentionRuleRecord]:
    """The owner's rules for ``resource_type`` in ``region``, oldest first."""
    rows = tx.scalars(
        select(_RULE)
        .where(
            _RULE.region == region,
            _RULE.owner_id == owner_id,
            _RULE.resource_type == resource_type,
        )
        .order_by(_RULE.created, _RULE.rule_id)
    )
    return [_record(r) for r in rows]


def delete_rule(tx: Session, rule_id: str) -> None:
    tx.execute(delete(_RULE).where(_RULE.rule_id == rule_id))


def bin_image(tx: Session, entry: BinnedImageRecord) -> None:
    tx.execute(
        insert(_BIN).values(
            image_id=entry.image_id,
            region=entry.region,
            owner_id=entry.owner_id,
            enter_time=entry.enter_time,
            exit_time=entry.exit_time,
            delete_snapshots=entry.delete_snapshots,
            prior_state=entry.prior_state,
        )
    )


def _binned(row: models.RecycleBinImage) -> BinnedImageRecord:
    return BinnedImageRecord(
        row.image_id,
        row.region,
        row.owner_id,
        row.enter_time,
        row.exit_time,
        row.delete_snapshots,
        row.prior_state,
    )


def binned_images(
    tx: Session, region: str, owner_id: str, image_ids: Sequence[str] = ()
) -> list[BinnedImageRecord]:
    """The owner's images in the bin in ``region`` (only ``image_ids`` if given), by id."""
    q = select(_BIN).where(_BIN.region == region, _BIN.owner_id == owner_id)
    if image_ids:
        q = q.where(_BIN.image_id.in_(image_ids))
    return [_binned(r) for r in tx.scalars(q.order_by(_BIN.image_id))]


def binned_image(tx: Session, image_id: str) -> BinnedImageRecord | None:
    row = tx.get(_BIN, image_id)
    return _binned(row) if row is not None else None


def expired_images(tx: Session, now: str) -> list[BinnedImageRecord]:
    """Every bin entry (all regions and owners) whose retention ended at or before ``now``."""
    rows = tx.scalars(select(_BIN).where(_BIN.exit_time <= now).order_by(_BIN.exit_time))
    return [_binned(r) for r in rows]


def unbin_image(tx: Session, image_id: str) -> None:
    tx.execute(delete(_BIN).where(_BIN.image_id == image_id))
