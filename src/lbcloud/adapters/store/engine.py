"""Engines for the state store: URL normalisation, SQLite pragmas, error translation, migrations.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so concurrent writers (threads or processes) queue on the busy timeout instead
of failing on a lock upgrade. PostgreSQL engines ping pooled connections before use, so a server
restart costs one failed call at most.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from lbcloud.domain.errors import ConfigError, Unavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 5
WRITE = "lbcloud_write"


def normalise_url(url: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` / ``postgres://`` use the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception as err:  # sqlalchemy raises ArgumentError (and ValueError for bad ports)
        raise ConfigError(f"invalid database URL {redact(url)!r}: {err}") from err
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql")
    return parsed


def redact(url: str | URL) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine configured for the state store (see the module docstring)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=10,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
    )


def _sqlite_engine(parsed: URL) -> Engine:
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise Unavailable(f"cannot create the folder {folder} of the SQLite database: {err}") from err
    engine = create_engine(
        parsed,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is DEFERRED)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, marked so SQLite takes the write lock when a transaction begins."""
    return engine.execution_options(**{WRITE: True})


@contextmanager
def translate_errors(url: str | URL, doing: str) -> Iterator[None]:
    """Turn "database unreachable" library errors into :class:`Unavailable` naming URL and action."""
    try:
        yield
    except (OperationalError, InterfaceError) as err:
        detail = str(err.orig).strip().splitlines()[0] if err.orig is not None else str(err)
        raise Unavailable(f"database {redact(url)} unavailable while {doing}: {detail}") from err
    except PoolTimeoutError as err:
        raise Unavailable(f"database {redact(url)} unavailable while {doing}: no free connection") from err


def _alembic_config() -> Config:
    config = Config()
    location = resources.files("lbcloud.adapters.store") / "migrations"
    config.set_main_option("script_location", str(location))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (``alembic upgrade``). Safe to run repeatedly
    and from several processes at once (PostgreSQL serialises them with an advisory lock).

    Raises :class:`Unavailable` when the database cannot be reached, :class:`ConfigError` for a bad URL.
    """
    _run_alembic(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` down to ``revision`` (``base`` drops every table: data is lost)."""
    _run_alembic(url, "downgrade", revision)


def _run_alembic(url: str, direction: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with translate_errors(url, f"migrating the schema ({direction} {revision})"), writer(engine).connect() as conn:
            config = _alembic_config()
            config.attributes["connection"] = conn
            if direction == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The schema revision the database at ``url`` is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with translate_errors(url, "reading the schema revision"), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
