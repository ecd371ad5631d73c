"""Per-account KMS keys: 32-byte key-encryption keys sealed with the server master key."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import KmsKeyRecord, utc_now
from kiln.catalog.sealing import Sealer


def _key(r: models.KmsKey, sealer: Sealer) -> KmsKeyRecord:
    return KmsKeyRecord(
        r.key_id,
        r.account_id,
        r.region,
        r.alias,
        sealer.unseal(r.secret_sealed, r.key_id),
        r.state,
        r.created,
        r.description or "",
        r.deletion_date,
        r.pending_window_days,
    )


def create_kms_key(
    tx: Session,
    sealer: Sealer,
    key_id: str,
    account_id: str,
    region: str,
    alias: str | None = None,
    description: str = "",
) -> KmsKeyRecord:
    secret = secrets.token_bytes(32)
    row = models.KmsKey(
        key_id=key_id,
        account_id=account_id,
        region=region,
        alias=alias,
        secret_sealed=sealer.seal(secret, key_id),
        state="Enabled",
        created=utc_now(),
        description=description,
    )
    tx.add(row)
    tx.flush()
    return _key(row, sealer)


def get_kms_key(tx: Session, sealer: Sealer, key_id: str) -> KmsKeyRecord | None:
    row = tx.get(models.KmsKey, key_id)
    return _key(row, sealer) if row else None


def kms_key_by_alias(
    tx: Session, sealer: Sealer, account_id: str, region: str, alias: str
) -> KmsKeyRecord | None:
    k = models.KmsKey
    row = tx.scalars(
        select(k).where(k.account_id == account_id, k.region == region, k.alias == alias)
    ).first()
    return _key(row, sealer) if row else None
