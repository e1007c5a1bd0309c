"""Route tasks in the state store: planning once, runnable order, status, resume and cancel."""

from __future__ import annotations

import pytest

from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import NotFound
from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.domain.tasks import NewRouteTask, RouteTaskStatus

from .conftest import FakeClock, new_submission, queued_submission, route_plan


def test_plan_route_tasks_is_idempotent_and_ordered_by_position(store: SqlStateStore) -> None:
    submission, _ = store.create_submission(new_submission())
    plan = list(reversed(route_plan(3)))
    first = store.plan_route_tasks(submission.id, plan)
    second = store.plan_route_tasks(submission.id, plan)

    assert first == second
    assert [t.position for t in first] == [0, 1, 2]
    assert all(t.status is RouteTaskStatus.PENDING and t.attempts == 0 for t in first)
    assert first[0].instance_id == "RouteScenario_0_rep1"
    assert store.route_tasks(submission.id) == first


def test_plan_route_tasks_for_unknown_submission_raises_not_found(store: SqlStateStore) -> None:
    with pytest.raises(NotFound):
        store.plan_route_tasks(42, route_plan(1))


def test_runnable_tasks_are_pending_tasks_of_active_submissions_oldest_first(
    store: SqlStateStore, clock: FakeClock
) -> None:
    older = queued_submission(store, routes=2, team="Alpha")
    clock.advance(1)
    newer = queued_submission(store, routes=1, team="Beta")
    clock.advance(1)
    not_queued, _ = store.create_submission(new_submission(team="Gamma"))
    store.plan_route_tasks(not_queued.id, route_plan(1))

    runnable = store.runnable_tasks()

    assert [(s.id, t.position) for t, s in runnable] == [(older.id, 0), (older.id, 1), (newer.id, 0)]
    store.transition(newer.id, SubmissionStatus.CANCELLED)
    store.set_task_status(runnable[0][0].id, RouteTaskStatus.DONE, record_json="{}")
    assert [(s.id, t.position) for t, s in store.runnable_tasks()] == [(older.id, 1)]


def test_queued_work_counts_pending_tasks_and_smoke_state_without_reading_tasks(
    store: SqlStateStore, clock: FakeClock
) -> None:
    smoke_first = store.create_submission(new_submission(team="Alpha"))[0]
    store.plan_route_tasks(
        smoke_first.id,
        [NewRouteTask(str(i), 0, i, 100.0, 60.0, smoke=i == 2) for i in range(4)],
    )
    store.transition(smoke_first.id, SubmissionStatus.QUEUED)
    clock.advance(1)
    plain = queued_submission(store, routes=3, team="Beta")
    clock.advance(1)
    drained = queued_submission(store, routes=1, team="Gamma")
    store.set_task_status(store.route_tasks(drained.id)[0].id, RouteTaskStatus.DONE, record_json="{}")
    not_queued, _ = store.create_submission(new_submission(team="Delta"))
    store.plan_route_tasks(not_queued.id, route_plan(2))

    work = store.queued_work()

    assert [(w.submission.id, w.submission.team, w.pending, w.smoke_pending, w.smoke_running) for w in work] == [
        (smoke_first.id, "Alpha", 4, True, False),
        (plain.id, "Beta", 3, False, False),
    ]
    smoke_task = next(t for t in store.route_tasks(smoke_first.id) if t.smoke)
    store.set_task_status(smoke_task.id, RouteTaskStatus.RUNNING)
    head = store.queued_work()[0]
    assert (head.pending, head.smoke_pending, head.smoke_running) == (3, False, True)


def test_best_pending_tasks_are_smoke_then_longest_expected_then_position_per_submission(
    store: SqlStateStore,
) -> None:
    first = store.create_submission(new_submission(team="Alpha"))[0]
    expected = [30.0, 90.0, 60.0, 90.0, 10.0]
    store.plan_route_tasks(
        first.id, [NewRouteTask(str(i), 0, i, 100.0, e, smoke=i == 4) for i, e in enumerate(expected)]
    )
    second = queued_submission(store, routes=3, team="Beta")
    ignored = queued_submission(store, routes=2, team="Gamma")
    tasks = store.route_tasks(first.id)
    store.set_task_status(tasks[1].id, RouteTaskStatus.RUNNING)  # running tasks are not pending

    best = store.best_pending_tasks({first.id: 3, second.id: 1, ignored.id: 0})

    assert [t.position for t in best[first.id]] == [4, 3, 2]
    assert [t.position for t in best[second.id]] == [0]
    assert ignored.id not in best
    everything = store.best_pending_tasks({first.id: 99})
    assert [t.position for t in everything[first.id]] == [4, 3, 2, 0]
    assert store.best_pending_tasks({}) == {}


def test_set_task_status_keeps_the_record_unless_a_new_one_is_given(store: SqlStateStore) -> None:
    submission = queued_submission(store, routes=1)
    [task] = store.route_tasks(submission.id)

    done = store.set_task_status(task.id, RouteTaskStatus.DONE, record_json='{"status": "Completed"}')
    failed = store.set_task_status(task.id, RouteTaskStatus.FAILED_FINAL, blame=Blame.AGENT, reason="crashed")

    assert done.record_json == '{"status": "Completed"}'
    assert failed.record_json == '{"status": "Completed"}'
    assert (failed.status, failed.blame, failed.reason) == (RouteTaskStatus.FAILED_FINAL, Blame.AGENT, "crashed")
    with pytest.raises(NotFound):
        store.set_task_status(9999, RouteTaskStatus.DONE)


def test_reopen_tasks_returns_unrecorded_settled_tasks_to_pending(store: SqlStateStore) -> None:
    submission = queued_submission(store, routes=4)
    done, failed, cancelled, pending = store.route_tasks(submission.id)
    store.set_task_status(done.id, RouteTaskStatus.DONE, record_json="{}")
    store.set_task_status(failed.id, RouteTaskStatus.FAILED_FINAL, blame=Blame.SIMULATOR, reason="retries exhausted")
    store.set_task_status(cancelled.id, RouteTaskStatus.CANCELLED, reason="cancelled")

    assert store.reopen_tasks(submission.id) == 2

    statuses = {t.id: t for t in store.route_tasks(submission.id)}
    assert statuses[done.id].status is RouteTaskStatus.DONE
    assert statuses[failed.id].status is RouteTaskStatus.PENDING
    assert statuses[failed.id].blame is Blame.NONE and statuses[failed.id].counted_retries == 0
    assert statuses[cancelled.id].status is RouteTaskStatus.PENDING
    assert statuses[pending.id].status is RouteTaskStatus.PENDING
    assert store.reopen_tasks(submission.id) == 0


def test_cancel_pending_tasks_leaves_running_and_done_tasks(store: SqlStateStore) -> None:
    submission = queued_submission(store, routes=3)
    running, done, pending = store.route_tasks(submission.id)
    assert store.claim_task(running.id, backend="local", pool="default", owner="d1", lease_s=30) is not None
    store.set_task_status(done.id, RouteTaskStatus.DONE, record_json="{}")

    assert store.cancel_pending_tasks(submission.id, "cancelled by operator") == 1

    by_id = {t.id: t for t in store.route_tasks(submission.id)}
    assert by_id[pending.id].status is RouteTaskStatus.CANCELLED
    assert by_id[pending.id].reason == "cancelled by operator"
    assert by_id[running.id].status is RouteTaskStatus.RUNNING
    assert by_id[done.id].status is RouteTaskStatus.DONE
