"""What the API returns and the pages show about submissions, route tasks and attempts.

Pydantic models (they document the API in OpenAPI) and the functions that build them from the state
store. Route records are read with the results engine; estimates come from :mod:`.progress`.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from pydantic import BaseModel, Field

from lbcloud.domain import artifact_keys
from lbcloud.domain.errors import InputError
from lbcloud.domain.results.model import ResultFormat, RouteRecord
from lbcloud.domain.results.reader import record_from_json, results_from_json
from lbcloud.domain.state_words import StateView, count_routes, describe_attempt, describe_route, describe_submission
from lbcloud.domain.submissions import ACTIVE, Submission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, AttemptStatus, RouteTask, RouteTaskStatus
from lbcloud.domain.tracks import ScorerVersion, SimulatorKind, Track
from lbcloud.entrypoints.web.progress import Workload, estimate
from lbcloud.entrypoints.wiring import System
from lbcloud.services.ports import Event, StateStore

LOG_STREAMS = tuple(s.value for s in artifact_keys.LogStream)


class LimitsOut(BaseModel):
    """Submissions a team may make to the track (null: no limit)."""

    per_day: int | None
    total: int | None
    concurrent: int | None


class TrackOut(BaseModel):
    name: str
    simulator: str
    scorer: str
    repetitions: int
    pool: str
    slots: int
    gpus_per_attempt: int
    description: str
    limits: LimitsOut


class StateOut(BaseModel):
    """How a state is shown (the same words in the CLI, the pages and EvalAI's stdout):
    ``word`` (the badge), ``tone`` (neutral, active, good, warn, bad), one ``detail`` sentence, and
    ``percent`` of the progress bar (None: no bar)."""

    word: str
    tone: str
    detail: str
    percent: int | None
    terminal: bool


def state_out(view: StateView) -> StateOut:
    return StateOut(
        word=view.word, tone=view.tone.value, detail=view.detail, percent=view.percent, terminal=view.terminal
    )


class SubmissionOut(BaseModel):
    id: int
    team: str
    track: str
    agent_kind: str
    agent_ref: str
    agent_digest: str | None
    source: str
    external_id: str | None
    method_name: str | None
    status: str
    reason: str | None
    terminal: bool
    created_at: datetime
    updated_at: datetime
    state: StateOut | None = Field(default=None, description="Set in lists: the words, tone and progress")


class AttemptOut(BaseModel):
    id: int
    submission_id: int
    task_id: int
    route: str
    number: int
    backend: str
    pool: str
    status: str
    outcome: str | None
    blame: str
    reason: str | None
    exit_code: int | None
    counted: bool
    node: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    sim_ratio: float | None
    logs: dict[str, str]
    state: StateOut
    team: str | None = Field(default=None, description="Set in the operator overview")
    recording: str | None = None
    """The simulator's recording of the route (CARLA tracks), when one was kept."""


class RouteOut(BaseModel):
    task_id: int
    route_id: str
    repetition: int
    instance_id: str
    position: int
    smoke: bool
    status: str
    record_status: str | None
    driving_score: float | None
    route_completion: float | None
    infraction_penalty: float | None
    infractions: int | None
    infraction_counts: dict[str, int]
    blame: str
    reason: str | None
    attempts: int
    duration_game_s: float | None
    duration_system_s: float | None
    wall_s: float | None
    sim_ratio: float | None
    record_url: str | None
    detail_url: str
    state: StateOut


class EventOut(BaseModel):
    id: int
    kind: str
    message: str
    at: datetime
    route_id: str | None
    attempt_id: int | None


class ProgressOut(BaseModel):
    """Everything the live submission page shows (also the payload of the ``progress`` SSE event).

    ``driving_score``, ``route_completion`` and ``infraction_penalty`` are the merged global values
    once ``final``; before that, plain means over the routes that have a record so far. ``done``
    counts route tasks with a record or a final failure. ``queue_position`` is set while no attempt
    has started; ``eta_s`` while work remains (see :mod:`lbcloud.entrypoints.web.progress`).
    """

    submission: SubmissionOut
    state: StateOut
    done: int
    total: int
    counts: dict[str, int]
    driving_score: float | None
    route_completion: float | None
    infraction_penalty: float | None
    entry_status: str | None
    final: bool
    queue_position: int | None
    eta_s: float | None
    routes: list[RouteOut]
    attempts: list[AttemptOut]
    failures_by_blame: dict[str, int]


def track_out(track: Track) -> TrackOut:
    return TrackOut(
        name=track.name,
        simulator=track.simulator.value,
        scorer=track.scorer.value,
        repetitions=track.repetitions,
        pool=track.pool.name,
        slots=track.pool.slots,
        gpus_per_attempt=track.pool.gpus_per_attempt,
        description=track.description,
        limits=LimitsOut(per_day=track.limits.per_day, total=track.limits.total, concurrent=track.limits.concurrent),
    )


def submission_out(s: Submission) -> SubmissionOut:
    return SubmissionOut(
        id=s.id,
        team=s.team,
        track=s.track,
        agent_kind=s.agent.kind.value,
        agent_ref=s.agent.ref,
        agent_digest=s.agent.digest,
        source=s.source.value,
        external_id=s.external_id,
        method_name=s.method_name,
        status=s.status.value,
        reason=s.reason,
        terminal=s.status.terminal,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def submission_with_state(store: StateStore, s: Submission) -> SubmissionOut:
    """:func:`submission_out` with its state words (reads the submission's route tasks)."""
    out = submission_out(s)
    out.state = state_out(
        describe_submission(s.status, count_routes([t.status for t in store.route_tasks(s.id)]), s.reason)
    )
    return out


def event_out(e: Event) -> EventOut:
    return EventOut(id=e.id, kind=e.kind, message=e.message, at=e.at, route_id=e.route_id, attempt_id=e.attempt_id)


def attempt_seconds(attempt: Attempt, now: datetime) -> float | None:
    if attempt.started_at is None:
        return None
    return max(((attempt.ended_at or now) - attempt.started_at).total_seconds(), 0.0)


def attempt_out(attempt: Attempt, task: RouteTask | None, now: datetime, *, recorded: bool = False) -> AttemptOut:
    base = f"/api/v1/submissions/{attempt.submission_id}/attempts/{attempt.id}/logs"
    return AttemptOut(
        id=attempt.id,
        submission_id=attempt.submission_id,
        task_id=attempt.task_id,
        route=task.instance_id if task else str(attempt.task_id),
        number=attempt.number,
        backend=attempt.backend,
        pool=attempt.pool,
        status=attempt.status.value,
        outcome=attempt.outcome.value if attempt.outcome else None,
        blame=attempt.blame.value,
        reason=attempt.reason,
        exit_code=attempt.exit_code,
        counted=attempt.counted,
        node=attempt.node,
        created_at=attempt.created_at,
        started_at=attempt.started_at,
        ended_at=attempt.ended_at,
        duration_s=attempt_seconds(attempt, now),
        sim_ratio=attempt.sim_ratio,
        logs={stream: f"{base}/{stream}" for stream in LOG_STREAMS},
        state=state_out(describe_attempt(attempt.status, attempt.outcome, attempt.blame)),
        recording=f"/api/v1/submissions/{attempt.submission_id}/attempts/{attempt.id}/recording" if recorded else None,
    )


def result_format(track: Track | None) -> ResultFormat:
    return ResultFormat.V10 if track is not None and track.scorer is ScorerVersion.LB10 else ResultFormat.V2X


def parse_record(task: RouteTask, fmt: ResultFormat) -> RouteRecord | None:
    """The task's route record read by the results engine (None when absent or unreadable).

    ``record_json`` is the evaluator's one-route result file (its last record is the route's); a bare
    record object is accepted too."""
    if not task.record_json:
        return None
    source = f"route task {task.id} ({task.instance_id})"
    try:
        document = json.loads(task.record_json)
        if isinstance(document, dict) and "_checkpoint" in document:
            records = results_from_json(document, source, fmt).records
            return records[-1] if records else None
        return record_from_json(document, source, "record", fmt)
    except (InputError, ValueError):
        return None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def route_out(task: RouteTask, attempts: list[Attempt], fmt: ResultFormat, now: datetime) -> RouteOut:
    record = parse_record(task, fmt)
    last = max(attempts, key=lambda a: a.number) if attempts else None
    wall = attempt_seconds(last, now) if last else None
    game = _float(record.meta.duration_game) if record else None
    system_s = _float(record.meta.duration_system) if record else None
    ratio = last.sim_ratio if last and last.sim_ratio is not None else None
    if ratio is None and game is not None and system_s:
        ratio = game / system_s
    return RouteOut(
        task_id=task.id,
        route_id=task.route_id,
        repetition=task.repetition,
        instance_id=task.instance_id,
        position=task.position,
        smoke=task.smoke,
        status=task.status.value,
        record_status=record.status if record else None,
        driving_score=_float(record.scores.score_composed) if record else None,
        route_completion=_float(record.scores.score_route) if record else None,
        infraction_penalty=_float(record.scores.score_penalty) if record else None,
        infractions=record.message_count() if record else None,
        infraction_counts={k: len(v) for k, v in record.infractions.items() if v} if record else {},
        blame=task.blame.value,
        reason=task.reason,
        attempts=task.attempts,
        duration_game_s=game,
        duration_system_s=system_s,
        wall_s=wall,
        sim_ratio=ratio,
        record_url=(
            f"/api/v1/submissions/{task.submission_id}/routes/{task.instance_id}/record" if task.record_json else None
        ),
        detail_url=f"/submissions/{task.submission_id}/routes/{task.instance_id}",
        state=state_out(
            describe_route(
                task.status, blame=task.blame, record_status=record.status if record else None, reason=task.reason
            )
        ),
    )


def partial_means(routes: list[RouteOut]) -> tuple[float | None, float | None, float | None]:
    """Plain means over the routes that have a record so far (the merged global record exists only
    once every route is done; these show how a running submission is doing)."""
    scored = [r for r in routes if r.driving_score is not None]
    if not scored:
        return None, None, None

    def mean(values: list[float | None]) -> float:
        return round(sum(v or 0.0 for v in values) / len(values), 3)

    return (
        mean([r.driving_score for r in scored]),
        mean([r.route_completion for r in scored]),
        mean([r.infraction_penalty for r in scored]),
    )


def _remaining(tasks: list[RouteTask], live: dict[int, Attempt], now: datetime) -> tuple[float, float]:
    remaining = longest = 0.0
    for task in tasks:
        if task.status is RouteTaskStatus.PENDING:
            left = task.expected_s
        elif task.status is RouteTaskStatus.RUNNING:
            attempt = live.get(task.id)
            elapsed = attempt_seconds(attempt, now) if attempt else None
            left = max(task.expected_s - (elapsed or 0.0), 0.0)
        else:
            continue
        remaining += left
        longest = max(longest, left)
    return remaining, longest


def pool_name(system: System, track: Track) -> str:
    """The pool a track's attempts run in: the local backend has one pool (``local``) for all tracks."""
    return "local" if system.settings.backend == "local" else track.pool.name


def pool_slots(system: System, track: Track) -> int:
    """Slots a track's pool can use (the local backend's own limit applies too)."""
    if system.settings.backend == "local":
        return max(1, min(track.pool.slots, system.settings.local.slots))
    return track.pool.slots


def workloads(system: System, pool: str) -> list[Workload]:
    """Remaining work of every active submission in ``pool`` (for queue position and ETA)."""
    out: list[Workload] = []
    now = system.clock.now()
    statuses = [*ACTIVE, SubmissionStatus.SUBMITTED]
    for sub in system.store.list_submissions(statuses=statuses):
        track = system.tracks.get(sub.track)
        if track is None or pool_name(system, track) != pool:
            continue
        tasks = system.store.route_tasks(sub.id)
        started = any(t.attempts > 0 or t.status is not RouteTaskStatus.PENDING for t in tasks)
        remaining, longest = _remaining(tasks, {}, now)
        out.append(Workload(sub.id, sub.created_at, pool, remaining, longest, started))
    return out


def _recorded(system: System, track: Track | None, attempts: list[Attempt]) -> set[int]:
    """Ended attempts of a CARLA track whose simulator recording was kept."""
    if track is None or track.simulator is not SimulatorKind.CARLA:
        return set()
    return {
        a.id
        for a in attempts
        if a.status is AttemptStatus.ENDED
        and system.artifacts.exists(artifact_keys.attempt_recording_key(a.submission_id, a.id))
    }


def build_progress(system: System, submission: Submission) -> ProgressOut:
    """The live view of one submission."""
    store = system.store
    now = system.clock.now()
    track = system.tracks.get(submission.track)
    fmt = result_format(track)
    tasks = store.route_tasks(submission.id)
    attempts = store.attempts(submission_id=submission.id)
    by_task: dict[int, list[Attempt]] = {}
    for a in attempts:
        by_task.setdefault(a.task_id, []).append(a)
    tasks_by_id = {t.id: t for t in tasks}
    live = {a.task_id: a for a in attempts if a.status is not AttemptStatus.ENDED}
    counts = Counter(t.status.value for t in tasks)
    merged = store.merged_result(submission.id)

    queue_position: int | None = None
    eta: float | None = None
    if track is not None and (submission.status.active or submission.status is SubmissionStatus.SUBMITTED):
        remaining, longest = _remaining(tasks, live, now)
        started = bool(attempts)
        pool = pool_name(system, track)
        target = Workload(submission.id, submission.created_at, pool, remaining, longest, started)
        est = estimate(target, workloads(system, pool), pool_slots(system, track))
        queue_position, eta = est.queue_position, est.eta_s

    failures = Counter(a.blame.value for a in attempts if a.outcome is not None and a.blame.value != "none")
    recorded = _recorded(system, track, attempts)
    routes = [route_out(t, by_task.get(t.id, []), fmt, now) for t in tasks]
    ds, rc, ip = (merged.driving_score, merged.route_completion, merged.infraction_penalty) if merged else (None,) * 3
    if ds is None:
        ds, rc, ip = partial_means(routes)
    view = describe_submission(submission.status, count_routes([t.status for t in tasks]), submission.reason)
    return ProgressOut(
        submission=submission_out(submission),
        state=state_out(view),
        done=sum(1 for t in tasks if t.status.settled and t.status is not RouteTaskStatus.CANCELLED),
        total=len(tasks),
        counts=dict(counts),
        driving_score=ds,
        route_completion=rc,
        infraction_penalty=ip,
        entry_status=merged.entry_status if merged else None,
        final=merged.final if merged else False,
        queue_position=queue_position,
        eta_s=eta,
        routes=routes,
        attempts=[
            attempt_out(a, tasks_by_id.get(a.task_id), now, recorded=a.id in recorded)
            for a in sorted(attempts, key=lambda a: a.id)
        ],
        failures_by_blame=dict(failures),
    )
