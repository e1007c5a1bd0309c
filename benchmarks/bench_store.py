"""State store speed: route-task claims and submission transitions per second, SQLite and PostgreSQL.

Run:  python benchmarks/bench_store.py [--tasks 2000] [--transitions 1500] [--postgres-url URL]

For each database it prints operations per second of: planning route tasks (one transaction per
submission), claiming them with one dispatcher, claiming with two dispatchers racing over the same
tasks (two store objects, two threads: the conditional UPDATE decides every race), ending attempts,
and submission transitions (each one a status update, a history row and an event). PostgreSQL is
measured on ``--postgres-url`` or, when Debian's PostgreSQL binaries are installed, on a throwaway
server started for the run (durability off, like the test suite's); otherwise it is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's PostgreSQL launcher

from lbcloud.adapters.store import SqlStateStore, open_state_store
from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import AttemptOutcome, NewRouteTask
from lbcloud.services.ports import AttemptEnd

ROUTES_PER_SUBMISSION = 100
CYCLE = (SubmissionStatus.FAILED, SubmissionStatus.RESUMING, SubmissionStatus.QUEUED)
END = AttemptEnd(AttemptOutcome.RECORD, Blame.NONE, None, 0, '{"status": "Completed"}', counted=False)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:10.0f}/s" if seconds > 0 else "         -"


def timed(action: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    done = action()
    return done, time.perf_counter() - start


def plan(store: SqlStateStore, tasks: int, team: str) -> list[int]:
    ids: list[int] = []
    for first in range(0, tasks, ROUTES_PER_SUBMISSION):
        submission, _ = store.create_submission(
            NewSubmission(team=team, track="SENSORS", agent=AgentRef(AgentKind.IMAGE, "registry.example/agent:1"))
        )
        routes = [
            NewRouteTask(str(i), 0, i, 1000.0, 600.0) for i in range(first, min(first + ROUTES_PER_SUBMISSION, tasks))
        ]
        ids.extend(t.id for t in store.plan_route_tasks(submission.id, routes))
        store.transition(submission.id, SubmissionStatus.QUEUED)
    return ids


def bench(url: str, label: str, tasks: int, transitions: int) -> None:
    store = open_state_store(url)
    rival = open_state_store(url, upgrade=False)
    try:
        ids, planning = timed(lambda: len(plan(store, tasks, "Solo")))
        task_ids = [t.id for pair in store.runnable_tasks() for t in pair[:1]]

        attempts: list[int] = []

        def claim_alone() -> int:
            for task_id in task_ids:
                attempt = store.claim_task(task_id, backend="local", pool="p", owner="solo", lease_s=30)
                assert attempt is not None
                attempts.append(attempt.id)
            return len(task_ids)

        claimed, claiming = timed(claim_alone)

        ended, ending = timed(lambda: sum(1 for a in attempts if store.end_attempt(a, END)))

        raced_ids = plan(store, tasks, "Race")
        won: dict[str, int] = {}

        def dispatcher(name: str, mine: SqlStateStore, order: list[int]) -> None:
            won[name] = sum(
                1 for t in order if mine.claim_task(t, backend="local", pool="p", owner=name, lease_s=30) is not None
            )

        def race() -> int:
            threads = [
                threading.Thread(target=dispatcher, args=("a", store, raced_ids)),
                threading.Thread(target=dispatcher, args=("b", rival, raced_ids[::-1])),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return len(raced_ids) * 2  # every task is attempted by both dispatchers

        raced, racing = timed(race)
        assert won["a"] + won["b"] == len(raced_ids), "a task was claimed twice or not at all"

        submission, _ = store.create_submission(
            NewSubmission(team="Cycle", track="SENSORS", agent=AgentRef(AgentKind.LOCAL, "agent.py"))
        )
        store.transition(submission.id, SubmissionStatus.QUEUED)

        def cycle() -> int:
            for i in range(transitions):
                store.transition(submission.id, CYCLE[i % len(CYCLE)], "benchmark")
            return transitions

        moved, moving = timed(cycle)
        replays, replaying = timed(
            lambda: sum(1 for _ in range(transitions) if store.transition(submission.id, CYCLE[(moved - 1) % 3]))
        )

        print(f"\n{label}")
        print(f"  plan route tasks        {ids:6d} tasks  {rate(ids, planning)}")
        print(f"  claim (one dispatcher)  {claimed:6d}        {rate(claimed, claiming)}")
        print(
            f"  claim (two racing)      {raced:6d} tries {rate(raced, racing)}"
            f"   won a={won['a']} b={won['b']}, none twice"
        )
        print(f"  end attempt             {ended:6d}        {rate(ended, ending)}")
        print(f"  transition              {moved:6d}        {rate(moved, moving)}")
        print(f"  transition replay       {replays:6d}        {rate(replays, replaying)}")
    finally:
        store.close()
        rival.close()


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    try:
        from tests.services.postgres import _bin_dir, running_server
    except ImportError:
        yield None
        return
    bin_dir = _bin_dir()
    if bin_dir is None:
        yield None
        return
    with running_server(bin_dir, prefix="lbcloud-bench-pg-") as server:
        yield server.create_database("bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--transitions", type=int, default=1500)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        bench(f"sqlite:///{folder}/bench.db", "SQLite (file, WAL)", args.tasks, args.transitions)
    if args.postgres_url:
        bench(args.postgres_url, "PostgreSQL", args.tasks, args.transitions)
        return
    with throwaway_postgres() as url:
        if url is None:
            print("\nPostgreSQL: skipped (no --postgres-url and no /usr/lib/postgresql/*/bin/initdb)")
        else:
            bench(url, "PostgreSQL (throwaway local server, fsync off)", args.tasks, args.transitions)


if __name__ == "__main__":
    main()
