"""Alembic migrations of the state store (run by :func:`lbcloud.adapters.store.migrate`)."""
