"""Ports: the interfaces services use and adapters implement.

- :class:`StateStore` — durable rows (SQLite by default, PostgreSQL in production).
- :class:`ArtifactStore` — blobs: route records, logs, merged results, manifests (folder or S3).
- :class:`AttemptBackend` — runs attempts (local processes, Kubernetes Jobs).
- :class:`ResultSink` — publishes partial and final results (EvalAI; the web leaderboard reads the
  store directly).
- :class:`Clock` — time, injected so tests of timeouts and schedules run instantly.

Every method that fails because the service behind it is unreachable raises
:class:`lbcloud.domain.errors.Unavailable`; missing rows raise :class:`NotFound`; illegal changes
raise :class:`Conflict`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import (
    AgentRef,
    NewSubmission,
    StatusChange,
    Submission,
    SubmissionStatus,
)
from lbcloud.domain.tasks import Attempt, AttemptOutcome, AttemptStatus, NewRouteTask, RouteTask, RouteTaskStatus
from lbcloud.domain.tracks import Track


class Clock(Protocol):
    def now(self) -> datetime:
        """Current UTC time (timezone-aware)."""
        ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


# --------------------------------------------------------------------------------------- state store


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a submission, for live views and audits."""

    id: int
    submission_id: int
    kind: str
    message: str
    at: datetime
    route_id: str | None = None
    attempt_id: int | None = None


@dataclass(frozen=True, slots=True)
class MergedResult:
    """The latest merged results document of a submission (leaderboard JSON text)."""

    submission_id: int
    document: str
    final: bool
    records: int
    total: int
    driving_score: float | None
    route_completion: float | None
    infraction_penalty: float | None
    entry_status: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """An artifact recorded in the index (the blob lives in the artifact store)."""

    submission_id: int
    key: str
    kind: str
    size: int
    sha256: str
    attempt_id: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """What the dispatcher records when an attempt ends."""

    outcome: AttemptOutcome
    blame: Blame
    reason: str | None
    exit_code: int | None
    record_json: str | None
    counted: bool
    sim_ratio: float | None = None


@dataclass(frozen=True, slots=True)
class QueuedWork:
    """An active submission with pending route tasks: how many, and where its smoke route stands."""

    submission: Submission
    pending: int
    smoke_pending: bool
    smoke_running: bool


@dataclass(frozen=True, slots=True)
class LiveAttempt:
    """A live attempt with what a dispatcher tick needs of its submission, read in one query."""

    attempt: Attempt
    submission_status: SubmissionStatus
    team: str
    lease_expired: bool


@dataclass(frozen=True, slots=True)
class TickView:
    """What an idle dispatcher tick reads: every live attempt and whether new work arrived."""

    live: tuple[LiveAttempt, ...]
    submissions_to_plan: bool


class StateStore(Protocol):
    """Durable state. Every write is one transaction; every transition is idempotent."""

    # submissions ------------------------------------------------------------------------------
    def create_submission(self, new: NewSubmission) -> tuple[Submission, bool]:
        """Insert a submission in status ``submitted``; idempotent on ``(source, external_id)``.

        Returns the row and whether it was created now (False: it already existed)."""
        ...

    def get_submission(self, submission_id: int) -> Submission: ...

    def find_submission(self, source: str, external_id: str) -> Submission | None: ...

    def list_submissions(
        self,
        *,
        track: str | None = None,
        team: str | None = None,
        statuses: Sequence[SubmissionStatus] | None = None,
        limit: int = 1000,
        oldest_first: bool = False,
    ) -> list[Submission]:
        """Newest first (``oldest_first``: in arrival order)."""
        ...

    def transition(self, submission_id: int, target: SubmissionStatus, reason: str | None = None) -> Submission:
        """Move a submission through :func:`lbcloud.domain.submissions.check_transition`; a replay is a
        no-op; each real change appends a :class:`StatusChange` and an event."""
        ...

    def history(self, submission_id: int) -> list[StatusChange]: ...

    def set_agent_digest(self, submission_id: int, digest: str) -> None: ...

    # route tasks ------------------------------------------------------------------------------
    def plan_route_tasks(self, submission_id: int, tasks: Sequence[NewRouteTask]) -> list[RouteTask]:
        """Create the submission's route tasks once (idempotent on route id + repetition)."""
        ...

    def route_tasks(self, submission_id: int) -> list[RouteTask]:
        """In position order."""
        ...

    def runnable_tasks(self) -> list[tuple[RouteTask, Submission]]:
        """Pending tasks of active submissions (with their submission), oldest submission first."""
        ...

    def queued_work(self) -> list[QueuedWork]:
        """Active submissions with pending tasks, oldest first, without reading the tasks themselves."""
        ...

    def best_pending_tasks(self, limits: Mapping[int, int]) -> dict[int, list[RouteTask]]:
        """Submission id -> its first ``limits[id]`` pending tasks in scheduler order (smoke route first,
        then longest expected first, then position)."""
        ...

    def set_task_status(
        self,
        task_id: int,
        status: RouteTaskStatus,
        *,
        blame: Blame = Blame.NONE,
        reason: str | None = None,
        record_json: str | None = None,
    ) -> RouteTask: ...

    def reopen_tasks(self, submission_id: int) -> int:
        """For resume: tasks without a record go back to ``pending`` (done ones are kept). Returns count."""
        ...

    def cancel_pending_tasks(self, submission_id: int, reason: str) -> int: ...

    # attempts ---------------------------------------------------------------------------------
    def claim_task(self, task_id: int, *, backend: str, pool: str, owner: str, lease_s: float) -> Attempt | None:
        """Atomically move a pending task to running and create its attempt with a lease.

        Returns None when another dispatcher got there first (row lock / conditional update): two
        dispatchers on one database never run a route task twice."""
        ...

    def set_attempt_handle(self, attempt_id: int, handle: str) -> None: ...

    def set_attempt_status(self, attempt_id: int, status: AttemptStatus, *, node: str | None = None) -> Attempt: ...

    def end_attempt(self, attempt_id: int, end: AttemptEnd) -> Attempt:
        """Record an attempt's outcome once (a second call for an ended attempt is a no-op)."""
        ...

    def get_attempt(self, attempt_id: int) -> Attempt: ...

    def attempt_by_token(self, token: str) -> Attempt | None: ...

    def attempts(self, *, submission_id: int | None = None, task_id: int | None = None) -> list[Attempt]: ...

    def live_attempts(self, *, owner: str | None = None) -> list[Attempt]:
        """Attempts not yet ended (optionally only those leased by ``owner``)."""
        ...

    def renew_leases(self, owner: str, lease_s: float) -> int: ...

    def tick_view(self) -> TickView:
        """Live attempts joined with their submission's status and team, and whether a submission
        waits to be planned (``submitted`` or ``resuming``): one read transaction."""
        ...

    def unpublished_finals(self, limit: int = 100, *, since: datetime | None = None) -> list[Submission]:
        """Ended submissions (finished, failed, cancelled) whose final publication has not been
        recorded since they last changed status, oldest first; ``since``: only those that changed
        status at or after that time."""
        ...

    def mark_final_published(self, submission_id: int, message: str) -> None:
        """Record that the final result of the submission's current status reached its sinks."""
        ...

    def take_over_expired(self, owner: str, lease_s: float) -> list[Attempt]:
        """Re-own live attempts whose lease expired (their dispatcher died); returns them."""
        ...

    # results, artifacts, events ----------------------------------------------------------------
    def save_merged_result(self, result: MergedResult) -> None: ...

    def merged_result(self, submission_id: int) -> MergedResult | None: ...

    def leaderboard(self, track: str) -> list[tuple[Submission, MergedResult]]:
        """Finished submissions of a track with their final result, best driving score first."""
        ...

    def index_artifact(self, ref: ArtifactRef) -> None: ...

    def artifacts(self, submission_id: int) -> list[ArtifactRef]: ...

    def add_event(
        self,
        submission_id: int,
        kind: str,
        message: str,
        *,
        route_id: str | None = None,
        attempt_id: int | None = None,
    ) -> Event: ...

    def events(self, *, submission_id: int | None = None, after_id: int = 0, limit: int = 500) -> list[Event]: ...

    # qualification ----------------------------------------------------------------------------
    def record_qualification(self, team: str, track: str, submission_id: int, passed: bool, detail: str) -> None: ...

    def qualification(self, team: str, track: str) -> bool:
        """Whether the team has a passing qualification on ``track``."""
        ...


# ------------------------------------------------------------------------------------ artifact store


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int


class ArtifactStore(Protocol):
    """Blobs addressed by ``/``-separated keys (``submissions/<id>/...``)."""

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    def get(self, key: str) -> bytes:
        """Raises :class:`NotFound` when absent."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> list[BlobInfo]: ...

    def delete(self, key: str) -> None: ...


# ------------------------------------------------------------------------------------------ backends


@dataclass(frozen=True, slots=True)
class AttemptSpec:
    """Everything a backend needs to run one attempt of one route task."""

    attempt_id: int
    attempt_number: int
    submission_id: int
    task_id: int
    team: str
    track: Track
    agent: AgentRef
    route_id: str
    repetition: int
    budget_s: float
    """The attempt's wall-clock budget; 0 when the track has none (``Track.wall_clock_budget``)."""
    token: str
    seed: int = 0


class BackendEventKind(StrEnum):
    RUNNING = "running"
    WAITING_CAPACITY = "waiting_capacity"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class BackendEvent:
    """A change a backend observed. For ``ended``, ``outcome``/``blame`` say how it went,
    ``record_json`` holds the route record when the evaluator wrote one, and ``message`` may carry
    the evaluator's own explanation of a failure (e.g. its last error line). ``handle`` is the
    attempt's handle when the backend knows it: the dispatcher records it if the store has none (an
    attempt found again after a restart that interrupted its launch)."""

    attempt_id: int
    kind: BackendEventKind
    message: str = ""
    outcome: AttemptOutcome | None = None
    blame: Blame = Blame.NONE
    reason: str | None = None
    exit_code: int | None = None
    record_json: str | None = None
    preempted: bool = False
    node: str | None = None
    sim_ratio: float | None = None
    logs: dict[str, bytes] = field(default_factory=dict)
    handle: str | None = None
    agent_digest: str | None = None
    """The agent image the backend resolved (digest or image id), for the manifest."""


class AttemptBackend(Protocol):
    """Runs attempts. Implementations never block the dispatcher for long."""

    name: str

    def launch(self, spec: AttemptSpec) -> str:
        """Start the attempt; return its handle (kept in the store to find it again)."""
        ...

    def poll(self) -> list[BackendEvent]:
        """Changes since the last poll (never blocks for more than ~a second)."""
        ...

    def cancel(self, attempt_id: int, handle: str) -> None:
        """Stop the attempt (process groups / Job) promptly; its end is reported by :meth:`poll`."""
        ...

    def adopt(self, attempts: Sequence[Attempt]) -> list[BackendEvent]:
        """After a dispatcher restart: re-attach to these live attempts. Those that already ended
        or left no trace are returned as ``ended`` events."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class WakingBackend(Protocol):
    """A backend that can tell the dispatcher early that an attempt may have ended: the dispatcher
    waits with :meth:`wait` between ticks instead of sleeping, so a free slot is refilled at once."""

    def wait(self, timeout_s: float) -> None:
        """Return after ``timeout_s`` at most, or as soon as an attempt may have changed."""
        ...


# --------------------------------------------------------------------------------------------- sinks


@dataclass(frozen=True, slots=True)
class Publication:
    """What sinks publish about a submission after a merge."""

    submission: Submission
    merged_document: str
    final: bool
    records: int
    total: int
    participant_stdout: str
    evalai_result: str
    manifest: str
    stderr: str = ""


class ResultSink(Protocol):
    """Publishes results somewhere outside lbcloud (e.g. EvalAI)."""

    name: str

    def handles(self, submission: Submission) -> bool: ...

    def started(self, submission: Submission) -> None:
        """The first attempt of the submission started."""
        ...

    def publish(self, publication: Publication) -> None:
        """A partial (``final=False``) or final result; implementations throttle partials."""
        ...

    def ended(self, submission: Submission, publication: Publication | None) -> None:
        """The submission reached a terminal status (finished / failed / cancelled)."""
        ...


# ------------------------------------------------------------------------------------------- metrics


class MetricsRecorder(Protocol):
    """Operational figures (exported as Prometheus metrics by an adapter; a no-op by default)."""

    def queue_depth(self, pending_tasks: int) -> None: ...

    def attempt_started(self, track: str) -> None: ...

    def attempt_ended(self, track: str, outcome: str, blame: str, duration_s: float) -> None: ...

    def route_done(self, track: str, duration_s: float) -> None: ...

    def scheduler_decision(self, seconds: float, launched: int) -> None: ...

    def external_error(self, service: str, kind: str) -> None:
        """An error talking to ``service`` (``evalai``, ``api``, ``kubernetes``, ``artifacts``...)."""
        ...


class NoMetrics:
    """A :class:`MetricsRecorder` that records nothing."""

    def queue_depth(self, pending_tasks: int) -> None:
        pass

    def attempt_started(self, track: str) -> None:
        pass

    def attempt_ended(self, track: str, outcome: str, blame: str, duration_s: float) -> None:
        pass

    def route_done(self, track: str, duration_s: float) -> None:
        pass

    def scheduler_decision(self, seconds: float, launched: int) -> None:
        pass

    def external_error(self, service: str, kind: str) -> None:
        pass
