"""One route of a submission in detail: why it scored what it scored.

Built from the trusted side only: the route record (infractions with their positions and the penalty
factor each applies under the track's scorer), the attempts (outcome, blame, reason), the last error
with a traceback excerpt from the failed attempt's agent log, and links to logs and any other
artifact stored for the route (e.g. simulator recordings).
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from lbcloud.domain import artifact_keys
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import LbcloudError, NotFound
from lbcloud.domain.results.model import RouteRecord
from lbcloud.domain.results.scoring import events_from_infractions, infraction_penalty
from lbcloud.domain.submissions import Submission
from lbcloud.domain.tracks import ScorerVersion
from lbcloud.entrypoints.web.views import AttemptOut, RouteOut, attempt_out, parse_record, result_format, route_out
from lbcloud.entrypoints.wiring import System

POSITION = re.compile(r"\(x=(-?[\d.]+), y=(-?[\d.]+), z=(-?[\d.]+)\)")
TRACEBACK_LINES = 25

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
    x: float | None
    y: float | None
    z: float | None
    factor: float


class ArtifactLinkOut(BaseModel):
    name: str
    url: str
    size: int


class RouteDetailOut(BaseModel):
    submission_id: int
    team: str
    track: str
    route: RouteOut
    infractions: list[InfractionOut]
    attempts: list[AttemptOut]
    last_error: str | None
    traceback: str | None
    artifacts: list[ArtifactLinkOut]


def _position(message: str) -> tuple[float | None, float | None, float | None]:
    match = POSITION.search(message)
    if not match:
        return None, None, None
    return float(match.group(1)), float(match.group(2)), float(match.group(3))


def infractions_of(record: RouteRecord, scorer: ScorerVersion) -> list[InfractionOut]:
    """The record's infractions in its own order, with positions and penalty factors."""
    out: list[InfractionOut] = []
    for event in events_from_infractions(record.infractions):
        x, y, z = _position(event.message)
        out.append(
            InfractionOut(
                kind=event.kind,
                name=INFRACTION_NAMES.get(event.kind, event.kind),
                message=event.message,
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
    prefix = f"{artifact_keys.submission_prefix(submission.id)}routes/{instance_id}"
    record_key = artifact_keys.route_record_key(submission.id, task.route_id, task.repetition)
    artifacts = [
        ArtifactLinkOut(
            name=ref.key.rsplit("/", 1)[-1],
            url=f"/api/v1/submissions/{submission.id}/artifacts/{ref.key.removeprefix(artifact_keys.submission_prefix(submission.id))}",
            size=ref.size,
        )
        for ref in store.artifacts(submission.id)
        if ref.key.startswith(prefix) and ref.key != record_key
    ]
    return RouteDetailOut(
        submission_id=submission.id,
        team=submission.team,
        track=submission.track,
        route=route_out(task, attempts, fmt, now),
        infractions=infractions_of(record, scorer) if record else [],
        attempts=[attempt_out(a, task, now) for a in attempts],
        last_error=last_error,
        traceback=traceback,
        artifacts=artifacts,
    )
