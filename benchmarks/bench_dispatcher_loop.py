"""Dispatcher loop cost: (c) CPU of idle ticks with many live attempts, (d) longest collection stall
while a burst of submissions arrives. The real dispatcher and SQL store; a backend that holds attempts.

(c) ``--live`` attempts (default 64) run and nothing happens: the dispatcher loop ticks every
``--tick`` s for ``--idle-seconds``; the figure is the process's CPU time over the wall time, as a
share of one core (goal: <= 2 %).

(d) Attempts end steadily (each after ``--route-seconds``, default 20-60 s) on ``--live`` slots while
``--burst`` submissions of ``--routes`` routes arrive at once (as intake records them). The figure is
the longest time between two collections of ended attempts, i.e. the longest tick plus the pause
before the next, while the burst is planned (goal: <= 1 s).

Run:  python benchmarks/bench_dispatcher_loop.py [--live 64] [--idle-seconds 10] [--burst 1000]
      [--routes 20] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bench_control_plane import cpu_seconds, routes_xml  # the benchmarks folder is the script's own
from lbcloud.adapters.artifacts import FilesystemArtifactStore
from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.route_catalog import FileRouteCatalog
from lbcloud.adapters.store.sql import SqlStateStore, open_state_store
from lbcloud.domain.results.model import ResultFormat, ResultsFile
from lbcloud.domain.results.scoring import build_route_record
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, AttemptOutcome
from lbcloud.domain.tracks import LocalCommands, Pool, ScorerVersion, SimulatorKind, Track
from lbcloud.services.control import cancel_submission
from lbcloud.services.dispatcher import Dispatcher
from lbcloud.services.ports import AttemptSpec, BackendEvent, BackendEventKind


class HoldingBackend:
    """Attempts run until their end time (``None``: forever) and then end with a perfect record."""

    name = "hold"

    def __init__(self, duration: tuple[float, float] | None) -> None:
        self.duration = duration
        self.live: dict[int, tuple[float, AttemptSpec]] = {}
        self.rng = random.Random(3)

    def launch(self, spec: AttemptSpec) -> str:
        end = float("inf") if self.duration is None else time.monotonic() + self.rng.uniform(*self.duration)
        self.live[spec.attempt_id] = (end, spec)
        return f"hold-{spec.attempt_id}"

    def poll(self) -> list[BackendEvent]:
        now = time.monotonic()
        events = []
        for attempt_id, (end, spec) in list(self.live.items()):
            if end <= now:
                del self.live[attempt_id]
                record = build_route_record(
                    index=0, route_id=f"RouteScenario_{spec.route_id}_rep0", route_completion=100, events=(),
                    route_length=1000.0, duration_game=100.0, duration_system=25.0,
                )  # fmt: skip
                doc = dumps_results(ResultsFile(ResultFormat.V2X, (record,), (1, 1), sensors=("carla_camera",)))
                events.append(BackendEvent(attempt_id, BackendEventKind.ENDED, outcome=AttemptOutcome.RECORD,
                                           record_json=doc))  # fmt: skip
        return events

    def cancel(self, attempt_id: int, handle: str) -> None:
        self.live.pop(attempt_id, None)

    def adopt(self, attempts: Sequence[Attempt]) -> list[BackendEvent]:
        return []

    def close(self) -> None:
        pass


def submit(store: SqlStateStore, track: Track, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        store.create_submission(
            NewSubmission(
                team=f"team{i % 50}", track=track.name,
                agent=AgentRef(AgentKind.IMAGE, f"registry.local/t{i}/agent:v1", digest=f"d{i}"),
            )
        )  # fmt: skip


def dispatcher_for(store: SqlStateStore, track: Track, backend: HoldingBackend, root: Path, slots: int) -> Dispatcher:
    return Dispatcher(
        store=store, artifacts=FilesystemArtifactStore(root / "artifacts"), backend=backend,
        tracks={track.name: track}, catalog=FileRouteCatalog(), clock=SystemClock(), owner="bench",
        capacity={"default": slots}, publish_interval_s=1.0,
    )  # fmt: skip


def idle_tick_cpu(root: Path, url: str, track: Track, live: int, seconds: float, tick_s: float) -> None:
    store = open_state_store(url)
    submit(store, track, max(1, live // 10 + 1))
    dispatcher = dispatcher_for(store, track, HoldingBackend(None), root, live)
    for _ in range(50):  # plan and launch until every slot holds an attempt
        dispatcher.tick()
        if len(store.live_attempts()) >= live:
            break
    held = len(store.live_attempts())
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    timer.start()
    dispatcher.run(stop, tick_s=tick_s)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    kind = url.split(":", maxsplit=1)[0]
    print(f"(c) idle dispatcher loop: {held} live attempts, tick {tick_s:g} s, {wall:.1f} s, store {kind}")
    print(f"    idle tick CPU: {cpu / wall * 100:.2f} % of a core ({cpu / wall * tick_s * 1000:.2f} ms per tick); "
          "goal <= 2 %")  # fmt: skip
    for submission in store.list_submissions():  # leave the database to the next phase
        cancel_submission(store, submission.id, "benchmark phase over")
    dispatcher.tick()
    dispatcher.tick()
    store.close()


def burst_stall(
    root: Path, url: str, track: Track, slots: int, burst: int, tick_s: float, route_s: tuple[float, float]
) -> None:
    store = open_state_store(url)
    submit(store, track, 4)
    backend = HoldingBackend(route_s)
    dispatcher = dispatcher_for(store, track, backend, root, slots)
    collections: list[float] = []
    original_poll = backend.poll

    def timed_poll() -> list[BackendEvent]:
        collections.append(time.perf_counter())
        return original_poll()

    backend.poll = timed_poll  # type: ignore[method-assign]
    stop = threading.Event()
    loop = threading.Thread(target=dispatcher.run, args=(stop, tick_s))
    loop.start()
    time.sleep(3.0)  # steady state: slots full, attempts ending
    arrived = time.perf_counter()
    submit(store, track, burst, start=100)
    recorded = time.perf_counter() - arrived
    deadline = time.perf_counter() + 300
    while store.list_submissions(statuses=[SubmissionStatus.SUBMITTED], limit=1) and time.perf_counter() < deadline:
        time.sleep(0.1)
    planned = time.perf_counter() - arrived
    time.sleep(1.0)
    stop.set()
    loop.join()
    window = [t for t in collections if t >= arrived]
    gaps = sorted(b - a for a, b in itertools.pairwise(window))
    kind = url.split(":", maxsplit=1)[0]
    print(f"(d) {burst} submissions x {track_routes(track)} routes arrive at once, {slots} slots with attempts "
          f"ending after {route_s[0]:g}-{route_s[1]:g} s, tick {tick_s:g} s, store {kind}")  # fmt: skip
    print(f"    intake recorded them in {recorded:.1f} s; the dispatcher planned them all {planned:.1f} s after "
          "the burst began")  # fmt: skip
    if gaps:
        p99 = gaps[max(0, int(len(gaps) * 0.99) - 1)]
        print(f"    collection stall: longest {gaps[-1] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
              f"median {statistics.median(gaps) * 1000:.0f} ms over {len(gaps)} ticks; goal <= 1000 ms")  # fmt: skip
    store.close()


def track_routes(track: Track) -> int:
    return len(FileRouteCatalog().routes(track))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, default=64)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--tick", type=float, default=0.2)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--route-seconds", default="20,60", help="How long attempts run in (d): low,high.")
    parser.add_argument("--routes", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        routes_file = root / "routes.xml"
        routes_xml(routes_file, args.routes)
        track = Track(
            name="bench", simulator=SimulatorKind.CARLA, scorer=ScorerVersion.LB20, routes_file=str(routes_file),
            smoke_route="0", local=LocalCommands(("sim",), ("eval",)), pool=Pool(slots=args.live),
        )  # fmt: skip
        idle_url = args.database_url or f"sqlite:///{root / 'idle.db'}"
        idle_tick_cpu(root, idle_url, track, args.live, args.idle_seconds, args.tick)
        burst_url = args.database_url or f"sqlite:///{root / 'burst.db'}"
        low, high = (float(x) for x in args.route_seconds.split(","))
        burst_stall(root, burst_url, track, args.live, args.burst, args.tick, (low, high))


if __name__ == "__main__":
    main()
