"""Migrations: shipped in the package, run on open, idempotent, and identical to the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from lbcloud.adapters.store import current_revision, downgrade, migrate, open_state_store
from lbcloud.adapters.store.engine import _alembic_config, make_engine
from lbcloud.adapters.store.schema import Base


def head() -> str:
    revision = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert revision is not None
    return revision


def test_open_state_store_migrates_a_new_database_to_head(database_url: str) -> None:
    assert current_revision(database_url) is None
    open_state_store(database_url).close()
    assert current_revision(database_url) == head()


def test_migrate_twice_changes_nothing(database_url: str) -> None:
    migrate(database_url)
    migrate(database_url)
    assert current_revision(database_url) == head()


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert differences == []
    assert set(Base.metadata.tables) <= tables


def test_downgrade_to_base_and_back_up_works(database_url: str) -> None:
    migrate(database_url)
    downgrade(database_url, "base")
    assert current_revision(database_url) is None
    migrate(database_url)
    assert current_revision(database_url) == head()


def test_sqlite_database_runs_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/lbcloud.db"
    store = open_state_store(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()
        store.close()
