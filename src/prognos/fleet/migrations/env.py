"""Alembic environment: runs on the connection :func:`prognos.fleet.database.upgrade` passes in
(``config.attributes["connection"]``), so no ``alembic.ini`` or URL is read from disk."""

from __future__ import annotations

from alembic import context

from prognos.fleet.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only programmatic use is supported
    raise RuntimeError("prognos migrations run through prognos.fleet.database.upgrade (prognos db upgrade)")

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
