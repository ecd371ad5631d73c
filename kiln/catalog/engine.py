"""Open the catalog database: engine settings per dialect, and migrations on startup.

SQLite (the embedded default) runs in WAL mode with a busy timeout so that `kiln serve` and a
concurrent `kiln account create` share one file; write transactions start with ``BEGIN
IMMEDIATE`` so two writers queue on the lock instead of failing to upgrade it. PostgreSQL is
reached through psycopg 3 (``postgresql+psycopg://``).

Every wait on SQLite's lock is bounded by ``SQLITE_BUSY_TIMEOUT_MS``:

- each connection sets ``busy_timeout`` before anything else, then switches the file to WAL.
  Switching needs an exclusive lock that SQLite takes *without* its busy handler, so a fresh file
  opened by several processes at once fails that PRAGMA at once; it is retried until the timeout;
- migrations run in one ``BEGIN IMMEDIATE`` transaction (PostgreSQL: under an advisory lock), so
  of several processes migrating a fresh catalog one creates the schema and the others wait, then
  see it. A deferred transaction would read first and then fail at once to upgrade its lock
  ("database is locked" on ``CREATE TABLE alembic_version``);
- a lock still held after the timeout surfaces as :class:`CatalogLocked` (an ``KilnError``: one
  ``error: …`` line in the CLI, ``InternalError`` from the API), never as a raw driver error.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url

from kiln import errors
from kiln.errors import KilnError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# pg_advisory_xact_lock key that serialises migrations of one PostgreSQL database ("kiln").
PG_MIGRATION_LOCK = 0x6B696C6E
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


class CatalogLocked(KilnError):
    """The SQLite catalog stayed locked by another process for the whole busy timeout."""

    def __init__(self, path: str) -> None:
        super().__init__(
            errors.InternalError,
            f"catalog database {path} is locked by another process "
            f"(waited {SQLITE_BUSY_TIMEOUT_MS / 1000:g} s); try again",
        )


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with Kiln's per-dialect settings (not yet migrated)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        memory = not db or db == ":memory:"
        if db and not memory:
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        _sqlite_setup(engine, None if memory else str(db))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def is_sqlite_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's SQLITE_BUSY / SQLITE_LOCKED ("database is locked")."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _use_wal(dbapi_conn: sqlite3.Connection, path: str) -> None:
    """Put the file in WAL mode (persistent), retrying while another connection holds a lock."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.002
    while True:
        try:
            mode = str(dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if mode != "wal":
                mode = str(dbapi_conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            break
        except sqlite3.OperationalError as e:
            if not is_sqlite_busy(e):
                raise
            if time.monotonic() >= deadline:
                raise CatalogLocked(path) from e
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    if mode != "wal":  # e.g. a file system without shared memory: still correct, slower
        log.warning("catalog %s: journal_mode is %s, not wal", path, mode)


def _sqlite_setup(engine: Engine, path: str | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # before any lock
        if path is not None:
            _use_wal(dbapi_conn, path)
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("kiln_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: ExceptionContext) -> None:
        if ctx.original_exception is not None and is_sqlite_busy(ctx.original_exception):
            raise CatalogLocked(path or ":memory:") from ctx.original_exception


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _at_head(engine: Engine, cfg: Config) -> bool:
    """Whether the schema is already at every head (a read: takes no write lock)."""
    heads = set(ScriptDirectory.from_config(cfg).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == heads


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe on every start, and safe when
    several processes start on a fresh catalog at once: the migration holds the write lock from
    its first read of ``alembic_version`` to its commit, so the others wait and then find it
    done)."""
    cfg = _config()
    if _at_head(engine, cfg):
        log.debug("catalog already at head")
        return
    with engine.execution_options(kiln_write=True).begin() as conn:  # SQLite: BEGIN IMMEDIATE
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    log.debug("catalog migrated to head")
