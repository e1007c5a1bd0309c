"""Attempts in the state store: claims, tokens, status, ending once, leases and take-over."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lbcloud.adapters.store import SqlStateStore
from lbcloud.adapters.store.schema import RouteTaskRow
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import Conflict, NotFound
from lbcloud.domain.tasks import AttemptOutcome, AttemptStatus, RouteTaskStatus
from lbcloud.services.ports import AttemptEnd

from .conftest import FakeClock, queued_submission

SIMULATOR_CRASH = AttemptEnd(
    outcome=AttemptOutcome.FAILED,
    blame=Blame.SIMULATOR,
    reason="simulator died",
    exit_code=4,
    record_json=None,
    counted=True,
)


def test_claim_task_moves_it_to_running_and_creates_a_leased_attempt(store: SqlStateStore, clock: FakeClock) -> None:
    submission = queued_submission(store, routes=1)
    [task] = store.route_tasks(submission.id)

    attempt = store.claim_task(task.id, backend="local", pool="cpu", owner="d1", lease_s=30)

    assert attempt is not None
    assert (attempt.task_id, attempt.submission_id, attempt.number) == (task.id, submission.id, 1)
    assert (attempt.backend, attempt.pool, attempt.owner) == ("local", "cpu", "d1")
    assert attempt.status is AttemptStatus.STARTING
    assert attempt.lease_expires_at is not None
    assert (attempt.lease_expires_at - clock.current).total_seconds() == 30
    [claimed] = store.route_tasks(submission.id)
    assert (claimed.status, claimed.attempts) == (RouteTaskStatus.RUNNING, 1)


def test_a_claimed_task_cannot_be_claimed_again(store: SqlStateStore) -> None:
    submission = queued_submission(store, routes=1)
    [task] = store.route_tasks(submission.id)
    assert store.claim_task(task.id, backend="local", pool="p", owner="d1", lease_s=30) is not None
    assert store.claim_task(task.id, backend="local", pool="p", owner="d2", lease_s=30) is None
    assert len(store.attempts(task_id=task.id)) == 1
    with pytest.raises(NotFound):
        store.claim_task(12345, backend="local", pool="p", owner="d1", lease_s=30)


def test_retried_task_gets_numbered_attempts_with_distinct_tokens(store: SqlStateStore) -> None:
    submission = queued_submission(store, routes=1)
    [task] = store.route_tasks(submission.id)
    tokens = set()
    for number in (1, 2, 3):
        attempt = store.claim_task(task.id, backend="local", pool="p", owner="d1", lease_s=30)
        assert attempt is not None and attempt.number == number
        tokens.add(attempt.token)
        store.end_attempt(attempt.id, SIMULATOR_CRASH)
        store.set_task_status(task.id, RouteTaskStatus.PENDING, blame=Blame.SIMULATOR, reason="retry")
    assert len(tokens) == 3
    assert all(len(token) >= 40 for token in tokens)
    assert [a.number for a in store.attempts(submission_id=submission.id)] == [1, 2, 3]


def test_attempt_by_token_finds_the_attempt_and_nothing_else(store: SqlStateStore) -> None:
    submission = queued_submission(store, routes=1)
    [task] = store.route_tasks(submission.id)
    attempt = store.claim_task(task.id, backend="local", pool="p", owner="d1", lease_s=30)
    assert attempt is not None
    assert store.attempt_by_token(attempt.token) == attempt
    assert store.attempt_by_token(attempt.token + "x") is None


def test_handle_node_and_running_status_are_recorded(store: SqlStateStore, clock: FakeClock) -> None:
    submission = queued_submission(store, routes=1)
    [task] = store.route_tasks(submission.id)
    attempt = store.claim_task(task.id, backend="kubernetes", pool="gpu", owner="d1", lease_s=30)
    assert attempt is not None
    store.set_attempt_handle(attempt.id, "job/lbcloud-attempt-1")
    waiting = store.set_attempt_status(attempt.id, AttemptStatus.WAITING_CAPACITY)
    clock.advance(10)
    running = store.set_attempt_status(attempt.id, AttemptStatus.RUNNING, node="gpu-node-1")
    clock.advance(10)
    again = store.set_attempt_status(attempt.id, AttemptStatus.RUNNING)

    assert waiting.started_at is None
    assert running.handle == "job/lbcloud-attempt-1"
    assert running.node == "gpu-node-1"
    assert running.started_at == clock.current - timedelta(seconds=10)
    assert again.started_at == running.started_at and again.node == "gpu-node-1"
    with pytest.raises(NotFound):
        store.set_attempt_handle(999, "x")


def test_end_attempt_records_the_outcome_once_and_counts_the_retry(store: SqlStateStore, clock: FakeClock) -> None:
    submission = queued_submission(store, routes=1)
    [task] = store.route_tasks(submission.id)
    attempt = store.claim_task(task.id, backend="local", pool="p", owner="d1", lease_s=30)
    assert attempt is not None
    clock.advance(60)

    ended = store.end_attempt(
        attempt.id,
        AttemptEnd(
            outcome=AttemptOutcome.FAILED,
            blame=Blame.SIMULATOR,
            reason="simulator died",
            exit_code=4,
            record_json='{"status": "Failed - Simulation crashed"}',
            counted=True,
            sim_ratio=0.8,
        ),
    )
    replay = store.end_attempt(attempt.id, AttemptEnd(AttemptOutcome.RECORD, Blame.NONE, None, 0, "{}", counted=True))

    assert ended.status is AttemptStatus.ENDED
    assert (ended.outcome, ended.blame, ended.reason, ended.exit_code) == (
        AttemptOutcome.FAILED,
        Blame.SIMULATOR,
        "simulator died",
        4,
    )
    assert ended.counted and ended.sim_ratio == 0.8
    assert ended.record_json == '{"status": "Failed - Simulation crashed"}'
    assert ended.ended_at == clock.current
    assert ended.lease_expires_at is None
    assert replay == ended
    assert store.get_attempt(attempt.id) == ended
    assert store.route_tasks(submission.id)[0].counted_retries == 1
    assert store.set_attempt_status(attempt.id, AttemptStatus.RUNNING).status is AttemptStatus.ENDED
    assert store.live_attempts() == []


def test_uncounted_end_does_not_bump_counted_retries(store: SqlStateStore) -> None:
    submission = queued_submission(store, routes=1)
    [task] = store.route_tasks(submission.id)
    attempt = store.claim_task(task.id, backend="local", pool="p", owner="d1", lease_s=30)
    assert attempt is not None
    store.end_attempt(
        attempt.id, AttemptEnd(AttemptOutcome.FAILED, Blame.INFRASTRUCTURE, "preempted", None, None, False)
    )
    assert store.route_tasks(submission.id)[0].counted_retries == 0
    with pytest.raises(NotFound):
        store.end_attempt(999, SIMULATOR_CRASH)
    with pytest.raises(NotFound):
        store.get_attempt(999)


def test_live_attempts_filters_by_owner(store: SqlStateStore) -> None:
    submission = queued_submission(store, routes=3)
    t1, t2, t3 = store.route_tasks(submission.id)
    a1 = store.claim_task(t1.id, backend="local", pool="p", owner="d1", lease_s=30)
    a2 = store.claim_task(t2.id, backend="local", pool="p", owner="d2", lease_s=30)
    a3 = store.claim_task(t3.id, backend="local", pool="p", owner="d1", lease_s=30)
    assert a1 and a2 and a3
    store.end_attempt(a3.id, SIMULATOR_CRASH)

    assert [a.id for a in store.live_attempts()] == [a1.id, a2.id]
    assert [a.id for a in store.live_attempts(owner="d1")] == [a1.id]
    assert [a.id for a in store.attempts(task_id=t2.id)] == [a2.id]


def test_renew_leases_extends_only_the_owners_live_attempts(store: SqlStateStore, clock: FakeClock) -> None:
    submission = queued_submission(store, routes=3)
    t1, t2, t3 = store.route_tasks(submission.id)
    mine = store.claim_task(t1.id, backend="local", pool="p", owner="d1", lease_s=30)
    theirs = store.claim_task(t2.id, backend="local", pool="p", owner="d2", lease_s=30)
    ended = store.claim_task(t3.id, backend="local", pool="p", owner="d1", lease_s=30)
    assert mine and theirs and ended
    store.end_attempt(ended.id, SIMULATOR_CRASH)
    clock.advance(20)

    assert store.renew_leases("d1", 30) == 1

    assert store.get_attempt(mine.id).lease_expires_at == clock.current + timedelta(seconds=30)
    assert store.get_attempt(theirs.id).lease_expires_at == theirs.lease_expires_at
    assert store.get_attempt(ended.id).lease_expires_at is None


def test_take_over_expired_reowns_only_attempts_whose_lease_ran_out(store: SqlStateStore, clock: FakeClock) -> None:
    submission = queued_submission(store, routes=2)
    t1, t2 = store.route_tasks(submission.id)
    dead = store.claim_task(t1.id, backend="local", pool="p", owner="dead", lease_s=30)
    alive = store.claim_task(t2.id, backend="local", pool="p", owner="alive", lease_s=30)
    assert dead and alive
    clock.advance(20)
    store.renew_leases("alive", 30)
    assert store.take_over_expired("d3", 30) == []
    clock.advance(15)

    taken = store.take_over_expired("d3", 30)

    assert [a.id for a in taken] == [dead.id]
    assert taken[0].owner == "d3"
    assert taken[0].lease_expires_at is not None and taken[0].lease_expires_at > clock.current
    assert store.get_attempt(alive.id).owner == "alive"
    assert store.take_over_expired("d4", 30) == []
    assert [a.id for a in store.live_attempts(owner="d3")] == [dead.id]


def test_a_constraint_violation_is_reported_as_conflict_not_a_library_error(store: SqlStateStore) -> None:
    submission = queued_submission(store, routes=1)
    [task] = store.route_tasks(submission.id)
    attempt = store.claim_task(task.id, backend="local", pool="p", owner="d1", lease_s=30)
    assert attempt is not None
    # a task's attempt numbers are unique; force a clash by rewinding the task's attempt counter
    store.set_task_status(task.id, RouteTaskStatus.PENDING)
    with store._tx("rewinding a counter") as session:  # reaching in: no port method allows this
        session.get(RouteTaskRow, task.id).attempts = 0  # type: ignore[union-attr]
    with pytest.raises(Conflict, match=f"claiming route task {task.id}"):
        store.claim_task(task.id, backend="local", pool="p", owner="d1", lease_s=30)
    assert store.route_tasks(submission.id)[0].status is RouteTaskStatus.PENDING  # rolled back
