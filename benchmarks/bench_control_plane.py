"""Control-plane cost: the real dispatcher and SQL store with a no-op backend.

1,000 submissions × 20 routes are queued (the default); attempts end as soon as they are launched, so
the figures are the dispatcher's own cost: time per scheduling decision, store time per tick, and
dispatcher CPU per minute of wall time while the queue drains. Then a steady phase ends one attempt
per tick, as on a real cluster where slots free one at a time, and times those decisions.

Run:  python benchmarks/bench_control_plane.py [--submissions 1000] [--routes 20] [--slots 64]
      [--seconds 60] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lbcloud.adapters.artifacts import FilesystemArtifactStore
from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.route_catalog import FileRouteCatalog
from lbcloud.adapters.store.sql import open_state_store
from lbcloud.domain.results.model import ResultFormat, ResultsFile
from lbcloud.domain.results.scoring import build_route_record
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, AttemptOutcome, NewRouteTask
from lbcloud.domain.tracks import LocalCommands, Pool, ScorerVersion, SimulatorKind, Track
from lbcloud.services.dispatcher import Dispatcher
from lbcloud.services.ports import AttemptSpec, BackendEvent, BackendEventKind, NoMetrics


class NoOpBackend:
    """Ends attempts with a perfect record on the next poll: all of them, or the oldest ``end_per_poll``."""

    name = "noop"

    def __init__(self) -> None:
        self._ended: list[BackendEvent] = []
        self.end_per_poll: int | None = None

    def launch(self, spec: AttemptSpec) -> str:
        record = build_route_record(
            index=0,
            route_id=f"RouteScenario_{spec.route_id}_rep{spec.repetition}",
            route_completion=100,
            events=(),
            route_length=1000.0,
            duration_game=100.0,
            duration_system=25.0,
        )
        doc = dumps_results(ResultsFile(ResultFormat.V2X, (record,), (1, 1), sensors=("carla_camera",)))
        self._ended.append(
            BackendEvent(spec.attempt_id, BackendEventKind.ENDED, outcome=AttemptOutcome.RECORD, record_json=doc)
        )
        return f"noop-{spec.attempt_id}"

    def poll(self) -> list[BackendEvent]:
        cut = len(self._ended) if self.end_per_poll is None else self.end_per_poll
        events, self._ended = self._ended[:cut], self._ended[cut:]
        return events

    def cancel(self, attempt_id: int, handle: str) -> None:
        pass

    def adopt(self, attempts: Sequence[Attempt]) -> list[BackendEvent]:
        return []

    def close(self) -> None:
        pass


class DecisionTimes(NoMetrics):
    def __init__(self) -> None:
        self.decisions: list[float] = []

    def scheduler_decision(self, seconds: float, launched: int) -> None:
        self.decisions.append(seconds)


def routes_xml(path: Path, routes: int) -> None:
    body = "".join(
        f'<route id="{i}" town="T"><waypoints><position x="0" y="0" z="0"/>'
        f'<position x="{6000 + 250 * i}" y="0" z="0"/></waypoints></route>'
        for i in range(routes)
    )
    path.write_text(f"<routes>{body}</routes>")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--routes", type=int, default=20)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--steady-ticks", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        routes_file = root / "routes.xml"
        routes_xml(routes_file, args.routes)
        track = Track(
            name="bench",
            simulator=SimulatorKind.CARLA,
            scorer=ScorerVersion.LB20,
            routes_file=str(routes_file),
            smoke_route="0",
            local=LocalCommands(("sim",), ("eval",)),
            pool=Pool(slots=args.slots),
        )
        url = args.database_url or f"sqlite:///{root / 'state.db'}"
        store = open_state_store(url)
        catalog = FileRouteCatalog()
        routes = catalog.routes(track)
        t0 = time.perf_counter()
        for i in range(args.submissions):
            sub, _ = store.create_submission(
                NewSubmission(
                    team=f"team{i % args.teams}",
                    track=track.name,
                    agent=AgentRef(AgentKind.IMAGE, f"registry.local/t{i}/agent:v1", digest=f"d{i}"),
                )
            )
            store.plan_route_tasks(
                sub.id,
                [
                    NewRouteTask(r.route_id, 0, p, r.length_m, r.length_m / 6 / 0.25, smoke=r.route_id == "0")
                    for p, r in enumerate(routes)
                ],
            )
            store.transition(sub.id, SubmissionStatus.QUEUED)
        setup_s = time.perf_counter() - t0
        metrics = DecisionTimes()
        backend = NoOpBackend()
        dispatcher = Dispatcher(
            store=store,
            artifacts=FilesystemArtifactStore(root / "artifacts"),
            backend=backend,
            tracks={track.name: track},
            catalog=catalog,
            clock=SystemClock(),
            owner="bench",
            capacity={"default": args.slots},
            metrics=metrics,
            publish_interval_s=1.0,  # the default of settings.dispatcher.partial_publish_interval_s
        )
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        ticks: list[float] = []
        launched = 0
        while time.perf_counter() - wall0 < args.seconds:
            t = time.perf_counter()
            report = dispatcher.tick()
            ticks.append(time.perf_counter() - t)
            launched += report.launched
            if dispatcher.idle():
                break
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds() - cpu0
        burst = sorted(metrics.decisions)
        metrics.decisions = []
        backend.end_per_poll = 1
        for _ in range(args.steady_ticks):
            dispatcher.tick()
        steady = sorted(metrics.decisions)
        queued_now = sum(work.pending for work in store.queued_work())
        done = sum(1 for s in store.list_submissions(statuses=[SubmissionStatus.FINISHED], limit=args.submissions))
        total = args.submissions * args.routes
        print(
            f"control plane: {args.submissions} submissions x {args.routes} routes queued ({total} route tasks), "
            f"{args.slots} slots, no-op backend, store {url.split(':')[0]}"
        )
        print(f"  setup (intake + planning): {setup_s:.1f} s")
        print(f"  ran {wall:.1f} s: {launched} attempts launched and collected, {done} submissions finished")
        for label, d in (("all slots free at once", burst), ("one slot frees per tick", steady)):
            if d:
                print(
                    f"  scheduling decision (store read + policy), {label}, {len(d)} decisions: "
                    f"median {statistics.median(d) * 1000:.1f} ms,"
                    f" p95 {d[max(0, int(len(d) * 0.95) - 1)] * 1000:.1f} ms, max {d[-1] * 1000:.1f} ms"
                )
        print(f"  route tasks still queued after the steady phase: {queued_now}")
        print(f"  tick: median {statistics.median(ticks) * 1000:.1f} ms over {len(ticks)} ticks")
        print(
            f"  dispatcher CPU: {cpu / wall * 60:.1f} CPU-s per minute of wall time "
            f"({launched / wall * 60:.0f} attempts handled per minute)"
        )
        store.close()


if __name__ == "__main__":
    main()
