"""The KMS API's catalog functions: listing keys, key states, caller-made aliases, key tags.

Keys themselves are made and read by kiln/catalog/kms.py; this module is what the KMS actions
(kiln/services/keys/kms_keys.py) add. Aliases are unique per account and region: a second
``create_alias`` of one name fails at commit with :class:`kiln.catalog.Conflict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.kms import _key
from kiln.catalog.records import KmsAliasRecord, KmsKeyRecord, utc_now
from kiln.catalog.sealing import Sealer


def list_kms_keys(
    tx: Session, sealer: Sealer, account_id: str, region: str, after: str | None, limit: int
) -> list[KmsKeyRecord]:
    """Up to ``limit`` of the account's keys in ``region``, by key id, after ``after``."""
    k = models.KmsKey
    query = select(k).where(k.account_id == account_id, k.region == region)
    if after is not None:
        query = query.where(k.key_id > after)
    return [_key(r, sealer) for r in tx.scalars(query.order_by(k.key_id).limit(limit))]


def set_kms_key_state(
    tx: Session,
    key_id: str,
    state: str,
    expect_states: Sequence[str],
    deletion_date: str | None = None,
    pending_window_days: int | None = None,
) -> bool:
    """Move a key to ``state`` if it is in one of ``expect_states``; False if it was not."""
    k = models.KmsKey
    result = tx.execute(
        update(k)
        .where(k.key_id == key_id, k.state.in_(expect_states))
        .values(state=state, deletion_date=deletion_date, pending_window_days=pending_window_days)
    )
    return bool(getattr(result, "rowcount", 0))


def _alias(r: models.KmsAlias) -> KmsAliasRecord:
    return KmsAliasRecord(r.alias_name, r.account_id, r.region, r.key_id, r.created)


def create_alias(
    tx: Session, account_id: str, region: str, alias_name: str, key_id: str
) -> KmsAliasRecord:
    row = models.KmsAlias(
        account_id=account_id,
        region=region,
        alias_name=alias_name,
        key_id=key_id,
        created=utc_now(),
    )
    tx.add(row)
    return _alias(row)


def get_alias(tx: Session, account_id: str, region: str, alias_name: str) -> KmsAliasRecord | None:
    row = tx.get(models.KmsAlias, (account_id, region, alias_name))
    return _alias(row) if row else None


def list_aliases(
    tx: Session, account_id: str, region: str, key_id: str | None = None
) -> list[KmsAliasRecord]:
    """The caller-made aliases of the account in ``region`` (of one key if given), by name."""
    a = models.KmsAlias
    query = select(a).where(a.account_id == account_id, a.region == region)
    if key_id is not None:
        query = query.where(a.key_id == key_id)
    return [_alias(r) for r in tx.scalars(query.order_by(a.alias_name))]


def delete_alias(tx: Session, account_id: str, region: str, alias_name: str) -> bool:
    a = models.KmsAlias
    result = tx.execute(
        delete(a).where(a.account_id == account_id, a.region == region, a.alias_name == alias_name)
    )
    return bool(getattr(result, "rowcount", 0))


def put_kms_tags(tx: Session, key_id: str, tags: Iterable[tuple[str, str]]) -> None:
    """Set each (key, value) on the KMS key (overwrites a value)."""
    for tag_key, tag_value in tags:
        row = tx.get(models.KmsTag, (key_id, tag_key))
        if row is None:
            tx.add(models.KmsTag(key_id=key_id, tag_key=tag_key, tag_value=tag_value))
        else:
            row.tag_value = tag_value
    tx.flush()


def kms_tags(tx: Session, key_id: str) -> list[tuple[str, str]]:
    """The key's tags, by tag key."""
    t = models.KmsTag
    return [
        (r.tag_key, r.tag_value)
        for r in tx.scalars(select(t).where(t.key_id == key_id).order_by(t.tag_key))
    ]
