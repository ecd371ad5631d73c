"""Image signatures, the operator's trusted signing keys and each region's signing policy
(docs/signing.md; migration 0015_sign)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiln.catalog import models


@dataclass(frozen=True, slots=True)
class ImageSignatureRecord:
    image_id: str
    region: str
    key_id: str
    public_key: bytes
    document: str
    digest: str
    signature: bytes
    signed_by: str
    signed_at: str


@dataclass(frozen=True, slots=True)
class TrustedKeyRecord:
    region: str
    key_id: str
    public_key: bytes
    comment: str | None
    added: str


def get_signature(tx: Session, image_id: str) -> ImageSignatureRecord | None:
    row = tx.get(models.ImageSignature, image_id)
    if row is None:
        return None
    return ImageSignatureRecord(
        row.image_id,
        row.region,
        row.key_id,
        bytes(row.public_key),
        row.document,
        row.digest,
        bytes(row.signature),
        row.signed_by,
        row.signed_at,
    )


def put_signature(tx: Session, sig: ImageSignatureRecord) -> None:
    """Record ``sig``, replacing the image's previous signature."""
    row = tx.get(models.ImageSignature, sig.image_id)
    if row is None:
        row = models.ImageSignature(image_id=sig.image_id)
        tx.add(row)
    row.region = sig.region
    row.key_id = sig.key_id
    row.public_key = sig.public_key
    row.document = sig.document
    row.digest = sig.digest
    row.signature = sig.signature
    row.signed_by = sig.signed_by
    row.signed_at = sig.signed_at
    tx.flush()


def trusted_keys(tx: Session, region: str | None = None) -> list[TrustedKeyRecord]:
    """The trusted keys of ``region`` (every region's when None), by region then key id."""
    k = models.TrustedSigningKey
    query = select(k).order_by(k.region, k.key_id)
    if region is not None:
        query = query.where(k.region == region)
    return [
        TrustedKeyRecord(r.region, r.key_id, bytes(r.public_key), r.comment, r.added)
        for r in tx.scalars(query)
    ]


def add_trusted_key(tx: Session, key: TrustedKeyRecord) -> bool:
    """Trust ``key`` in its region; False if it already was (its comment is then updated)."""
    row = tx.get(models.TrustedSigningKey, (key.region, key.key_id))
    if row is not None:
        row.comment = key.comment
        tx.flush()
        return False
    tx.add(
        models.TrustedSigningKey(
            region=key.region,
            key_id=key.key_id,
            public_key=key.public_key,
            comment=key.comment,
            added=key.added,
        )
    )
    tx.flush()
    return True


def remove_trusted_key(tx: Session, region: str, key_id: str) -> bool:
    """Stop trusting ``key_id`` in ``region``; False if it was not trusted there."""
    k = models.TrustedSigningKey
    gone = tx.execute(delete(k).where(k.region == region, k.key_id == key_id))
    return bool(getattr(gone, "rowcount", 0))


def signature_required(tx: Session, region: str) -> bool:
    row = tx.get(models.SigningPolicy, region)
    return bool(row is not None and row.require_signature)


def set_signature_required(tx: Session, region: str, required: bool, now: str) -> None:
    row = tx.get(models.SigningPolicy, region)
    if row is None:
        row = models.SigningPolicy(region=region)
        tx.add(row)
    row.require_signature = required
    row.updated = now
    tx.flush()
