"""Alembic environment: migrations run programmatically on an open connection (engine.migrate)."""

from __future__ import annotations

from alembic import context

from kiln.catalog.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("kiln migrations run through kiln.catalog.engine.migrate()")

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
