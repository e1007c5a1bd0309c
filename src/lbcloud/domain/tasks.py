"""Route tasks and attempts: the unit of scheduling, retry and storage.

A route task is (submission, route id, repetition). It yields exactly one route record. Each try is
an attempt; an attempt ends with an :class:`AttemptOutcome` and a blame
(:mod:`lbcloud.domain.blame`).

Route task lifecycle: ``pending → running → done | failed_final``, plus ``cancelled`` (its
submission was cancelled or failed fast before it ran). A task goes back to ``pending`` when its
attempt failed and the blame allows a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lbcloud.domain.blame import Blame


class RouteTaskStatus(StrEnum):
    """- ``pending``: waits for a slot. - ``running``: one live attempt. - ``done``: has its record.
    - ``failed_final``: no more attempts (agent fault without record, or retries exhausted).
    - ``cancelled``: will not run (submission cancelled, or failed fast at the smoke route)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED_FINAL = "failed_final"
    CANCELLED = "cancelled"

    @property
    def settled(self) -> bool:
        return self in (RouteTaskStatus.DONE, RouteTaskStatus.FAILED_FINAL, RouteTaskStatus.CANCELLED)


class AttemptStatus(StrEnum):
    """- ``starting``: claimed by a dispatcher, processes/Job being created.
    - ``waiting_capacity``: created, but the cluster has no room yet (unschedulable, not a failure).
    - ``running``: simulator and agent are up. - ``ended``: outcome known."""

    STARTING = "starting"
    WAITING_CAPACITY = "waiting_capacity"
    RUNNING = "running"
    ENDED = "ended"


class AttemptOutcome(StrEnum):
    """How an attempt ended.

    - ``record``: the evaluator wrote the route record (whatever its status: a driving failure is a
      result, an agent fault like ``Failed - Agent crashed`` carries blame agent).
    - ``failed``: no usable record; see blame and reason.
    - ``cancelled``: stopped on request.
    - ``lost``: the dispatcher found no trace of it after a restart (treated as infrastructure).
    """

    RECORD = "record"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class NewRouteTask:
    """A route task to plan for a submission."""

    route_id: str
    repetition: int
    position: int
    route_length_m: float
    expected_s: float
    smoke: bool = False


@dataclass(frozen=True, slots=True)
class RouteTask:
    """A route task as stored. ``record_json`` is the route record as the evaluator wrote it."""

    id: int
    submission_id: int
    route_id: str
    repetition: int
    position: int
    route_length_m: float
    expected_s: float
    smoke: bool
    status: RouteTaskStatus
    attempts: int
    counted_retries: int
    record_json: str | None
    blame: Blame
    reason: str | None
    updated_at: datetime

    @property
    def instance_id(self) -> str:
        """The leaderboard's ``route_id`` for this task (``RouteScenario_<id>_rep<r>``)."""
        return f"RouteScenario_{self.route_id}_rep{self.repetition}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at a route task.

    ``handle`` is what the backend needs to find it again after a dispatcher restart (a pid-file
    folder locally, a Job name on Kubernetes); ``token`` authenticates its reporter.
    """

    id: int
    task_id: int
    submission_id: int
    number: int
    backend: str
    pool: str
    status: AttemptStatus
    owner: str
    lease_expires_at: datetime | None
    handle: str | None
    token: str
    outcome: AttemptOutcome | None
    blame: Blame
    reason: str | None
    exit_code: int | None
    counted: bool
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    node: str | None = None
    sim_ratio: float | None = None
    record_json: str | None = None
