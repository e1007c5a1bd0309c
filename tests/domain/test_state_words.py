"""The one state-to-words table: every submission, route and attempt state, and that no view can
contradict itself (a terminal word with a bar that claims more than was evaluated, green for a fault)."""

from __future__ import annotations

import pytest

from lbcloud.domain.blame import Blame
from lbcloud.domain.state_words import (
    RouteCounts,
    Tone,
    count_routes,
    describe_attempt,
    describe_route,
    describe_submission,
    format_number,
)
from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.domain.tasks import AttemptOutcome, AttemptStatus, RouteTaskStatus

S = SubmissionStatus
HALF = RouteCounts(total=10, done=3, failed=1, running=2, cancelled=0)
STOPPED = RouteCounts(total=10, done=3, failed=1, running=0, cancelled=6)
ALL_DONE = RouteCounts(total=10, done=10)

SUBMISSION_TABLE = [
    (S.SUBMITTED, RouteCounts(), None, "submitted", Tone.NEUTRAL, "being planned", None),
    (S.QUEUED, RouteCounts(total=10), None, "queued", Tone.NEUTRAL, "waiting for a free slot", 0.0),
    (S.RUNNING, HALF, None, "running", Tone.ACTIVE, "4 of 10 routes evaluated (1 failed), 2 running now", 0.4),
    (S.PARTIALLY_EVALUATED, HALF, None, "partially evaluated", Tone.ACTIVE, "4 of 10 routes evaluated", 0.4),
    (S.FINISHED, ALL_DONE, None, "finished", Tone.GOOD, "all 10 routes evaluated", 1.0),
    (S.FAILED, STOPPED, "the agent crashed", "failed", Tone.BAD, "stopped after 4 of 10 routes evaluated", 0.4),
    (S.CANCELLED, STOPPED, "cancelled by alpha", "cancelled", Tone.WARN, "cancelled after 4 of 10 routes", 0.4),
    (S.RESUMING, STOPPED, None, "resuming", Tone.NEUTRAL, "4 of 10 routes kept; the others run again", 0.4),
]


def test_the_table_covers_every_submission_status() -> None:
    assert {row[0] for row in SUBMISSION_TABLE} == set(SubmissionStatus)


@pytest.mark.parametrize(("status", "counts", "reason", "word", "tone", "detail", "progress"), SUBMISSION_TABLE)
def test_each_submission_status_has_its_words_tone_and_progress(
    status: SubmissionStatus,
    counts: RouteCounts,
    reason: str | None,
    word: str,
    tone: Tone,
    detail: str,
    progress: float | None,
) -> None:
    view = describe_submission(status, counts, reason)
    assert view.word == word
    assert view.tone is tone
    assert detail in view.detail
    assert view.progress == progress
    assert view.terminal is status.terminal
    if reason:
        assert view.detail.endswith(reason)


@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED])
def test_a_stopped_submission_never_shows_a_full_bar(status: SubmissionStatus) -> None:
    view = describe_submission(status, STOPPED, "why")
    assert view.progress is not None and view.progress < 1.0
    assert view.percent == 40


def test_a_submission_stopped_before_any_route_says_so() -> None:
    view = describe_submission(S.CANCELLED, RouteCounts(total=3, cancelled=3), "cancelled by alpha")
    assert view.detail == "cancelled before any route was evaluated: cancelled by alpha"
    assert view.progress == 0.0


def test_the_detail_counts_match_the_bar_in_every_active_state() -> None:
    for status in (S.QUEUED, S.RUNNING, S.PARTIALLY_EVALUATED, S.RESUMING):
        view = describe_submission(status, HALF)
        assert view.progress == pytest.approx(HALF.settled / HALF.total)
        if HALF.settled and status is not S.QUEUED:
            assert f"{HALF.settled} of {HALF.total}" in view.detail


ROUTE_TABLE = [
    (RouteTaskStatus.PENDING, Blame.NONE, None, "waiting", Tone.NEUTRAL),
    (RouteTaskStatus.PENDING, Blame.SIMULATOR, None, "waiting", Tone.NEUTRAL),
    (RouteTaskStatus.RUNNING, Blame.NONE, None, "running", Tone.ACTIVE),
    (RouteTaskStatus.DONE, Blame.NONE, "Completed", "done", Tone.GOOD),
    (RouteTaskStatus.DONE, Blame.NONE, "Failed - Agent got blocked", "done", Tone.WARN),
    (RouteTaskStatus.DONE, Blame.AGENT, "Failed - Agent crashed", "agent failed", Tone.BAD),
    (RouteTaskStatus.FAILED_FINAL, Blame.AGENT, None, "agent failed", Tone.BAD),
    (RouteTaskStatus.FAILED_FINAL, Blame.SIMULATOR, None, "simulator failed", Tone.BAD),
    (RouteTaskStatus.FAILED_FINAL, Blame.INFRASTRUCTURE, None, "failed", Tone.BAD),
    (RouteTaskStatus.CANCELLED, Blame.NONE, None, "not run", Tone.NEUTRAL),
]


def test_the_route_table_covers_every_route_status() -> None:
    assert {row[0] for row in ROUTE_TABLE} == set(RouteTaskStatus)


@pytest.mark.parametrize(("status", "blame", "record_status", "word", "tone"), ROUTE_TABLE)
def test_each_route_status_has_its_words(
    status: RouteTaskStatus, blame: Blame, record_status: str | None, word: str, tone: Tone
) -> None:
    view = describe_route(status, blame=blame, record_status=record_status, reason="because")
    assert (view.word, view.tone) == (word, tone)
    assert view.terminal is status.settled


def test_a_route_where_the_agent_crashed_is_never_green() -> None:
    view = describe_route(RouteTaskStatus.DONE, blame=Blame.AGENT, record_status="Failed - Agent crashed")
    assert view.tone is Tone.BAD and "done" not in view.word
    assert view.detail == "Failed - Agent crashed"


def test_a_route_waiting_for_a_retry_says_why() -> None:
    assert "retrying after a simulator fault" in describe_route(RouteTaskStatus.PENDING, blame=Blame.SIMULATOR).detail


ATTEMPT_TABLE = [
    (AttemptStatus.STARTING, None, Blame.NONE, "starting", Tone.ACTIVE),
    (AttemptStatus.WAITING_CAPACITY, None, Blame.NONE, "waiting", Tone.NEUTRAL),
    (AttemptStatus.RUNNING, None, Blame.NONE, "running", Tone.ACTIVE),
    (AttemptStatus.ENDED, AttemptOutcome.RECORD, Blame.NONE, "record", Tone.GOOD),
    (AttemptStatus.ENDED, AttemptOutcome.RECORD, Blame.AGENT, "agent failed", Tone.BAD),
    (AttemptStatus.ENDED, AttemptOutcome.FAILED, Blame.AGENT, "agent failed", Tone.BAD),
    (AttemptStatus.ENDED, AttemptOutcome.FAILED, Blame.SIMULATOR, "simulator failed", Tone.WARN),
    (AttemptStatus.ENDED, AttemptOutcome.FAILED, Blame.INFRASTRUCTURE, "infra failed", Tone.WARN),
    (AttemptStatus.ENDED, AttemptOutcome.FAILED, Blame.NONE, "failed", Tone.BAD),
    (AttemptStatus.ENDED, AttemptOutcome.CANCELLED, Blame.NONE, "cancelled", Tone.WARN),
    (AttemptStatus.ENDED, AttemptOutcome.LOST, Blame.INFRASTRUCTURE, "lost", Tone.WARN),
]


def test_the_attempt_table_covers_every_status_and_outcome() -> None:
    assert {row[0] for row in ATTEMPT_TABLE} == set(AttemptStatus)
    assert {row[1] for row in ATTEMPT_TABLE if row[1]} == set(AttemptOutcome)


@pytest.mark.parametrize(("status", "outcome", "blame", "word", "tone"), ATTEMPT_TABLE)
def test_each_attempt_state_has_its_words(
    status: AttemptStatus, outcome: AttemptOutcome | None, blame: Blame, word: str, tone: Tone
) -> None:
    view = describe_attempt(status, outcome, blame)
    assert (view.word, view.tone) == (word, tone)
    assert view.terminal is (status is AttemptStatus.ENDED)


def test_counting_route_statuses() -> None:
    t = RouteTaskStatus
    counts = count_routes([t.DONE, t.DONE, t.FAILED_FINAL, t.RUNNING, t.PENDING, t.CANCELLED])
    assert counts == RouteCounts(total=6, done=2, failed=1, running=1, cancelled=1)
    assert (counts.settled, counts.waiting) == (3, 1)


def test_one_number_format() -> None:
    assert (format_number(0.0), format_number(51.7234), format_number(None), format_number(0.5, 3)) == (
        "0.00", "51.72", "–", "0.500",
    )  # fmt: skip
