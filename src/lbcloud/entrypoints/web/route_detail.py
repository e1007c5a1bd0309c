"""One route of a submission in detail: why it scored what it scored.

Built from the trusted side only: the route record (infractions with their positions and the penalty
factor each applies under the track's scorer), the attempts (outcome, blame, reason), the last error
with a traceback excerpt from the failed attempt's agent log, and links to logs and any other
artifact stored for the route (e.g. simulator recordings).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import BaseModel, Field

from lbcloud.domain import artifact_keys
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import LbcloudError, NotFound
from lbcloud.domain.results.model import RouteRecord
from lbcloud.domain.results.scoring import events_from_infractions, infraction_penalty
from lbcloud.domain.submissions import Submission
from lbcloud.domain.tasks import AttemptOutcome
from lbcloud.domain.tracks import ScorerVersion
from lbcloud.entrypoints.web.views import AttemptOut, RouteOut, attempt_out, parse_record, result_format, route_out
from lbcloud.entrypoints.wiring import System

POSITION = re.compile(r"\(x=(-?[\d.]+), y=(-?[\d.]+), z=(-?[\d.]+)\)")
TRACEBACK_LINES = 25
MAX_POINTS = 20_000

INFRACTION_NAMES: dict[str, str] = {
    "collisions_pedestrian": "Collision with a pedestrian",
    "collisions_vehicle": "Collision with a vehicle",
    "collisions_layout": "Collision with the layout",
    "red_light": "Red light",
    "stop_infraction": "Stop sign",
    "outside_route_lanes": "Off-road",
    "min_speed_infractions": "Min speed",
    "yield_emergency_vehicle_infractions": "Did not yield to an emergency vehicle",
    "scenario_timeouts": "Scenario timeout",
    "route_dev": "Route deviation",
    "vehicle_blocked": "Agent blocked",
    "route_timeout": "Route timeout",
}


class InfractionOut(BaseModel):
    """One infraction of the route record. ``factor`` is what it multiplies the infraction penalty
    by on its own under the track's scorer (1.0: it ends the route or costs nothing by itself)."""

    kind: str
    name: str
    message: str
    time_s: float | None = Field(description="Simulation seconds from the route's start (when recorded)")
    x: float | None
    y: float | None
    z: float | None
    factor: float


class ArtifactLinkOut(BaseModel):
    name: str
    url: str
    size: int


class CompletionPoint(BaseModel):
    time_s: float
    completion: float


class RouteDetailOut(BaseModel):
    """``completion`` is route completion (%) over simulation time, when the evaluator recorded it."""

    submission_id: int
    team: str
    track: str
    route: RouteOut
    infractions: list[InfractionOut]
    attempts: list[AttemptOut]
    last_error: str | None
    traceback: str | None
    artifacts: list[ArtifactLinkOut]
    completion: list[CompletionPoint]


def _position(message: str) -> tuple[float | None, float | None, float | None]:
    match = POSITION.search(message)
    if not match:
        return None, None, None
    return float(match.group(1)), float(match.group(2)), float(match.group(3))


def read_timeline(data: bytes, route_id: str) -> tuple[list[CompletionPoint], list[tuple[str, str, float]]]:
    """The completion samples and ``(kind, message, time)`` events of ``route_id`` in an evaluator's
    timeline file; anything malformed is ignored (the record stays the authority)."""
    try:
        document = json.loads(data)
        route = document.get(route_id) if isinstance(document, dict) else None
        if route is None and isinstance(document, dict) and len(document) == 1:
            route = next(iter(document.values()))  # one route per attempt: its repetition may differ
        if not isinstance(route, dict):
            return [], []
        points = [
            CompletionPoint(time_s=float(t), completion=float(rc))
            for t, rc in route.get("samples", [])[:MAX_POINTS]
            if isinstance(t, int | float) and isinstance(rc, int | float)
        ]
        events = [
            (str(e["kind"]), str(e["message"]), float(e["t"]))
            for e in route.get("events", [])
            if isinstance(e, dict) and isinstance(e.get("t"), int | float)
        ]
    except (ValueError, TypeError, KeyError, AttributeError):
        return [], []
    return points, events


def infractions_of(
    record: RouteRecord, scorer: ScorerVersion, times: list[tuple[str, str, float]] | None = None
) -> list[InfractionOut]:
    """The record's infractions in its own order, with positions, penalty factors and, from the
    timeline, the simulation time of each (matched by kind and message, in order)."""
    out: list[InfractionOut] = []
    pending = list(times or [])
    for event in events_from_infractions(record.infractions):
        x, y, z = _position(event.message)
        at = next((i for i, (k, m, _) in enumerate(pending) if k == event.kind and m == event.message), None)
        time_s = pending.pop(at)[2] if at is not None else None
        out.append(
            InfractionOut(
                kind=event.kind,
                name=INFRACTION_NAMES.get(event.kind, event.kind),
                message=event.message,
                time_s=time_s,
                x=x,
                y=y,
                z=z,
                factor=round(infraction_penalty([event], scorer), 4),
            )
        )
    return out


def traceback_excerpt(log: str, lines: int = TRACEBACK_LINES) -> str | None:
    """The last Python traceback in ``log`` (its last ``lines`` lines), or None."""
    start = log.rfind("Traceback (most recent call last):")
    if start < 0:
        return None
    block = log[start:].splitlines()
    end = len(block)
    for i, line in enumerate(block[1:], start=1):
        # the traceback ends at its exception line: the first unindented line after the frames
        if line and not line.startswith((" ", "\t")):
            end = i + 1
            break
    kept = block[:end]
    if len(kept) > lines:
        tail = kept[-(lines - 2) :]
        kept = [kept[0], f"  ... {len(kept) - 1 - len(tail)} lines ...", *tail]
    return "\n".join(kept)


def build_route_detail(system: System, submission: Submission, instance_id: str) -> RouteDetailOut:
    """The detail of route ``instance_id`` (``RouteScenario_<route>_rep<r>``) of ``submission``."""
    store = system.store
    task = next((t for t in store.route_tasks(submission.id) if t.instance_id == instance_id), None)
    if task is None:
        raise NotFound(f"submission {submission.id} has no route {instance_id!r}")
    now = system.clock.now()
    track = system.tracks.get(submission.track)
    fmt = result_format(track)
    attempts = sorted(
        (a for a in store.attempts(submission_id=submission.id) if a.task_id == task.id), key=lambda a: a.number
    )
    record = parse_record(task, fmt)
    scorer = track.scorer if track else ScorerVersion.LB20
    failed = [a for a in attempts if a.blame is not Blame.NONE]
    last_error = failed[-1].reason if failed else (task.reason if task.blame is not Blame.NONE else None)
    traceback = None
    if failed:
        key = artifact_keys.attempt_log_key(submission.id, failed[-1].id, artifact_keys.LogStream.AGENT)
        try:
            text = system.artifacts.get(key)[-256_000:].decode("utf-8", "replace")
        except LbcloudError:
            text = ""
        traceback = traceback_excerpt(text)
    artifacts = route_artifacts(system, submission.id, instance_id, [a.id for a in attempts])
    completion: list[CompletionPoint] = []
    times: list[tuple[str, str, float]] = []
    recorded = [a for a in attempts if a.outcome is AttemptOutcome.RECORD]
    if recorded:
        key = artifact_keys.attempt_timeline_key(submission.id, recorded[-1].id)
        try:
            completion, times = read_timeline(system.artifacts.get(key), instance_id)
        except LbcloudError:
            pass
    return RouteDetailOut(
        submission_id=submission.id,
        team=submission.team,
        track=submission.track,
        route=route_out(task, attempts, fmt, now),
        infractions=infractions_of(record, scorer, times) if record else [],
        attempts=[attempt_out(a, task, now) for a in attempts],
        last_error=last_error,
        traceback=traceback,
        artifacts=artifacts,
        completion=completion,
    )


def route_artifacts(
    system: System, submission_id: int, instance_id: str, attempt_ids: list[int]
) -> list[ArtifactLinkOut]:
    """Files stored for the route (``routes/<instance>/...``) or its attempts, other than logs,
    records and timelines (e.g. simulator recordings)."""
    root = artifact_keys.submission_prefix(submission_id)
    prefixes = [f"{root}routes/{instance_id}/", *(f"{root}attempts/{a}/" for a in attempt_ids)]
    out: list[ArtifactLinkOut] = []
    for prefix in prefixes:
        try:
            blobs = system.artifacts.list(prefix)
        except LbcloudError:
            continue
        for blob in blobs:
            name = blob.key.removeprefix(root)
            if name.endswith((".log", "timeline.json")):
                continue
            out.append(
                ArtifactLinkOut(
                    name=name.rsplit("/", 1)[-1],
                    url=f"/api/v1/submissions/{submission_id}/artifacts/{name}",
                    size=blob.size,
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class CompletionChart:
    """An SVG polyline of route completion over simulation time, with a mark per timed infraction."""

    width: int
    height: int
    points: str
    end_s: float
    marks: list[tuple[float, str]]


def completion_chart(detail: RouteDetailOut, width: int = 640, height: int = 160) -> CompletionChart | None:
    if len(detail.completion) < 2:
        return None
    end = max(p.time_s for p in detail.completion) or 1.0

    def x(t: float) -> float:
        return round(40 + (width - 50) * t / end, 1)

    def y(rc: float) -> float:
        return round(10 + (height - 30) * (1 - min(max(rc, 0.0), 100.0) / 100), 1)

    points = " ".join(f"{x(p.time_s)},{y(p.completion)}" for p in detail.completion)
    marks = [(x(i.time_s), i.name) for i in detail.infractions if i.time_s is not None]
    return CompletionChart(width, height, points, round(end, 1), marks)
