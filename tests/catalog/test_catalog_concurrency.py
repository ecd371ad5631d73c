"""Several processes on one fresh SQLite catalog: they wait for its lock, never fail on it.

issue 8, item 11: ``kiln account create`` beside a starting ``kiln serve`` failed about 1 in 30
with ``database is locked`` (migrations in a deferred transaction; the WAL switch of a fresh
file, which SQLite attempts without its busy handler). The races here start their contenders at
the same instant against a fresh file, so the old code failed them nearly every run.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

KILN = [sys.executable, "-m", "kiln"]
LOCK_WORDS = ("database is locked", "Traceback", "OperationalError")

# A contender: import everything once, then for every line the parent writes ("URL KEYFILE" of
# a fresh catalog, written to all contenders at one instant) open (and so migrate) that catalog
# and report the accounts it found.
CONTENDER = """
import json, sys
from pathlib import Path
from kiln.catalog import open_catalog
from kiln.catalog.accounts import list_accounts
print("ready", flush=True)
for line in sys.stdin:
    url, key = line.split()
    cat = open_catalog(url, Path(key), ["us-east-1", "eu-west-1"])
    with cat.read() as tx:
        print(json.dumps(sorted(a.account_id for a in list_accounts(tx))), flush=True)
    cat.close()
"""
PG_URL = os.environ.get("KILN_TEST_PG_URL")


def _clean(text: str) -> bool:
    return not any(word in text for word in LOCK_WORDS)


@contextmanager
def _fresh_pg_database() -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    assert PG_URL is not None
    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"kiln_race_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _check_migrated(url: str, key: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import text

    from kiln.catalog import open_catalog
    from kiln.catalog.models import Base

    cat = open_catalog(url, key)
    try:
        with cat.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            if cat.dialect == "sqlite":
                assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
            assert sorted(conn.execute(text("SELECT name FROM regions")).scalars()) == [
                "eu-west-1",
                "us-east-1",
            ]
    finally:
        cat.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_processes_migrating_one_fresh_catalog_at_once_all_succeed(
    tmp_path: Path, dialect: str
) -> None:
    """8 processes, 6 rounds (PostgreSQL: 3): each round all open one fresh catalog at once."""
    from kiln.catalog import SYSTEM_ACCOUNT_ID

    if dialect == "postgresql" and not PG_URL:
        pytest.skip("KILN_TEST_PG_URL unset: PostgreSQL not started (run scripts/test)")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for round_ in range(6 if dialect == "sqlite" else 3):
            key = tmp_path / f"round{round_}.key"
            with ExitStack() as stack:
                if dialect == "sqlite":
                    url = f"sqlite:///{tmp_path / f'round{round_}.sqlite3'}"
                else:
                    url = stack.enter_context(_fresh_pg_database())
                for p in procs:  # as close to one instant as a loop gets
                    assert p.stdin is not None
                    p.stdin.write(f"{url} {key}\n")
                    p.stdin.flush()
                for p in procs:
                    assert p.stdout is not None
                    line = p.stdout.readline()
                    if not line:  # it died: show why
                        assert p.stderr is not None
                        err = p.stderr.read()
                        pytest.fail(f"round {round_}: contender exited {p.wait(60)}: {err[-3000:]}")
                    assert json.loads(line) == [SYSTEM_ACCOUNT_ID]
                _check_migrated(url, key)
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
        for p in procs:
            assert p.stderr is not None
            err = p.stderr.read()
            assert p.wait(60) == 0 and _clean(err), err[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_wal_switch_waits_for_a_writer_of_the_fresh_file(tmp_path: Path) -> None:
    """Switching to WAL needs an exclusive lock that SQLite takes without its busy handler: a
    writer holding the fresh file (still in rollback mode) made the switch fail at once."""
    from sqlalchemy import text

    from kiln.catalog.engine import make_engine

    path = tmp_path / "catalog.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # a RESERVED lock on a journal_mode=delete file
    writer.execute("CREATE TABLE t (x)")
    timer = threading.Timer(0.5, lambda: writer.execute("COMMIT"))
    timer.start()
    engine = make_engine(f"sqlite:///{path}")
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert time.monotonic() - started >= 0.3
    finally:
        timer.join()
        writer.close()
        engine.dispose()


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.catalog import engine

    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 300)


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_lock_held_past_the_timeout_is_catalog_locked(
    tmp_path: Path, short_busy_timeout: None
) -> None:
    from kiln.catalog import open_catalog
    from kiln.catalog.engine import CatalogLocked

    path = tmp_path / "catalog.sqlite3"
    cat = open_catalog(f"sqlite:///{path}", tmp_path / "catalog.key")
    holder = _hold_write_lock(path)
    try:
        started = time.monotonic()
        with pytest.raises(CatalogLocked, match="is locked by another process"):
            with cat.write() as tx:
                tx.connection()
        assert time.monotonic() - started >= 0.25
    finally:
        holder.close()
        cat.close()


def test_cli_prints_one_error_line_when_the_lock_outlasts_the_timeout(
    tmp_path: Path, short_busy_timeout: None
) -> None:
    from kiln.cli.main import cli

    runner = CliRunner()
    first = runner.invoke(cli, ["account", "create", "--name", "a", "--data-dir", str(tmp_path)])
    assert first.exit_code == 0, first.output
    holder = _hold_write_lock(tmp_path / "catalog.sqlite3")
    try:
        res = runner.invoke(cli, ["account", "create", "--name", "b", "--data-dir", str(tmp_path)])
    finally:
        holder.close()
    assert res.exit_code == 1
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "is locked by another process" in lines[0] and _clean(res.stderr)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


@pytest.fixture
def starting_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`kiln serve` on a fresh, empty data dir, started without waiting for it."""
    data = tmp_path / "data"
    data.mkdir()
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*KILN, "serve", "--data-dir", str(data), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc, f"http://127.0.0.1:{port}", data
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_100_racing_account_creates_beside_a_starting_server_all_succeed(
    starting_server: tuple[subprocess.Popen[bytes], str, Path], tmp_path: Path
) -> None:
    server, url, data = starting_server
    n = 100

    def create(i: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*KILN, "account", "create", "--name", f"n{i}", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "KILN_LOG_LEVEL": "WARNING"},
        )

    with ThreadPoolExecutor(max_workers=10) as pool:  # the first 10 start with the server
        results = list(pool.map(create, range(n)))
    failed = [
        (i, r.returncode, r.stderr[-2000:])
        for i, r in enumerate(results)
        if r.returncode != 0 or not _clean(r.stderr)
    ]
    assert failed == [], f"{len(failed)} of {n} failed; first: {failed[:3]}"
    ids = set()
    for r in results:
        doc = json.loads(r.stdout)
        assert set(doc) == {"AccountId", "AccessKeyId", "SecretAccessKey"}
        ids.add(doc["AccountId"])
    assert len(ids) == n

    assert _healthy(url, time.monotonic() + 60), (tmp_path / "serve.log").read_text()[-3000:]
    assert server.poll() is None
    listed = subprocess.run(
        [*KILN, "account", "ls", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert ids <= {a["AccountId"] for a in json.loads(listed.stdout)}
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert _clean(log), log[-3000:]
