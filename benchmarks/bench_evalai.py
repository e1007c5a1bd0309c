"""EvalAI request budget: how many EvalAI requests one 20-route submission costs, and the peak rate.

A participant submits through the EvalAI stand-in (a real HTTP server on 127.0.0.1); lbcloud's real
EvalAI source, cancellation watcher and sink (with a SQLite state store and the intake service)
handle it while route records arrive every ``--route-interval`` seconds of simulated time. Time is a
fake clock, so an hour-long evaluation takes a second. Reported: requests attributed to the
submission by endpoint, shared requests (queue polls E4, cancellation polls E10) during the run,
and the busiest 60 s window (EvalAI allows 60 per minute per account).

Run:  python benchmarks/bench_evalai.py [--routes 20] [--route-interval 10 60 300] [--partial-interval 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.adapters.evalai.standin import EvalAIStandIn, submit_as_participant

from lbcloud.adapters.agents import AgentChecker
from lbcloud.adapters.evalai.cancellations import CancellationWatcher
from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.models import EvalAIConfig
from lbcloud.adapters.evalai.sink import EvalAISink, FinalOutbox
from lbcloud.adapters.evalai.source import (
    EvalAISource,
    MessageHandler,
    ParkedMessages,
    SubmissionDates,
)
from lbcloud.adapters.store import open_state_store
from lbcloud.domain.results.model import EVALAI_KEYS_2X
from lbcloud.domain.submissions import Submission, SubmissionStatus
from lbcloud.services.intake import Intake
from lbcloud.services.ports import Publication
from lbcloud.settings import Settings

IMAGE = "registry.local/team-alpha/agent:v1"


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime(2026, 11, 28, tzinfo=UTC) + timedelta(seconds=self.t)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


def publication(sub: Submission, records: int, total: int, final: bool) -> Publication:
    accuracies = dict.fromkeys(EVALAI_KEYS_2X, 0)
    accuracies["Driving score"] = 3.0 * records
    result = json.dumps([{"split": "leaderboard", "show_to_participant": True, "accuracies": accuracies}])
    return Publication(
        submission=sub,
        merged_document=json.dumps({"_checkpoint": {"progress": [records, total]}}),
        final=final,
        records=records,
        total=total,
        participant_stdout=f"Completed {records} out of the {total} routes\n",
        evalai_result=result,
        manifest="{}",
    )


def run(routes: int, route_interval: float, partial_interval: float) -> dict[str, object]:
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp, EvalAIStandIn(clock=clock.monotonic) as standin:
        tracks = Settings().track_map()
        store = open_state_store(f"sqlite:///{tmp}/lbcloud.db")
        store.sync_tracks(list(tracks.values()))
        config = EvalAIConfig(
            base_url=standin.base_url,
            token=standin.host_jwt,
            challenge_id=standin.challenge_id,
            queue_name=standin.queue_name,
            phase_tracks={1: "sumo-dev"},
            partial_interval_s=partial_interval,
        )
        client = EvalAIClient(config, clock=clock)
        dates = SubmissionDates()
        sink = EvalAISink(client, store, config, clock, outbox=FinalOutbox(Path(tmp) / "outbox"))
        handler = MessageHandler(
            client,
            Intake(store, tracks, AgentChecker(["registry.local"])),
            store,
            config,
            clock=clock,
            parked=ParkedMessages(None, clock),
            rejections=sink,
            dates=dates,
        )
        source = EvalAISource(client, handler, config, clock)
        watcher = CancellationWatcher(client, store, config, clock, dates=dates)

        pk = submit_as_participant(standin, standin.add_participant("alpha"), IMAGE)
        sub: Submission | None = None
        records = 0
        next_route = 0.0
        started_at = finished_at = 0.0
        while True:
            source.poll_once()
            watcher.poll_once()
            sink.flush()
            if sub is None:
                sub = store.find_submission("evalai", str(pk))
                if sub is not None:
                    store.transition(sub.id, SubmissionStatus.QUEUED)
                    sub = store.transition(sub.id, SubmissionStatus.RUNNING)
                    sink.started(sub)
                    started_at = clock.t
                    next_route = clock.t + route_interval
            elif records < routes and clock.t >= next_route:
                records += 1
                next_route += route_interval
                if records < routes:
                    if sub.status is SubmissionStatus.RUNNING:
                        sub = store.transition(sub.id, SubmissionStatus.PARTIALLY_EVALUATED)
                    sink.publish(publication(sub, records, routes, final=False))
                else:
                    sub = store.transition(sub.id, SubmissionStatus.FINISHED)
                    final = publication(sub, records, routes, final=True)
                    sink.publish(final)
                    sink.ended(sub, final)
                    finished_at = clock.t
            if records == routes and not sink.pending_finals():
                break
            clock.t += 1.0
        assert standin.unknown_requests == [], standin.unknown_requests
        assert standin.submissions[pk].status == "finished"
        during = [r for r in standin.requests if started_at - 60 <= r.at <= finished_at]
        own = Counter(r.endpoint for r in standin.requests if r.submission == pk)
        shared = Counter(r.endpoint for r in during if r.submission is None)
        times = sorted(r.at for r in standin.requests)
        peak = max(sum(1 for t in times if start <= t < start + 60) for start in times)
        store.close()
        client.close()
        return {
            "own": own,
            "shared": shared,
            "minutes": (finished_at - started_at) / 60,
            "peak": peak,
            "input_file": own.get("input_file", 0),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=20)
    parser.add_argument("--route-interval", type=float, nargs="+", default=[10.0, 60.0, 300.0])
    parser.add_argument("--partial-interval", type=float, default=60.0)
    args = parser.parse_args(argv)
    print(f"EvalAI requests for one {args.routes}-route submission (partial interval {args.partial_interval:g} s)")
    header = ("route every", "run (min)", "submission", "of which", "queue+cancel", "peak/60s")
    print(f"{header[0]:>12} {header[1]:>10} {header[2]:>11} {header[3]:>40} {header[4]:>13} {header[5]:>9}")
    for interval in args.route_interval:
        figures = run(args.routes, interval, args.partial_interval)
        own: Counter[str] = figures["own"]  # type: ignore[assignment]
        shared: Counter[str] = figures["shared"]  # type: ignore[assignment]
        detail = " ".join(f"{k}={v}" for k, v in sorted(own.items()))
        print(
            f"{interval:>10g} s {figures['minutes']:>10.1f} {sum(own.values()):>11} {detail:>40} "
            f"{sum(shared.values()):>13} {figures['peak']:>9}"
        )
    print(
        "submission: requests naming the submission's pk (media = its input file, not an API call); "
        "queue+cancel: E4 receives, the E5 ack and E10 cancellation polls while it ran, shared by all submissions"
    )


if __name__ == "__main__":
    main()
