"""Key pairs: one public key per (region, account, name)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import TagRecord
from kiln.catalog.tags import delete_resource_tags, tags_for

K = models.KeyPair
_COLUMNS = [c.name for c in K.__table__.columns]


@dataclass(frozen=True, slots=True)
class KeyPairRecord:
    key_pair_id: str
    region: str
    owner_id: str
    key_name: str
    key_type: str
    key_fingerprint: str
    public_key: str
    create_time: str
    tags: tuple[TagRecord, ...] = ()


def insert_key_pair(tx: Session, key: KeyPairRecord) -> None:
    tx.add(K(**{c: getattr(key, c) for c in _COLUMNS}))
    tx.flush()


def list_key_pairs(tx: Session, region: str, owner_id: str) -> list[KeyPairRecord]:
    """The account's key pairs in ``region``, by name, with its tags."""
    rows = (
        tx.execute(
            select(K.__table__)
            .where(K.region == region, K.owner_id == owner_id)
            .order_by(K.key_name)
        )
        .mappings()
        .all()
    )
    tags = tags_for(tx, [r["key_pair_id"] for r in rows], owner_id)
    return [KeyPairRecord(**dict(r), tags=tuple(tags.get(r["key_pair_id"], ()))) for r in rows]


def key_pair_named(tx: Session, region: str, owner_id: str, name: str) -> KeyPairRecord | None:
    row = (
        tx.execute(
            select(K.__table__).where(
                K.region == region, K.owner_id == owner_id, K.key_name == name
            )
        )
        .mappings()
        .first()
    )
    return KeyPairRecord(**dict(row)) if row else None


def delete_key_pairs(tx: Session, key_pair_ids: Sequence[str]) -> None:
    for kid in key_pair_ids:
        delete_resource_tags(tx, kid)
    tx.execute(delete(K).where(K.key_pair_id.in_(key_pair_ids)))
