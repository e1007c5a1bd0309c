"""Alembic environment: migrates the connection handed over by :func:`lbcloud.adapters.store.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from lbcloud.adapters.store.schema import Base

# any fixed number: concurrent migrations of one PostgreSQL database queue on this lock
MIGRATION_LOCK_ID = 7_324_019_551


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through lbcloud.adapters.store.migrate(url)")
run_migrations(connection)
