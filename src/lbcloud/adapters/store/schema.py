"""The state store's tables (SQLAlchemy 2 typed ORM).

The migrations in ``migrations/versions`` create exactly these tables; a test compares the two.
Enum-valued columns hold the enum's string value (``String``, not a database enum) so new states
need no ``ALTER TYPE``. Times are UTC and come back timezone-aware on every database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TrackRow(Base):
    """A track as last synced from settings (the settings stay the source of truth)."""

    __tablename__ = "tracks"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    simulator: Mapped[str] = mapped_column(String(16))
    scorer: Mapped[str] = mapped_column(String(16))
    routes_file: Mapped[str] = mapped_column(Text)
    repetitions: Mapped[int] = mapped_column(Integer)
    pool: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    spec_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TeamRow(Base):
    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SubmissionRow(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_submissions_source_external_id"),
        Index("ix_submissions_track_status", "track", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(ForeignKey("teams.name"), index=True)
    track: Mapped[str] = mapped_column(String(63))
    agent_kind: Mapped[str] = mapped_column(String(16))
    agent_ref: Mapped[str] = mapped_column(Text)
    agent_config: Mapped[str | None] = mapped_column(Text)
    agent_digest: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    method_name: Mapped[str | None] = mapped_column(String(255))
    challenge_id: Mapped[int | None] = mapped_column(Integer)
    phase_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StatusChangeRow(Base):
    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class RouteTaskRow(Base):
    __tablename__ = "route_tasks"
    __table_args__ = (
        UniqueConstraint("submission_id", "route_id", "repetition", name="uq_route_tasks_submission_route_rep"),
        Index("ix_route_tasks_status", "status"),
        Index("ix_route_tasks_submission_status", "submission_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    route_id: Mapped[str] = mapped_column(String(255))
    repetition: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    route_length_m: Mapped[float] = mapped_column(Float)
    expected_s: Mapped[float] = mapped_column(Float)
    smoke: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    counted_retries: Mapped[int] = mapped_column(Integer, default=0)
    record_json: Mapped[str | None] = mapped_column(Text)
    blame: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AttemptRow(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("task_id", "number", name="uq_attempts_task_number"),
        Index("ix_attempts_status_owner", "status", "owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("route_tasks.id"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    backend: Mapped[str] = mapped_column(String(32))
    pool: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    handle: Mapped[str | None] = mapped_column(Text)
    token: Mapped[str] = mapped_column(String(128), unique=True)
    outcome: Mapped[str | None] = mapped_column(String(32))
    blame: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    record_json: Mapped[str | None] = mapped_column(Text)
    counted: Mapped[bool] = mapped_column(Boolean, default=False)
    node: Mapped[str | None] = mapped_column(String(255))
    sim_ratio: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class MergedResultRow(Base):
    __tablename__ = "merged_results"

    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    final: Mapped[bool] = mapped_column(Boolean)
    records: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    driving_score: Mapped[float | None] = mapped_column(Float)
    route_completion: Mapped[float | None] = mapped_column(Float)
    infraction_penalty: Mapped[float | None] = mapped_column(Float)
    entry_status: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ArtifactRow(Base):
    __tablename__ = "artifacts"

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)  # logs may pass 2 GiB
    sha256: Mapped[str] = mapped_column(String(64))
    attempt_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    route_id: Mapped[str | None] = mapped_column(String(255))
    attempt_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class QualificationRow(Base):
    __tablename__ = "qualifications"
    __table_args__ = (Index("ix_qualifications_team_track", "team", "track"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(63))
    track: Mapped[str] = mapped_column(String(63))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    passed: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
