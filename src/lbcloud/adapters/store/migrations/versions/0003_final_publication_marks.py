"""Mark the final results of submissions that ended before this version as published.

The dispatcher now records a ``final_published`` event once an ended submission's final result
reached its sinks, and publishes after a restart whatever has no such event. Submissions that ended
under an older version were published then; this marks them so an upgrade does not send them again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 02:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO events (submission_id, kind, message, route_id, attempt_id, at) "
            "SELECT id, 'final_published', 'final result published (before an upgrade)', NULL, NULL, updated_at "
            "FROM submissions WHERE status IN ('finished', 'failed', 'cancelled')"
        )
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM events WHERE kind = 'final_published'"))
