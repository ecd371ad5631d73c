"""Accounts and their access keys."""

from __future__ import annotations

import secrets
import string

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import (
    VERIFIED_PROVIDER_ALIAS,
    AccessKeyRecord,
    AccountRecord,
    utc_now,
)
from kiln.catalog.sealing import Sealer

_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "/+"


def new_account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def _account(row: models.Account) -> AccountRecord:
    return AccountRecord(row.account_id, row.name, row.alias, row.created, row.verified)


def create_account(
    tx: Session, account_id: str, name: str, alias: str | None = None
) -> AccountRecord:
    row = models.Account(account_id=account_id, name=name, alias=alias, created=utc_now())
    tx.add(row)
    tx.flush()
    return _account(row)


def get_account(tx: Session, account_id: str) -> AccountRecord | None:
    row = tx.get(models.Account, account_id)
    return _account(row) if row else None


def account_by_alias(tx: Session, alias: str) -> AccountRecord | None:
    row = tx.scalars(select(models.Account).where(models.Account.alias == alias)).first()
    return _account(row) if row else None


def owner_alias_column() -> ColumnElement[str | None]:
    """An account's shown owner alias in SQL (what :attr:`AccountRecord.owner_alias` says)."""
    a = models.Account
    return case((a.verified, VERIFIED_PROVIDER_ALIAS), else_=a.alias)


def aliases_of(tx: Session, account_ids: set[str]) -> dict[str, str]:
    """``{account_id: owner alias}`` for those of ``account_ids`` that show one (verified
    providers show ``aws-marketplace``, others their alias; docs/community.md)."""
    if not account_ids:
        return {}
    a = models.Account
    rows = tx.execute(
        select(a.account_id, a.alias, a.verified).where(
            a.account_id.in_(account_ids), (a.alias.is_not(None)) | a.verified
        )
    )
    return {r.account_id: VERIFIED_PROVIDER_ALIAS if r.verified else r.alias for r in rows}


def verified_account_ids(tx: Session) -> list[str]:
    a = models.Account
    return list(tx.scalars(select(a.account_id).where(a.verified).order_by(a.account_id)))


def set_verified(tx: Session, account_id: str, verified: bool) -> None:
    tx.execute(
        update(models.Account)
        .where(models.Account.account_id == account_id)
        .values(verified=verified)
    )


def set_alias(tx: Session, account_id: str, alias: str | None) -> None:
    tx.execute(
        update(models.Account).where(models.Account.account_id == account_id).values(alias=alias)
    )


def list_accounts(tx: Session) -> list[AccountRecord]:
    return [
        _account(r) for r in tx.scalars(select(models.Account).order_by(models.Account.account_id))
    ]


def create_access_key(
    tx: Session, sealer: Sealer, account_id: str, access_key_id: str, secret_access_key: str
) -> AccessKeyRecord:
    tx.add(
        models.AccessKey(
            access_key_id=access_key_id,
            account_id=account_id,
            status="Active",
            created=utc_now(),
            secret_sealed=sealer.seal(secret_access_key.encode(), access_key_id),
        )
    )
    tx.flush()
    return AccessKeyRecord(access_key_id, secret_access_key, account_id)


def lookup_access_key(tx: Session, sealer: Sealer, access_key_id: str) -> AccessKeyRecord | None:
    """The active key with its secret unsealed, or None for an unknown or inactive key."""
    row = tx.get(models.AccessKey, access_key_id)
    if row is None or row.status != "Active":
        return None
    secret = sealer.unseal(row.secret_sealed, access_key_id).decode()
    return AccessKeyRecord(access_key_id, secret, row.account_id)


def access_key_exists(tx: Session, access_key_id: str) -> bool:
    return tx.get(models.AccessKey, access_key_id) is not None


def active_access_key(tx: Session, sealer: Sealer, account_id: str) -> AccessKeyRecord | None:
    """The account's oldest active key with its secret unsealed (the operator's CLI acting as
    the account over HTTP: ``kiln build --account``), or None."""
    row = tx.scalars(
        select(models.AccessKey)
        .where(models.AccessKey.account_id == account_id, models.AccessKey.status == "Active")
        .order_by(models.AccessKey.created, models.AccessKey.access_key_id)
    ).first()
    if row is None:
        return None
    secret = sealer.unseal(row.secret_sealed, row.access_key_id).decode()
    return AccessKeyRecord(row.access_key_id, secret, row.account_id)
