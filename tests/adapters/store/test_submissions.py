"""Submissions in the state store: idempotent intake, the lifecycle, history, listing."""

from __future__ import annotations

import pytest

from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.errors import Conflict, InputError, NotFound
from lbcloud.domain.submissions import SourceKind, SubmissionStatus

from .conftest import FakeClock, new_submission


def test_create_submission_records_it_as_submitted_with_history_and_event(store: SqlStateStore) -> None:
    submission, created = store.create_submission(new_submission())

    assert created
    assert submission.status is SubmissionStatus.SUBMITTED
    assert store.get_submission(submission.id) == submission
    [change] = store.history(submission.id)
    assert (change.from_status, change.to_status) == (None, SubmissionStatus.SUBMITTED)
    assert [e.kind for e in store.events(submission_id=submission.id)] == ["status"]


def test_create_submission_twice_with_same_external_id_keeps_one_row(store: SqlStateStore) -> None:
    first, created_first = store.create_submission(new_submission(external_id="4711"))
    again, created_again = store.create_submission(new_submission(external_id="4711"))

    assert created_first and not created_again
    assert again.id == first.id
    assert len(store.list_submissions()) == 1
    assert store.find_submission(SourceKind.EVALAI.value, "4711") == first


def test_submissions_without_external_id_are_all_distinct(store: SqlStateStore) -> None:
    a, _ = store.create_submission(new_submission())
    b, _ = store.create_submission(new_submission())
    assert a.id != b.id


def test_create_submission_refuses_a_bad_team_name(store: SqlStateStore) -> None:
    with pytest.raises(InputError):
        store.create_submission(new_submission(team="../etc"))
    assert store.list_submissions() == []


def test_transition_appends_history_and_a_replay_changes_nothing(store: SqlStateStore, clock: FakeClock) -> None:
    submission, _ = store.create_submission(new_submission())
    clock.advance(5)
    queued = store.transition(submission.id, SubmissionStatus.QUEUED, "planned")
    clock.advance(5)
    replayed = store.transition(submission.id, SubmissionStatus.QUEUED, "planned again")

    assert queued.status is SubmissionStatus.QUEUED
    assert queued.reason == "planned"
    assert replayed == queued
    assert [c.to_status for c in store.history(submission.id)] == [SubmissionStatus.SUBMITTED, SubmissionStatus.QUEUED]
    assert len(store.events(submission_id=submission.id)) == 2
    assert queued.updated_at > submission.updated_at


def test_illegal_transition_is_refused_and_nothing_changes(store: SqlStateStore) -> None:
    submission, _ = store.create_submission(new_submission())
    store.transition(submission.id, SubmissionStatus.QUEUED)
    store.transition(submission.id, SubmissionStatus.FINISHED)

    with pytest.raises(Conflict, match=f"submission {submission.id}"):
        store.transition(submission.id, SubmissionStatus.RUNNING)
    assert store.get_submission(submission.id).status is SubmissionStatus.FINISHED
    assert len(store.history(submission.id)) == 3


def test_resume_after_failure_is_a_legal_round_trip(store: SqlStateStore) -> None:
    submission, _ = store.create_submission(new_submission())
    for status in (
        SubmissionStatus.QUEUED,
        SubmissionStatus.FAILED,
        SubmissionStatus.RESUMING,
        SubmissionStatus.QUEUED,
    ):
        store.transition(submission.id, status)
    assert [c.to_status.value for c in store.history(submission.id)] == [
        "submitted",
        "queued",
        "failed",
        "resuming",
        "queued",
    ]


def test_unknown_submission_raises_not_found(store: SqlStateStore) -> None:
    with pytest.raises(NotFound):
        store.get_submission(999)
    with pytest.raises(NotFound):
        store.transition(999, SubmissionStatus.QUEUED)
    with pytest.raises(NotFound):
        store.history(999)
    assert store.find_submission("evalai", "nope") is None


def test_list_submissions_filters_and_returns_newest_first(store: SqlStateStore, clock: FakeClock) -> None:
    ids = []
    for team, track in [("Alpha", "SENSORS"), ("Beta", "SENSORS"), ("Alpha", "MAP")]:
        ids.append(store.create_submission(new_submission(team=team, track=track))[0].id)
        clock.advance(1)
    store.transition(ids[0], SubmissionStatus.QUEUED)

    assert [s.id for s in store.list_submissions()] == ids[::-1]
    assert [s.id for s in store.list_submissions(team="Alpha")] == [ids[2], ids[0]]
    assert [s.id for s in store.list_submissions(track="SENSORS")] == [ids[1], ids[0]]
    assert [s.id for s in store.list_submissions(statuses=[SubmissionStatus.QUEUED])] == [ids[0]]
    assert len(store.list_submissions(limit=2)) == 2


def test_set_agent_digest_is_kept(store: SqlStateStore) -> None:
    submission, _ = store.create_submission(new_submission())
    store.set_agent_digest(submission.id, "sha256:abc")
    assert store.get_submission(submission.id).agent.digest == "sha256:abc"


def test_times_come_back_timezone_aware_utc(store: SqlStateStore, clock: FakeClock) -> None:
    submission, _ = store.create_submission(new_submission())
    assert submission.created_at == clock.current
    assert store.get_submission(submission.id).created_at == clock.current
    assert store.get_submission(submission.id).created_at.utcoffset() is not None
