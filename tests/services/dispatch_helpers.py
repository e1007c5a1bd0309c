"""Shared pieces of the dispatcher tests: a scripted backend, route records and a small route file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lbcloud.domain.blame import Blame
from lbcloud.domain.results.model import ResultFormat, ResultsFile
from lbcloud.domain.results.scoring import InfractionEvent, build_route_record
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.tasks import Attempt, AttemptOutcome
from lbcloud.domain.tracks import LocalCommands, Pool, ScorerVersion, SimulatorKind, Track
from lbcloud.services.ports import AttemptSpec, BackendEvent, BackendEventKind

ROUTES_XML = """<?xml version="1.0"?>
<routes>
  <route id="0" town="T"><waypoints><position x="0" y="0" z="0"/><position x="100" y="0" z="0"/></waypoints></route>
  <route id="1" town="T"><waypoints><position x="0" y="0" z="0"/><position x="900" y="0" z="0"/></waypoints></route>
  <route id="2" town="T"><waypoints><position x="0" y="0" z="0"/><position x="500" y="0" z="0"/></waypoints></route>
</routes>
"""


def make_track(tmp: Path, *, name: str = "t3", smoke: str | None = "0", slots: int = 2, **kw: object) -> Track:
    routes = tmp / f"{name}.xml"
    routes.write_text(ROUTES_XML)
    return Track(
        name=name,
        simulator=SimulatorKind.SUMO,
        scorer=ScorerVersion.LB20,
        routes_file=str(routes),
        smoke_route=smoke,
        local=LocalCommands(("sim",), ("eval",)),
        pool=Pool(slots=slots),
        **kw,  # type: ignore[arg-type]
    )


def record_doc(route: str, repetition: int = 0, *, rc: float | int = 100, failure: str | None = None,
               collisions: int = 0) -> str:  # fmt: skip
    """A one-record checkpoint document as an evaluator writes it."""
    events = [
        InfractionEvent(
            "collisions_vehicle",
            f"Agent collided against object with type=vehicle.car and id={i} at (x=1.0, y=2.0, z=0.0)",
        )
        for i in range(collisions)
    ]
    record = build_route_record(
        index=0,
        route_id=f"RouteScenario_{route}_rep{repetition}",
        route_completion=rc,
        events=events,
        route_length=100.0,
        duration_game=20.0,
        duration_system=2.0,
        failure=failure,
    )
    doc = ResultsFile(format=ResultFormat.V2X, records=(record,), progress=(1, 1), sensors=("carla_speedometer",))
    return dumps_results(doc)


@dataclass
class ScriptedBackend:
    """An AttemptBackend whose attempts end when the test says so (the dispatcher's logic under test)."""

    name: str = "scripted"
    launched: list[AttemptSpec] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    pending_events: list[BackendEvent] = field(default_factory=list)
    live: dict[int, AttemptSpec] = field(default_factory=dict)
    adopted: list[int] = field(default_factory=list)

    def launch(self, spec: AttemptSpec) -> str:
        self.launched.append(spec)
        self.live[spec.attempt_id] = spec
        self.pending_events.append(BackendEvent(spec.attempt_id, BackendEventKind.RUNNING))
        return f"handle-{spec.attempt_id}"

    def poll(self) -> list[BackendEvent]:
        events, self.pending_events = self.pending_events, []
        return events

    def cancel(self, attempt_id: int, handle: str) -> None:
        self.cancelled.append(attempt_id)
        if attempt_id in self.live:
            del self.live[attempt_id]
            self.pending_events.append(
                BackendEvent(attempt_id, BackendEventKind.ENDED, outcome=AttemptOutcome.CANCELLED, reason="cancelled")
            )

    def adopt(self, attempts: Sequence[Attempt]) -> list[BackendEvent]:
        self.adopted.extend(a.id for a in attempts)
        return []

    def close(self) -> None:
        pass

    # test controls -------------------------------------------------------------------------
    def finish(self, spec: AttemptSpec, **kw: object) -> None:
        """End ``spec``'s attempt with a record (default: a perfect route)."""
        doc = record_doc(spec.route_id, spec.repetition, **kw)  # type: ignore[arg-type]
        del self.live[spec.attempt_id]
        self.pending_events.append(
            BackendEvent(spec.attempt_id, BackendEventKind.ENDED, outcome=AttemptOutcome.RECORD, record_json=doc)
        )

    def fail(self, spec: AttemptSpec, blame: Blame, reason: str, *, preempted: bool = False) -> None:
        del self.live[spec.attempt_id]
        self.pending_events.append(
            BackendEvent(
                spec.attempt_id,
                BackendEventKind.ENDED,
                outcome=AttemptOutcome.FAILED,
                blame=blame,
                reason=reason,
                preempted=preempted,
            )
        )

    def running(self) -> list[AttemptSpec]:
        return list(self.live.values())
