"""Initial schema: tracks, teams, submissions and history, route tasks, attempts, results, artifacts,
events, qualifications.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 19:27:37.502772
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lbcloud.adapters.store.schema

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("created_at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_teams")),
    )
    op.create_table(
        "tracks",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("simulator", sa.String(length=16), nullable=False),
        sa.Column("scorer", sa.String(length=16), nullable=False),
        sa.Column("routes_file", sa.Text(), nullable=False),
        sa.Column("repetitions", sa.Integer(), nullable=False),
        sa.Column("pool", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("updated_at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_tracks")),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team", sa.String(length=63), nullable=False),
        sa.Column("track", sa.String(length=63), nullable=False),
        sa.Column("agent_kind", sa.String(length=16), nullable=False),
        sa.Column("agent_ref", sa.Text(), nullable=False),
        sa.Column("agent_config", sa.Text(), nullable=True),
        sa.Column("agent_digest", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("method_name", sa.String(length=255), nullable=True),
        sa.Column("challenge_id", sa.Integer(), nullable=True),
        sa.Column("phase_id", sa.Integer(), nullable=True),
        sa.Column("created_at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team"], ["teams.name"], name=op.f("fk_submissions_team_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("source", "external_id", name="uq_submissions_source_external_id"),
    )
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_submissions_team"), ["team"], unique=False)
        batch_op.create_index("ix_submissions_track_status", ["track", "status"], unique=False)

    op.create_table(
        "artifacts",
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=True),
        sa.Column("at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_artifacts_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_artifacts")),
    )
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_artifacts_submission_id"), ["submission_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("route_id", sa.String(length=255), nullable=True),
        sa.Column("attempt_id", sa.Integer(), nullable=True),
        sa.Column("at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_events_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_submission_id"), ["submission_id"], unique=False)

    op.create_table(
        "merged_results",
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("driving_score", sa.Float(), nullable=True),
        sa.Column("route_completion", sa.Float(), nullable=True),
        sa.Column("infraction_penalty", sa.Float(), nullable=True),
        sa.Column("entry_status", sa.String(length=64), nullable=False),
        sa.Column("updated_at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_merged_results_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_merged_results")),
    )
    op.create_table(
        "qualifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team", sa.String(length=63), nullable=False),
        sa.Column("track", sa.String(length=63), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_qualifications_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qualifications")),
    )
    with op.batch_alter_table("qualifications", schema=None) as batch_op:
        batch_op.create_index("ix_qualifications_team_track", ["team", "track"], unique=False)

    op.create_table(
        "route_tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("route_id", sa.String(length=255), nullable=False),
        sa.Column("repetition", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("route_length_m", sa.Float(), nullable=False),
        sa.Column("expected_s", sa.Float(), nullable=False),
        sa.Column("smoke", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("counted_retries", sa.Integer(), nullable=False),
        sa.Column("record_json", sa.Text(), nullable=True),
        sa.Column("blame", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_route_tasks_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_tasks")),
        sa.UniqueConstraint("submission_id", "route_id", "repetition", name="uq_route_tasks_submission_route_rep"),
    )
    with op.batch_alter_table("route_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_route_tasks_status", ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_route_tasks_submission_id"), ["submission_id"], unique=False)

    op.create_table(
        "status_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_status_changes_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_changes")),
    )
    with op.batch_alter_table("status_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_status_changes_submission_id"), ["submission_id"], unique=False)

    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(length=32), nullable=False),
        sa.Column("pool", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("lease_expires_at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("handle", sa.Text(), nullable=True),
        sa.Column("token", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("blame", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("record_json", sa.Text(), nullable=True),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("node", sa.String(length=255), nullable=True),
        sa.Column("sim_ratio", sa.Float(), nullable=True),
        sa.Column("created_at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("started_at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", lbcloud.adapters.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_attempts_submission_id_submissions")
        ),
        sa.ForeignKeyConstraint(["task_id"], ["route_tasks.id"], name=op.f("fk_attempts_task_id_route_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
        sa.UniqueConstraint("task_id", "number", name="uq_attempts_task_number"),
        sa.UniqueConstraint("token", name=op.f("uq_attempts_token")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index("ix_attempts_status_owner", ["status", "owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_attempts_submission_id"), ["submission_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_attempts_task_id"), ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempts_task_id"))
        batch_op.drop_index(batch_op.f("ix_attempts_submission_id"))
        batch_op.drop_index("ix_attempts_status_owner")

    op.drop_table("attempts")
    with op.batch_alter_table("status_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_changes_submission_id"))

    op.drop_table("status_changes")
    with op.batch_alter_table("route_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_route_tasks_submission_id"))
        batch_op.drop_index("ix_route_tasks_status")

    op.drop_table("route_tasks")
    with op.batch_alter_table("qualifications", schema=None) as batch_op:
        batch_op.drop_index("ix_qualifications_team_track")

    op.drop_table("qualifications")
    op.drop_table("merged_results")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_submission_id"))

    op.drop_table("events")
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_artifacts_submission_id"))

    op.drop_table("artifacts")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_submissions_track_status")
        batch_op.drop_index(batch_op.f("ix_submissions_team"))

    op.drop_table("submissions")
    op.drop_table("tracks")
    op.drop_table("teams")
