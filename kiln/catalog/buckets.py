"""Buckets: a global name and the account that owns it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import utc_now

B = models.Bucket


@dataclass(frozen=True, slots=True)
class BucketRecord:
    name: str
    owner_id: str
    created: str


def get_bucket(tx: Session, name: str) -> BucketRecord | None:
    row = tx.get(B, name)
    return BucketRecord(row.name, row.owner_id, row.created) if row else None


def insert_bucket(tx: Session, name: str, owner_id: str) -> BucketRecord:
    """Record a new bucket; the caller checked that the name is free (the primary key makes a
    racing second insert fail with Conflict)."""
    row = B(name=name, owner_id=owner_id, created=utc_now())
    tx.add(row)
    tx.flush()
    return BucketRecord(row.name, row.owner_id, row.created)


def list_buckets(tx: Session, owner_id: str | None = None) -> list[BucketRecord]:
    q = select(B).order_by(B.name)
    if owner_id is not None:
        q = q.where(B.owner_id == owner_id)
    return [BucketRecord(r.name, r.owner_id, r.created) for r in tx.scalars(q)]
