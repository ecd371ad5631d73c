"""Accounts and their access keys."""

from __future__ import annotations

import secrets
import string

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import AccessKeyRecord, AccountRecord, utc_now
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
    return AccountRecord(row.account_id, row.name, row.alias, row.created)


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


def aliases_of(tx: Session, account_ids: set[str]) -> dict[str, str]:
    """``{account_id: alias}`` for those of ``account_ids`` that have an alias."""
    if not account_ids:
        return {}
    rows = tx.execute(
        select(models.Account.account_id, models.Account.alias).where(
            models.Account.account_id.in_(account_ids), models.Account.alias.is_not(None)
        )
    )
    return {r.account_id: r.alias for r in rows}


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
