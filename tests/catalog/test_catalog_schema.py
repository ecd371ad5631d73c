"""The migrated schema is the models' schema, on both dialects, and migration is idempotent."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from kiln.catalog import SYSTEM_ACCOUNT_ID, open_catalog
from kiln.catalog.accounts import get_account
from kiln.catalog.engine import migrate
from kiln.catalog.models import Base


def test_migrations_match_models(catalog) -> None:  # type: ignore[no-untyped-def]
    with catalog.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrate_twice_is_harmless_and_system_account_exists(catalog) -> None:  # type: ignore[no-untyped-def]
    migrate(catalog.engine)
    with catalog.read() as tx:
        kiln = get_account(tx, SYSTEM_ACCOUNT_ID)
    assert kiln is not None and kiln.alias == "kiln"


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    cat = open_catalog(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path / "k", ["us-east-1"])
    with cat.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    cat.close()


def test_regions_are_recorded(catalog) -> None:  # type: ignore[no-untyped-def]
    with catalog.read() as tx:
        names = set(tx.execute(text("SELECT name FROM regions")).scalars())
    assert names == {"us-east-1", "eu-west-1"}
