"""A state store on SQLite and on real PostgreSQL, with a clock the tests move by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lbcloud.adapters.store import SqlStateStore, open_state_store
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SourceKind, Submission, SubmissionStatus
from lbcloud.domain.tasks import NewRouteTask


class FakeClock:
    """UTC time that only moves when a test says so."""

    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.current.timestamp()

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'lbcloud.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(database_url: str, clock: FakeClock) -> Iterator[SqlStateStore]:
    opened = open_state_store(database_url, clock=clock)
    yield opened
    opened.close()


def new_submission(team: str = "Team A", track: str = "SENSORS", external_id: str | None = None) -> NewSubmission:
    return NewSubmission(
        team=team,
        track=track,
        agent=AgentRef(kind=AgentKind.IMAGE, ref="registry.example/agent:1"),
        source=SourceKind.EVALAI if external_id else SourceKind.LOCAL,
        external_id=external_id,
    )


def route_plan(count: int = 3) -> list[NewRouteTask]:
    return [
        NewRouteTask(route_id=str(i), repetition=1, position=i, route_length_m=100.0 * (i + 1), expected_s=60.0)
        for i in range(count)
    ]


def queued_submission(store: SqlStateStore, routes: int = 3, **kwargs: str) -> Submission:
    """A submission in ``queued`` with ``routes`` planned route tasks."""
    submission, _ = store.create_submission(new_submission(**kwargs))
    store.plan_route_tasks(submission.id, route_plan(routes))
    return store.transition(submission.id, SubmissionStatus.QUEUED)
