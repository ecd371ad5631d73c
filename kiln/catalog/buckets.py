"""Buckets (a global name, the account that owns it, its region) and their multipart uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import utc_now

B = models.Bucket
U = models.MultipartUpload
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class BucketRecord:
    name: str
    owner_id: str
    created: str
    region: str = DEFAULT_REGION


@dataclass(frozen=True, slots=True)
class UploadRecord:
    upload_id: str
    bucket: str
    key: str
    owner_id: str
    initiated: str
    attributes: dict[str, Any]


def _bucket(row: models.Bucket) -> BucketRecord:
    return BucketRecord(row.name, row.owner_id, row.created, row.region)


def _upload(row: models.MultipartUpload) -> UploadRecord:
    return UploadRecord(
        row.upload_id, row.bucket, row.key, row.owner_id, row.initiated, dict(row.attributes)
    )


def get_bucket(tx: Session, name: str) -> BucketRecord | None:
    row = tx.get(B, name)
    return _bucket(row) if row else None


def insert_bucket(
    tx: Session, name: str, owner_id: str, region: str = DEFAULT_REGION
) -> BucketRecord:
    """Record a new bucket; the caller checked that the name is free (the primary key makes a
    racing second insert fail with Conflict)."""
    row = B(name=name, owner_id=owner_id, created=utc_now(), region=region)
    tx.add(row)
    tx.flush()
    return _bucket(row)


def list_buckets(tx: Session, owner_id: str | None = None) -> list[BucketRecord]:
    q = select(B).order_by(B.name)
    if owner_id is not None:
        q = q.where(B.owner_id == owner_id)
    return [_bucket(r) for r in tx.scalars(q)]


def delete_bucket(tx: Session, name: str) -> bool:
    """Forget bucket ``name`` and its multipart uploads; False if there was none."""
    tx.execute(delete(U).where(U.bucket == name))
    return bool(tx.execute(delete(B).where(B.name == name)).rowcount)  # type: ignore[attr-defined]  # a CursorResult for DML


def insert_upload(
    tx: Session, upload_id: str, bucket: str, key: str, owner_id: str, attributes: dict[str, Any]
) -> UploadRecord:
    row = U(
        upload_id=upload_id,
        bucket=bucket,
        key=key,
        owner_id=owner_id,
        initiated=utc_now(),
        attributes=attributes,
    )
    tx.add(row)
    tx.flush()
    return _upload(row)


def get_upload(tx: Session, upload_id: str) -> UploadRecord | None:
    row = tx.get(U, upload_id)
    return _upload(row) if row else None


def delete_upload(tx: Session, upload_id: str) -> bool:
    """Forget an upload (completed or aborted); False if it was already gone."""
    return bool(tx.execute(delete(U).where(U.upload_id == upload_id)).rowcount)  # type: ignore[attr-defined]  # a CursorResult for DML


def list_uploads(tx: Session, bucket: str, limit: int) -> list[UploadRecord]:
    """The bucket's uploads in progress, by key then initiation time (at most ``limit``)."""
    q = select(U).where(U.bucket == bucket).order_by(U.key, U.initiated, U.upload_id).limit(limit)
    return [_upload(r) for r in tx.scalars(q)]


def count_uploads(tx: Session, bucket: str) -> int:
    return int(tx.scalar(select(func.count()).select_from(U).where(U.bucket == bucket)) or 0)
