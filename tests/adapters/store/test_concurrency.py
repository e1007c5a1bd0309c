"""Two dispatchers on one database never run a route task twice (threads and processes)."""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections import Counter

from lbcloud.adapters.store import open_state_store
from lbcloud.domain.submissions import SubmissionStatus

from .conftest import new_submission, route_plan

TASKS = 40


def _plan(url: str, tasks: int = TASKS) -> list[int]:
    store = open_state_store(url)
    try:
        submission, _ = store.create_submission(new_submission())
        planned = store.plan_route_tasks(submission.id, route_plan(tasks))
        store.transition(submission.id, SubmissionStatus.QUEUED)
        return [t.id for t in planned]
    finally:
        store.close()


def _claim_all(url: str, owner: str, task_ids: list[int], start: threading.Barrier | None = None) -> list[int]:
    """One dispatcher: try to claim every task, in its own random order; returns what it won."""
    store = open_state_store(url, upgrade=False)
    order = list(task_ids)
    random.Random(owner).shuffle(order)
    if start is not None:
        start.wait()
    try:
        return [t for t in order if store.claim_task(t, backend="local", pool="p", owner=owner, lease_s=30) is not None]
    finally:
        store.close()


def _claim_in_process(url: str, owner: str, task_ids: list[int], start: object, results: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    results.put((owner, _claim_all(url, owner, task_ids)))  # type: ignore[attr-defined]


def _assert_each_task_claimed_once(url: str, task_ids: list[int], won: dict[str, list[int]]) -> None:
    counts = Counter(t for claimed in won.values() for t in claimed)
    assert sorted(counts) == sorted(task_ids)
    assert set(counts.values()) == {1}
    store = open_state_store(url, upgrade=False)
    try:
        attempts = store.attempts()
        assert sorted(a.task_id for a in attempts) == sorted(task_ids)
        assert {a.owner for a in attempts} <= set(won)
        assert len({a.token for a in attempts}) == len(attempts)
    finally:
        store.close()


def test_concurrent_dispatcher_threads_never_claim_a_task_twice(database_url: str) -> None:
    task_ids = _plan(database_url)
    owners = [f"dispatcher-{i}" for i in range(4)]
    start = threading.Barrier(len(owners))
    won: dict[str, list[int]] = {}

    def run(owner: str) -> None:
        won[owner] = _claim_all(database_url, owner, task_ids, start)

    threads = [threading.Thread(target=run, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert set(won) == set(owners)
    _assert_each_task_claimed_once(database_url, task_ids, won)


def test_two_dispatcher_processes_never_claim_a_task_twice(database_url: str) -> None:
    task_ids = _plan(database_url)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(target=_claim_in_process, args=(database_url, owner, task_ids, start, results))
        for owner in ("process-a", "process-b")
    ]
    for process in processes:
        process.start()
    won = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    _assert_each_task_claimed_once(database_url, task_ids, won)


def test_concurrent_take_over_gives_each_expired_attempt_to_one_dispatcher(database_url: str) -> None:
    task_ids = _plan(database_url, tasks=20)
    store = open_state_store(database_url, upgrade=False)
    for task_id in task_ids:
        # negative lease: expired at once, as if its dispatcher died long ago
        assert store.claim_task(task_id, backend="local", pool="p", owner="dead", lease_s=-60) is not None
    owners = [f"survivor-{i}" for i in range(4)]
    start = threading.Barrier(len(owners))
    taken: dict[str, list[int]] = {}

    def run(owner: str) -> None:
        mine = open_state_store(database_url, upgrade=False)
        start.wait()
        taken[owner] = [a.id for a in mine.take_over_expired(owner, 30)]
        mine.close()

    threads = [threading.Thread(target=run, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    counts = Counter(a for ids in taken.values() for a in ids)
    assert len(counts) == len(task_ids)
    assert set(counts.values()) == {1}
    assert {a.owner for a in store.live_attempts()} <= set(owners)
    assert store.live_attempts(owner="dead") == []
    store.close()


def test_concurrent_create_submission_with_one_external_id_makes_one_row(database_url: str) -> None:
    open_state_store(database_url).close()
    start = threading.Barrier(4)
    created: list[bool] = []

    def run() -> None:
        store = open_state_store(database_url, upgrade=False)
        start.wait()
        created.append(store.create_submission(new_submission(external_id="evalai-77"))[1])
        store.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(created) == [False, False, False, True]
    store = open_state_store(database_url, upgrade=False)
    assert len(store.list_submissions()) == 1
    store.close()


def test_a_reader_paging_events_by_id_while_writers_add_them_misses_none(database_url: str) -> None:
    store = open_state_store(database_url)
    submission, _ = store.create_submission(new_submission())
    writers_done = threading.Event()

    def write(worker: int) -> None:
        mine = open_state_store(database_url, upgrade=False)
        for i in range(40):
            mine.add_event(submission.id, "progress", f"worker {worker} event {i}")
        mine.close()

    seen: list[int] = []

    def read() -> None:
        last = 0
        while True:
            finished = writers_done.is_set()
            page = store.events(submission_id=submission.id, after_id=last)
            seen.extend(e.id for e in page)
            last = page[-1].id if page else last
            if finished and not page:
                return

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    writers_done.set()
    reader.join(timeout=120)

    every = [e.id for e in store.events(submission_id=submission.id, limit=10_000)]
    assert len(every) == 1 + 4 * 40
    assert seen == every
    store.close()
