"""Shared fixtures: a migrated catalog on SQLite and, when scripts/test started one, PostgreSQL.

``KILN_TEST_PG_URL`` (exported by scripts/pg-start) names a server where each test gets its own
throwaway database. Without it the PostgreSQL half is skipped, and said so loudly.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("KILN_TEST_PG_URL")


def pytest_report_header(config: pytest.Config) -> str:
    if PG_URL:
        return f"kiln: PostgreSQL tests against {PG_URL}"
    return (
        "kiln: !!! KILN_TEST_PG_URL is unset: every PostgreSQL catalog/API test is SKIPPED "
        "(scripts/test starts a server) !!!"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if not PG_URL:
        print(
            "\n!!! KILN_TEST_PG_URL unset: PostgreSQL tests will be skipped !!!\n", file=sys.stderr
        )


def _admin_dsn() -> str:
    from sqlalchemy.engine import make_url

    assert PG_URL is not None
    return make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _db_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    assert PG_URL is not None
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated PostgreSQL database that each test's database is copied from (fast)."""
    if not PG_URL:
        pytest.skip("KILN_TEST_PG_URL unset: PostgreSQL not started (run scripts/test)")
    import psycopg

    from kiln.catalog import open_catalog

    name = f"kiln_tpl_{secrets.token_hex(6)}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    cat = open_catalog(_db_url(name), tmp_path_factory.mktemp("pgtpl") / "k", ())
    cat.close()
    try:
        yield name
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database URL (already migrated from the template); dropped after."""
    import psycopg

    name = f"kiln_test_{secrets.token_hex(6)}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield _db_url(name)
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A catalog database URL on each supported dialect."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def catalog(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from kiln.catalog import open_catalog

    cat = open_catalog(database_url, tmp_path / "catalog.key", ["us-east-1", "eu-west-1"])
    yield cat
    cat.close()
