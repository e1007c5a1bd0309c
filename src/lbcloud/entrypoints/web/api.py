"""The JSON API under ``/api/v1`` (OpenAPI at ``/api/openapi.json``, docs at ``/api/docs``).

Tracks and leaderboards are public; submissions, route records, attempts, logs and events need a team
token (own team only) or the operator token; resume and the overview are operator-only. Manifests of
finished submissions are public (the leaderboard links to them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from lbcloud.domain import artifact_keys
from lbcloud.domain.errors import Conflict, InputError, NotFound
from lbcloud.domain.submissions import (
    FIELD_LIMITS,
    AgentKind,
    AgentRef,
    NewSubmission,
    SourceKind,
    SubmissionStatus,
)
from lbcloud.domain.tasks import AttemptStatus
from lbcloud.entrypoints.web.deps import (
    PrincipalDep,
    SystemDep,
    require_operator,
    require_signed_in,
    visible_submission,
)
from lbcloud.entrypoints.web.errors import Forbidden
from lbcloud.entrypoints.web.leaderboard import CHOICE_EVENT, Leaderboard, build_leaderboard
from lbcloud.entrypoints.web.operator import OperatorOverview, build_overview
from lbcloud.entrypoints.web.route_detail import RouteDetailOut, build_route_detail
from lbcloud.entrypoints.web.sse import SSE_HEADERS, LiveHub, LogChunk, follow_log, read_log_chunk
from lbcloud.entrypoints.web.views import (
    AttemptOut,
    EventOut,
    ProgressOut,
    RouteOut,
    SubmissionOut,
    TrackOut,
    attempt_out,
    build_progress,
    event_out,
    submission_with_state,
    track_out,
)
from lbcloud.entrypoints.wiring import System
from lbcloud.services.control import cancel_submission, resume_submission

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1")

LogStreamName = Literal["simulator", "agent", "lbcloud"]


class ErrorOut(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (400, "Invalid input"),
        (401, "No valid token"),
        (403, "Not allowed for this token"),
        (404, "Not found"),
        (409, "Conflicts with the current state"),
        (503, "A service lbcloud depends on is unavailable"),
    )
}


# ------------------------------------------------------------------------------------------- tracks


@router.get("/tracks", response_model=list[TrackOut], tags=["tracks"], summary="Tracks this server evaluates on")
def list_tracks(system: SystemDep) -> list[TrackOut]:
    return [track_out(t) for t in system.tracks.values()]


def _track(system: System, name: str) -> TrackOut:
    track = system.tracks.get(name)
    if track is None:
        raise NotFound(f"no track {name!r} (tracks: {', '.join(sorted(system.tracks)) or 'none'})")
    return track_out(track)


@router.get("/tracks/{track}", response_model=TrackOut, tags=["tracks"], responses=ERRORS)
def get_track(track: str, system: SystemDep) -> TrackOut:
    return _track(system, track)


@router.get(
    "/tracks/{track}/leaderboard",
    response_model=Leaderboard,
    tags=["leaderboard"],
    responses=ERRORS,
    summary="One row per team (its best finished submission), best driving score first; ties share a rank (public)",
)
def get_leaderboard(track: str, system: SystemDep) -> Leaderboard:
    _track(system, track)
    return build_leaderboard(system.store, track, system.settings.web.team_profiles, system.settings.web.baseline_teams)


class WhoAmIOut(BaseModel):
    label: str = Field(description="operator, a team name, or anonymous")
    team: str | None
    operator: bool


@router.get("/whoami", response_model=WhoAmIOut, tags=["tracks"], responses=ERRORS)
def whoami(principal: PrincipalDep) -> WhoAmIOut:
    """Who the token stands for (``lbcloud login`` checks it with this)."""
    return WhoAmIOut(
        label=principal.label if principal.signed_in else "anonymous",
        team=principal.team,
        operator=principal.is_operator,
    )


# -------------------------------------------------------------------------------------- submissions


class SubmissionIn(BaseModel):
    """A new submission. Teams submit images for their own team; local agents are operator-only."""

    track: str = Field(max_length=63)
    agent: str = Field(
        max_length=FIELD_LIMITS["agent"],
        description="Image reference (kind=image) or a path on the server (kind=local)",
    )
    kind: AgentKind = AgentKind.IMAGE
    team: str | None = Field(
        default=None, max_length=63, description="Defaults to the token's team; required for the operator"
    )
    agent_config: str | None = Field(default=None, max_length=FIELD_LIMITS["agent_config"])
    method_name: str | None = Field(default=None, max_length=FIELD_LIMITS["method_name"])
    external_id: str | None = Field(
        default=None, max_length=FIELD_LIMITS["external_id"], description="Makes the request idempotent"
    )


@router.post("/submissions", response_model=SubmissionOut, status_code=201, tags=["submissions"], responses=ERRORS)
def create_submission(
    body: SubmissionIn, response: Response, system: SystemDep, principal: PrincipalDep
) -> SubmissionOut:
    require_signed_in(principal)
    team = body.team
    if not principal.is_operator:
        if team is not None and team != principal.team:
            raise Forbidden(f"a {principal.team} token cannot submit for team {team!r}")
        if body.kind is AgentKind.LOCAL:
            raise Forbidden("only the operator may submit a local agent; teams submit an image")
        team = principal.team
    if not team:
        raise InputError("give the team the submission belongs to ('team')")
    submission, created = system.intake.submit(
        NewSubmission(
            team=team,
            track=body.track,
            agent=AgentRef(kind=body.kind, ref=body.agent, config=body.agent_config),
            source=SourceKind.LOCAL,
            external_id=body.external_id,
            method_name=body.method_name,
        )
    )
    if not created:
        response.status_code = 200
    log.info("submission created via API", extra={"submission": submission.id, "team": team})
    return submission_with_state(system.store, submission)


@router.get("/submissions", response_model=list[SubmissionOut], tags=["submissions"], responses=ERRORS)
def list_submissions(
    *,
    system: SystemDep,
    principal: PrincipalDep,
    track: str | None = None,
    status: Annotated[list[SubmissionStatus] | None, Query()] = None,
    team: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 200,
) -> list[SubmissionOut]:
    """Newest first. A team token lists only its own team's submissions."""
    require_signed_in(principal)
    if not principal.is_operator:
        if team is not None and team != principal.team:
            raise Forbidden(f"a {principal.team} token cannot list team {team!r}")
        team = principal.team
    rows = system.store.list_submissions(track=track, team=team, statuses=status, limit=limit)
    return [submission_with_state(system.store, s) for s in rows]


@router.get("/submissions/{submission_id}", response_model=ProgressOut, tags=["submissions"], responses=ERRORS)
def get_submission(submission_id: int, system: SystemDep, principal: PrincipalDep) -> ProgressOut:
    """The submission with its live progress: per-route rows, attempts, queue position and ETA."""
    submission = visible_submission(system, principal, submission_id)
    return build_progress(system, submission)


class ControlIn(BaseModel):
    reason: str | None = None


@router.post(
    "/submissions/{submission_id}/cancel", response_model=SubmissionOut, tags=["submissions"], responses=ERRORS
)
def cancel(
    submission_id: int, system: SystemDep, principal: PrincipalDep, body: ControlIn | None = None
) -> SubmissionOut:
    """Cancel (idempotent); the operator or the submission's own team. Done route records are kept."""
    visible_submission(system, principal, submission_id)
    reason = (body.reason if body else None) or f"cancelled by {principal.label}"
    return submission_with_state(system.store, cancel_submission(system.store, submission_id, reason))


@router.post(
    "/submissions/{submission_id}/resume", response_model=SubmissionOut, tags=["submissions"], responses=ERRORS
)
def resume(
    submission_id: int, system: SystemDep, principal: PrincipalDep, body: ControlIn | None = None
) -> SubmissionOut:
    """Resume a failed or cancelled submission (operator only): missing route tasks run again."""
    require_operator(principal)
    reason = (body.reason if body else None) or "resumed by the operator"
    return submission_with_state(system.store, resume_submission(system.store, submission_id, reason))


class LeaderboardChoiceIn(BaseModel):
    choice: Literal["chosen", "hidden", "automatic"] = Field(
        description="chosen: this finished submission is the team's row; hidden: the team has no row; "
        "automatic: the team's best finished submission"
    )


@router.post(
    "/submissions/{submission_id}/leaderboard", response_model=SubmissionOut, tags=["leaderboard"], responses=ERRORS
)
def leaderboard_choice(
    submission_id: int, body: LeaderboardChoiceIn, system: SystemDep, principal: PrincipalDep
) -> SubmissionOut:
    """Choose how the submission's team appears on its track's leaderboard (the team or the operator)."""
    submission = visible_submission(system, principal, submission_id)
    if submission.status is not SubmissionStatus.FINISHED:
        raise Conflict(f"submission {submission_id} is {submission.status.value}: only a finished one can be chosen")
    system.store.add_event(submission_id, CHOICE_EVENT, body.choice)
    log.info("leaderboard choice %s", body.choice, extra={"submission": submission_id, "team": submission.team})
    return submission_with_state(system.store, submission)


class StatusChangeOut(BaseModel):
    from_status: str | None
    to_status: str
    reason: str | None
    at: str


@router.get(
    "/submissions/{submission_id}/history", response_model=list[StatusChangeOut], tags=["submissions"],
    responses=ERRORS,
)  # fmt: skip
def history(submission_id: int, system: SystemDep, principal: PrincipalDep) -> list[StatusChangeOut]:
    visible_submission(system, principal, submission_id)
    return [
        StatusChangeOut(
            from_status=c.from_status.value if c.from_status else None,
            to_status=c.to_status.value, reason=c.reason, at=c.at.isoformat(),
        )
        for c in system.store.history(submission_id)
    ]  # fmt: skip


@router.get(
    "/submissions/{submission_id}/events", response_model=list[EventOut], tags=["submissions"], responses=ERRORS
)
def events(
    submission_id: int,
    system: SystemDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[EventOut]:
    visible_submission(system, principal, submission_id)
    return [event_out(e) for e in system.store.events(submission_id=submission_id, after_id=after, limit=limit)]


@router.get(
    "/submissions/{submission_id}/live",
    tags=["submissions"],
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
    response_class=StreamingResponse,
)
async def live(submission_id: int, request: Request, system: SystemDep, principal: PrincipalDep) -> StreamingResponse:
    """Server-sent events: ``progress`` (snapshot JSON, as ``GET /submissions/{id}`` plus rendered page
    fragments), ``event`` (one store event), ``end`` (terminal status)."""
    hub: LiveHub = request.app.state.live_hub
    team = hub.cached_team(submission_id)
    if team is None or not (principal.is_operator or principal.team == team):
        submission = await anyio.to_thread.run_sync(visible_submission, system, principal, submission_id)
        hub.remember_team(submission_id, submission.team)
    return StreamingResponse(hub.stream(submission_id), media_type="text/event-stream", headers=SSE_HEADERS)


# ----------------------------------------------------------------------------- routes and attempts


@router.get("/submissions/{submission_id}/routes", response_model=list[RouteOut], tags=["routes"], responses=ERRORS)
def routes(submission_id: int, system: SystemDep, principal: PrincipalDep) -> list[RouteOut]:
    submission = visible_submission(system, principal, submission_id)
    return build_progress(system, submission).routes


@router.get(
    "/submissions/{submission_id}/routes/{instance_id}",
    response_model=RouteDetailOut,
    tags=["routes"],
    responses=ERRORS,
)
def route_detail(submission_id: int, instance_id: str, system: SystemDep, principal: PrincipalDep) -> RouteDetailOut:
    """One route in detail: status, blame and reason, each infraction with its position and penalty
    factor, the attempts, the last error with a traceback excerpt, and links to logs and artifacts."""
    submission = visible_submission(system, principal, submission_id)
    return build_route_detail(system, submission, instance_id)


@router.get(
    "/submissions/{submission_id}/artifacts/{name:path}",
    tags=["routes"],
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}, "description": "The artifact"}},
)
def artifact(submission_id: int, name: str, system: SystemDep, principal: PrincipalDep) -> Response:
    """An artifact stored for the submission (e.g. a route's simulator recording), by its name under
    the submission's folder as listed on the route detail."""
    visible_submission(system, principal, submission_id)
    key = f"{artifact_keys.submission_prefix(submission_id)}{name}"
    if ".." in name.split("/") or name.startswith("/") or not system.artifacts.exists(key):
        raise NotFound(f"submission {submission_id} has no artifact {name!r}")
    return Response(system.artifacts.get(key), media_type="application/octet-stream")


@router.get(
    "/submissions/{submission_id}/routes/{instance_id}/record",
    tags=["routes"],
    responses={**ERRORS, 200: {"content": {"application/json": {}}, "description": "The route record"}},
)
def route_record(submission_id: int, instance_id: str, system: SystemDep, principal: PrincipalDep) -> Response:
    """The route record exactly as the evaluator wrote it (``RouteScenario_<route>_rep<r>``)."""
    visible_submission(system, principal, submission_id)
    for task in system.store.route_tasks(submission_id):
        if task.instance_id == instance_id:
            key = artifact_keys.route_record_key(submission_id, task.route_id, task.repetition)
            if system.artifacts.exists(key):
                return Response(system.artifacts.get(key), media_type="application/json")
            if task.record_json:
                return Response(task.record_json, media_type="application/json")
            raise NotFound(f"route {instance_id} of submission {submission_id} has no record yet")
    raise NotFound(f"submission {submission_id} has no route {instance_id!r}")


@router.get(
    "/submissions/{submission_id}/attempts/{attempt_id}/recording",
    tags=["attempts"],
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
)
def attempt_recording(submission_id: int, attempt_id: int, system: SystemDep, principal: PrincipalDep) -> Response:
    """The simulator's recording of the attempt's route (CARLA ``--record``), to replay it in CARLA."""
    visible_submission(system, principal, submission_id)
    _attempt(system, submission_id, attempt_id)
    key = artifact_keys.attempt_recording_key(submission_id, attempt_id)
    if not system.artifacts.exists(key):
        raise NotFound(f"attempt {attempt_id} of submission {submission_id} has no recording")
    filename = f"submission-{submission_id}-attempt-{attempt_id}.log"
    return Response(
        system.artifacts.get(key),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/submissions/{submission_id}/attempts", response_model=list[AttemptOut], tags=["attempts"], responses=ERRORS
)
def attempts(submission_id: int, system: SystemDep, principal: PrincipalDep) -> list[AttemptOut]:
    submission = visible_submission(system, principal, submission_id)
    return build_progress(system, submission).attempts


def _attempt(system: System, submission_id: int, attempt_id: int) -> AttemptOut:
    attempt = system.store.get_attempt(attempt_id)
    if attempt.submission_id != submission_id:
        raise NotFound(f"submission {submission_id} has no attempt {attempt_id}")
    task = next((t for t in system.store.route_tasks(submission_id) if t.id == attempt.task_id), None)
    return attempt_out(attempt, task, system.clock.now())


@router.get(
    "/submissions/{submission_id}/attempts/{attempt_id}",
    response_model=AttemptOut,
    tags=["attempts"],
    responses=ERRORS,
)
def get_attempt(submission_id: int, attempt_id: int, system: SystemDep, principal: PrincipalDep) -> AttemptOut:
    visible_submission(system, principal, submission_id)
    return _attempt(system, submission_id, attempt_id)


class LogChunkOut(BaseModel):
    offset: int
    next_offset: int
    text: str
    complete: bool = Field(description="The attempt ended and everything was returned")
    size: int


def _log_reader(
    system: System, submission_id: int, attempt_id: int, stream: str
) -> tuple[str, Callable[[int], LogChunk]]:
    key = artifact_keys.attempt_log_key(submission_id, attempt_id, stream)

    def read(offset: int) -> LogChunk:
        finished = system.store.get_attempt(attempt_id).status is AttemptStatus.ENDED
        return read_log_chunk(system.artifacts, key, offset, finished=finished)

    return key, read


@router.get(
    "/submissions/{submission_id}/attempts/{attempt_id}/logs/{stream}",
    response_model=LogChunkOut,
    tags=["logs"],
    responses={**ERRORS, 200: {"content": {"application/json": {}, "text/event-stream": {}}}},
)
async def attempt_log(
    *,
    submission_id: int,
    attempt_id: int,
    stream: LogStreamName,
    request: Request,
    system: SystemDep,
    principal: PrincipalDep,
    offset: Annotated[int, Query(ge=0, description="Byte offset to read from")] = 0,
    wait: Annotated[float, Query(ge=0, le=60, description="Long-poll: wait up to this many seconds for new text")] = 0,
    follow: Annotated[bool, Query(description="Stream as server-sent events until the attempt ends")] = False,
) -> Response:
    """One log stream of an attempt, from a byte offset. Long-poll with ``wait``, or follow with
    ``follow=true`` (or ``Accept: text/event-stream``): ``log`` events, then ``end``."""
    await anyio.to_thread.run_sync(visible_submission, system, principal, submission_id)
    await anyio.to_thread.run_sync(_attempt, system, submission_id, attempt_id)
    _, read = _log_reader(system, submission_id, attempt_id, stream)
    if follow or "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(follow_log(read, offset), media_type="text/event-stream", headers=SSE_HEADERS)
    deadline = time.monotonic() + wait
    while True:
        chunk = await anyio.to_thread.run_sync(read, offset)
        if chunk.text or chunk.complete or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(0.25, max(deadline - time.monotonic(), 0.0)))
    out = LogChunkOut(
        offset=chunk.offset,
        next_offset=chunk.next_offset,
        text=chunk.text,
        complete=chunk.complete,
        size=chunk.size,
    )
    return Response(out.model_dump_json(), media_type="application/json")


# --------------------------------------------------------------------------- results and manifest


@router.get(
    "/submissions/{submission_id}/results",
    tags=["results"],
    responses={**ERRORS, 200: {"content": {"application/json": {}}, "description": "Merged leaderboard results"}},
)
def merged_results(submission_id: int, system: SystemDep, principal: PrincipalDep) -> Response:
    """The latest merged results document (leaderboard format; partial while the submission runs)."""
    visible_submission(system, principal, submission_id)
    merged = system.store.merged_result(submission_id)
    if merged is None:
        raise NotFound(f"submission {submission_id} has no results yet")
    return Response(merged.document, media_type="application/json")


@router.get(
    "/submissions/{submission_id}/manifest",
    tags=["results"],
    responses={**ERRORS, 200: {"content": {"application/json": {}}, "description": "Reproducibility manifest"}},
)
def manifest(submission_id: int, system: SystemDep, principal: PrincipalDep) -> Response:
    """The reproducibility manifest: public once the submission is finished (the leaderboard links it)."""
    submission = system.store.get_submission(submission_id)
    if submission.status is not SubmissionStatus.FINISHED:
        visible_submission(system, principal, submission_id)
    key = artifact_keys.manifest_key(submission_id)
    if not system.artifacts.exists(key):
        raise NotFound(f"submission {submission_id} has no manifest yet")
    data = system.artifacts.get(key)
    json.loads(data)  # a manifest is JSON; refuse to serve anything else as such
    return Response(data, media_type="application/json")


# --------------------------------------------------------------------------------------- operator


@router.get("/operator/overview", response_model=OperatorOverview, tags=["operator"], responses=ERRORS)
def overview(system: SystemDep, principal: PrincipalDep) -> OperatorOverview:
    """Queue, running attempts, capacity per pool, failures by blame, GPU-hours and cost (operator only)."""
    require_operator(principal)
    return build_overview(system)
