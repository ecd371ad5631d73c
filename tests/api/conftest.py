"""One live `kiln serve` per catalog dialect for the whole API session, plus three accounts."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from api_live import ApiWorld, LiveKiln, make_disk


def _pg_database() -> tuple[str, str] | None:
    admin = os.environ.get("KILN_TEST_PG_URL")
    if not admin:
        return None
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin)
    name = f"kiln_api_{secrets.token_hex(6)}"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return dsn, url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiWorld]:
    data_dir = tmp_path_factory.mktemp(f"kiln-{request.param}")
    database_url = None
    admin_dsn = None
    if request.param == "postgresql":
        made = _pg_database()
        if made is None:
            pytest.skip("KILN_TEST_PG_URL unset: PostgreSQL not started (run scripts/test)")
        admin_dsn, database_url = made
    kiln = LiveKiln(data_dir, database_url)
    kiln.start()
    try:
        world = ApiWorld(
            kiln,
            kiln.account("owner"),
            kiln.account("grantee"),
            kiln.account("stranger"),
            make_disk(data_dir / "disk.raw"),
        )
        yield world
    finally:
        kiln.stop()
        if admin_dsn and database_url:
            import psycopg

            name = database_url.rsplit("/", 1)[1]
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
