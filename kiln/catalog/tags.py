"""Tags of every resource type, keyed by resource id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, and_, delete, insert, select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import Filter, TagRecord
from kiln.catalog.wildcard import match_any
from kiln.catalog.wildcard import table as _table

# DescribeTags filters -> tag column.
TAG_FILTERS = {
    "key": "key",
    "value": "value",
    "resource-id": "resource_id",
    "resource-type": "resource_type",
}


def tags_for(
    tx: Session, resource_ids: Sequence[str], account_id: str
) -> dict[str, list[TagRecord]]:
    """The tags ``account_id`` put on each resource (tags are private to the tagging account)."""
    if not resource_ids:
        return {}
    out: dict[str, list[TagRecord]] = {}
    t = models.Tag.__table__
    for r in tx.execute(
        select(t.c.resource_id, t.c.resource_type, t.c.key, t.c.value)
        .where(t.c.resource_id.in_(resource_ids), t.c.owner_id == account_id)
        .order_by(t.c.resource_id, t.c.key)
    ):
        out.setdefault(r.resource_id, []).append(
            TagRecord(r.resource_id, r.resource_type, r.key, r.value)
        )
    return out


def create_tags(
    tx: Session,
    resource_id: str,
    resource_type: str,
    region: str,
    owner_id: str,
    tags: Iterable[tuple[str, str]],
) -> None:
    """Set each (key, value) as ``owner_id``'s tag on the resource (overwrites the value)."""
    for key, value in tags:
        row = tx.get(models.Tag, (resource_id, owner_id, key))
        if row is None:
            tx.add(
                models.Tag(
                    resource_id=resource_id,
                    key=key,
                    value=value,
                    resource_type=resource_type,
                    region=region,
                    owner_id=owner_id,
                )
            )
        else:
            row.value = value
    tx.flush()


def add_tags(tx: Session, tags: Sequence[TagRecord], region: str, owner_id: str) -> None:
    """Insert tags of resources that have none of ``owner_id``'s yet (executemany)."""
    if tags:
        tx.execute(
            insert(_table(models.Tag)),
            [
                {
                    "resource_id": t.resource_id,
                    "owner_id": owner_id,
                    "key": t.key,
                    "value": t.value,
                    "resource_type": t.resource_type,
                    "region": region,
                }
                for t in tags
            ],
        )


def delete_tags(
    tx: Session, resource_id: str, owner_id: str, tags: Sequence[tuple[str, str | None]] | None
) -> None:
    """Delete ``owner_id``'s given keys (only where the value matches, when a value is given);
    all of them if ``tags`` is None."""
    t = models.Tag
    mine = and_(t.resource_id == resource_id, t.owner_id == owner_id)
    if tags is None:
        tx.execute(delete(t).where(mine))
        return
    for key, value in tags:
        cond = and_(mine, t.key == key)
        if value is not None:
            cond = and_(cond, t.value == value)
        tx.execute(delete(t).where(cond))


def describe_tags(
    tx: Session,
    owner_id: str,
    region: str,
    filters: Sequence[Filter],
    after: tuple[str, str] | None,
    limit: int | None,
    dialect: str,
) -> list[TagRecord]:
    """The owner's tags in ``region`` matching every filter, ordered by (resource, key)."""
    t = models.Tag
    conds: list[ColumnElement[bool]] = [t.owner_id == owner_id, t.region == region]
    for f in filters:
        conds.append(match_any(getattr(t, TAG_FILTERS[f.name]), f.values, dialect))
    if after is not None:
        conds.append(
            (t.resource_id > after[0]) | ((t.resource_id == after[0]) & (t.key > after[1]))
        )
    q = select(t).where(*conds).order_by(t.resource_id, t.key)
    if limit is not None:
        q = q.limit(limit)
    return [TagRecord(r.resource_id, r.resource_type, r.key, r.value) for r in tx.scalars(q)]


def delete_resource_tags(tx: Session, resource_id: str) -> None:
    """Every account's tags on a resource that no longer exists."""
    tx.execute(delete(models.Tag).where(models.Tag.resource_id == resource_id))
