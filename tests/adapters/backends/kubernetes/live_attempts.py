"""A real SQLite state store holding a submission with one claimed attempt (for reporting tests)."""

from __future__ import annotations

from pathlib import Path

from lbcloud.adapters.store import SqlStateStore, open_state_store
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, NewRouteTask


def open_store(folder: Path) -> SqlStateStore:
    return open_state_store(f"sqlite:///{folder / 'lbcloud.db'}")


def claimed_attempt(store: SqlStateStore, *, route_id: str = "2", repetition: int = 0) -> Attempt:
    """A queued submission of one route task, claimed: the attempt (with its token) is live."""
    submission, _ = store.create_submission(
        NewSubmission(team="Team A", track="sumo-test", agent=AgentRef(AgentKind.IMAGE, "registry.example/a:1"))
    )
    (task,) = store.plan_route_tasks(
        submission.id,
        [NewRouteTask(route_id=route_id, repetition=repetition, position=0, route_length_m=800.0, expected_s=60.0)],
    )
    store.transition(submission.id, SubmissionStatus.QUEUED)
    attempt = store.claim_task(task.id, backend="kubernetes", pool="default", owner="test", lease_s=60.0)
    assert attempt is not None
    return attempt
