"""Submission limits at intake, against the real SQLite store: per rolling day, in total, at once;
a clear message; the platform's failures do not count, a team's own failures do."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lbcloud.adapters.agents import AgentChecker
from lbcloud.adapters.store.sql import open_state_store
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import Conflict
from lbcloud.domain.limits import SubmissionLimits
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import NewRouteTask, RouteTaskStatus
from lbcloud.services.intake import Intake
from lbcloud.services.ports import StateStore
from lbcloud.settings import default_tracks


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = open_state_store(f"sqlite:///{tmp_path / 'lbcloud.db'}")
    yield opened
    opened.close()


def intake(store: StateStore, limits: SubmissionLimits, clock: Clock) -> Intake:
    tracks = {t.name: replace(t.to_track(), limits=limits) for t in default_tracks()}
    store.sync_tracks(list(tracks.values()))  # type: ignore[attr-defined]
    return Intake(store, tracks, AgentChecker([]), now=clock)


def new(n: int, team: str = "alpha") -> NewSubmission:
    return NewSubmission(team=team, track="sumo-dev", agent=AgentRef(AgentKind.IMAGE, f"registry.example/{team}:{n}"))


def finish(store: StateStore, submission_id: int, status: SubmissionStatus = SubmissionStatus.FINISHED) -> None:
    store.transition(submission_id, SubmissionStatus.QUEUED)
    store.transition(submission_id, status, "test")


def test_the_total_limit_refuses_with_a_clear_message(store: StateStore) -> None:
    clock = Clock()
    gate = intake(store, SubmissionLimits(total=2), clock)
    for n in range(2):
        sub, _ = gate.submit(new(n))
        finish(store, sub.id)
    with pytest.raises(Conflict, match="team 'alpha' has used all 2 submissions allowed on 'sumo-dev'"):
        gate.submit(new(3))
    assert len(store.list_submissions(team="alpha")) == 2  # nothing recorded on refusal
    gate.submit(new(3, team="beta"))  # limits are per team


def test_the_daily_limit_rolls_over_24_hours_and_says_when(store: StateStore) -> None:
    clock = Clock()
    gate = intake(store, SubmissionLimits(per_day=1), clock)
    first, _ = gate.submit(new(1))
    finish(store, first.id)
    with pytest.raises(Conflict, match=r"the limit is 1; the next one is possible at \d{4}-\d\d-\d\d \d\d:\d\d UTC"):
        gate.submit(new(2))
    usage = gate.limit_usage("alpha", gate.track("sumo-dev"))
    assert usage.next_day_slot_at == first.created_at + timedelta(hours=24)
    clock.now = first.created_at + timedelta(hours=24, seconds=1)
    gate.submit(new(2))


def test_the_concurrent_limit_counts_unsettled_submissions(store: StateStore) -> None:
    gate = intake(store, SubmissionLimits(concurrent=1), Clock())
    running, _ = gate.submit(new(1))
    with pytest.raises(Conflict, match="already has 1 submission\\(s\\) being evaluated"):
        gate.submit(new(2))
    finish(store, running.id, SubmissionStatus.CANCELLED)
    gate.submit(new(2))


def test_platform_failures_do_not_count_but_agent_failures_do(store: StateStore) -> None:
    gate = intake(store, SubmissionLimits(total=1), Clock())
    platform, _ = gate.submit(new(1))
    task = store.plan_route_tasks(platform.id, [NewRouteTask("0", 0, 0, 100.0, 10.0)])[0]
    store.set_task_status(task.id, RouteTaskStatus.FAILED_FINAL, blame=Blame.INFRASTRUCTURE, reason="node lost")
    store.transition(platform.id, SubmissionStatus.FAILED, "infrastructure")
    agent_fault, _ = gate.submit(new(2))
    task = store.plan_route_tasks(agent_fault.id, [NewRouteTask("0", 0, 0, 100.0, 10.0)])[0]
    store.set_task_status(task.id, RouteTaskStatus.FAILED_FINAL, blame=Blame.AGENT, reason="crashed")
    store.transition(agent_fault.id, SubmissionStatus.FAILED, "agent")
    with pytest.raises(Conflict, match="used all 1"):
        gate.submit(new(3))
    assert gate.limit_usage("alpha", gate.track("sumo-dev")).summary() == "1 of 1 in total"
