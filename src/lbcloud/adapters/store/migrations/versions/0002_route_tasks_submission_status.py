"""Index route tasks by (submission, status): a scheduling decision reads a few submissions' pending tasks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 22:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("route_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_route_tasks_submission_status", ["submission_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("route_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_route_tasks_submission_status")
