"""Accounts and access keys; secrets never sit in the database as plain text."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.catalog import Conflict, SealError, open_catalog
from kiln.catalog.accounts import (
    create_access_key,
    create_account,
    lookup_access_key,
    new_access_key_id,
    new_account_id,
    new_secret_access_key,
)


def test_create_and_lookup_key(catalog) -> None:  # type: ignore[no-untyped-def]
    secret = new_secret_access_key()
    with catalog.write() as tx:
        create_account(tx, "123456789012", "alice")
        create_access_key(tx, catalog.sealer, "123456789012", "AKIAALICE", secret)
    with catalog.read() as tx:
        got = lookup_access_key(tx, catalog.sealer, "AKIAALICE")
        assert lookup_access_key(tx, catalog.sealer, "AKIANOBODY") is None
    assert got is not None and got.secret_access_key == secret
    assert got.account_id == "123456789012"


def test_duplicate_account_is_a_conflict(catalog) -> None:  # type: ignore[no-untyped-def]
    with catalog.write() as tx:
        create_account(tx, "123456789012", "alice")
    with pytest.raises(Conflict), catalog.write() as tx:
        create_account(tx, "123456789012", "again")


def test_secret_not_in_sqlite_file_and_needs_master_key(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    cat = open_catalog(f"sqlite:///{db}", tmp_path / "catalog.key", ["us-east-1"])
    secret = new_secret_access_key()
    with cat.write() as tx:
        create_account(tx, "210987654321", "bob")
        create_access_key(tx, cat.sealer, "210987654321", "AKIABOB", secret)
    cat.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("c.sqlite3*"))
    assert b"AKIABOB" in raw and secret.encode() not in raw
    assert (tmp_path / "catalog.key").stat().st_mode & 0o777 == 0o600
    other = open_catalog(f"sqlite:///{db}", tmp_path / "other.key", ["us-east-1"])
    with pytest.raises(SealError), other.read() as tx:
        lookup_access_key(tx, other.sealer, "AKIABOB")
    other.close()


def test_generated_ids_have_aws_shapes() -> None:
    assert len(new_account_id()) == 12 and new_account_id().isdigit()
    k = new_access_key_id()
    assert k.startswith("AKIA") and len(k) == 20
    assert len(new_secret_access_key()) == 40
