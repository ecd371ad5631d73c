"""Alembic environment: migrations run programmatically on an open connection (engine.migrate).

The connection is already inside the transaction ``migrate()`` opened (``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL), so every revision runs in that one transaction:
``begin_transaction()`` below adds none of its own, and a second process migrating the same
catalog waits for it and then finds the schema at head.
"""

from __future__ import annotations

from alembic import context

from kiln.catalog.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("kiln migrations run through kiln.catalog.engine.migrate()")
if not connection.in_transaction():
    raise RuntimeError("kiln migrations run inside migrate()'s write transaction")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
