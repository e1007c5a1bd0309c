"""The SQL state store (SQLite by default, PostgreSQL in production) and its migrations."""

from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.store.engine import current_revision, downgrade, migrate
from lbcloud.adapters.store.sql import SqlStateStore, open_state_store

__all__ = ["SqlStateStore", "SystemClock", "current_revision", "downgrade", "migrate", "open_state_store"]
