"""KMS grants (CreateGrant, ListGrants, RevokeGrant): who besides a key's owner may use it."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import KmsGrantRecord


def _grant(r: models.KmsGrant) -> KmsGrantRecord:
    return KmsGrantRecord(
        r.grant_id,
        r.key_id,
        r.grantee_principal,
        r.grantee_account,
        r.retiring_principal,
        tuple(r.operations),
        r.name,
        r.issuing_account,
        r.created,
    )


def create_grant(tx: Session, grant: KmsGrantRecord) -> None:
    tx.add(
        models.KmsGrant(
            grant_id=grant.grant_id,
            key_id=grant.key_id,
            grantee_principal=grant.grantee_principal,
            grantee_account=grant.grantee_account,
            retiring_principal=grant.retiring_principal,
            operations=list(grant.operations),
            name=grant.name,
            issuing_account=grant.issuing_account,
            created=grant.created,
        )
    )
    tx.flush()


def list_grants(tx: Session, key_id: str) -> list[KmsGrantRecord]:
    """The key's grants, oldest first."""
    g = models.KmsGrant
    query = select(g).where(g.key_id == key_id).order_by(g.created, g.grant_id)
    return [_grant(r) for r in tx.scalars(query)]


def grants_for(tx: Session, key_id: str, grantee_account: str) -> list[KmsGrantRecord]:
    g = models.KmsGrant
    query = select(g).where(g.key_id == key_id, g.grantee_account == grantee_account)
    return [_grant(r) for r in tx.scalars(query)]


def delete_grant(tx: Session, key_id: str, grant_id: str) -> bool:
    g = models.KmsGrant
    result = tx.execute(delete(g).where(g.key_id == key_id, g.grant_id == grant_id))
    return bool(getattr(result, "rowcount", 0))
