"""Submissions and their lifecycle.

``submitted → queued → running → (partially_evaluated)* → finished | failed | cancelled``, plus
``resuming`` (an operator or EvalAI asked to continue; done route records are kept). Every change
goes through :func:`check_transition`, so illegal jumps are refused in one place and replaying a
transition to the state a submission is already in is a no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lbcloud.domain.errors import Conflict, InputError

TEAM_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 _.-]{0,61}[A-Za-z0-9])?$")


class SubmissionStatus(StrEnum):
    """Where a submission is in its life.

    - ``submitted``: recorded, route tasks not yet planned.
    - ``queued``: route tasks planned, none started yet.
    - ``running``: at least one attempt started, no route record yet.
    - ``partially_evaluated``: some route records merged and published, more to come.
    - ``finished``: every route task has its record; final result published (terminal).
    - ``failed``: stopped for a stated reason with blame (terminal; partial results kept).
    - ``cancelled``: stopped on request (terminal; partial results kept).
    - ``resuming``: asked to continue after ``failed``/``cancelled``; done records are kept and
      only the missing route tasks run again.
    """

    SUBMITTED = "submitted"
    QUEUED = "queued"
    RUNNING = "running"
    PARTIALLY_EVALUATED = "partially_evaluated"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RESUMING = "resuming"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def active(self) -> bool:
        """Work may run for it (the scheduler considers its route tasks)."""
        return self in ACTIVE


TERMINAL = frozenset({SubmissionStatus.FINISHED, SubmissionStatus.FAILED, SubmissionStatus.CANCELLED})
ACTIVE = frozenset(
    {
        SubmissionStatus.QUEUED,
        SubmissionStatus.RUNNING,
        SubmissionStatus.PARTIALLY_EVALUATED,
        SubmissionStatus.RESUMING,
    }
)

_S = SubmissionStatus
LEGAL_TRANSITIONS: dict[SubmissionStatus, frozenset[SubmissionStatus]] = {
    _S.SUBMITTED: frozenset({_S.QUEUED, _S.FAILED, _S.CANCELLED}),
    _S.QUEUED: frozenset({_S.RUNNING, _S.PARTIALLY_EVALUATED, _S.FINISHED, _S.FAILED, _S.CANCELLED}),
    _S.RUNNING: frozenset({_S.PARTIALLY_EVALUATED, _S.FINISHED, _S.FAILED, _S.CANCELLED}),
    _S.PARTIALLY_EVALUATED: frozenset({_S.FINISHED, _S.FAILED, _S.CANCELLED}),
    _S.RESUMING: frozenset({_S.QUEUED, _S.RUNNING, _S.PARTIALLY_EVALUATED, _S.FINISHED, _S.FAILED, _S.CANCELLED}),
    _S.FAILED: frozenset({_S.RESUMING}),
    _S.CANCELLED: frozenset({_S.RESUMING}),
    _S.FINISHED: frozenset(),
}


def check_transition(current: SubmissionStatus, target: SubmissionStatus) -> bool:
    """Whether moving ``current → target`` changes anything.

    Returns False for a replay (``current == target``: idempotent no-op), True for a legal change,
    and raises :class:`Conflict` for an illegal one.
    """
    if current == target:
        return False
    if target not in LEGAL_TRANSITIONS[current]:
        raise Conflict(f"a {current.value} submission cannot become {target.value}")
    return True


class AgentKind(StrEnum):
    """How the agent reaches lbcloud: a path on this machine or a container image."""

    LOCAL = "local"
    IMAGE = "image"


@dataclass(frozen=True, slots=True)
class AgentRef:
    """The participant's agent: a local file/module (``kind=local``) or an image reference.

    ``digest`` is the content hash lbcloud resolved (sha256 of the agent files, or the image
    digest), recorded in the manifest so results are reproducible.
    """

    kind: AgentKind
    ref: str
    config: str | None = None
    digest: str | None = None


class SourceKind(StrEnum):
    """Where a submission came from."""

    LOCAL = "local"
    EVALAI = "evalai"
    SQS = "sqs"


FIELD_LIMITS: dict[str, int] = {
    "method_name": 255,
    "external_id": 255,
    "agent": 1024,
    "agent_config": 4096,
}
"""Longest accepted value of each free-text field of a new submission (characters)."""


def check_field_lengths(new: NewSubmission) -> None:
    """Raise :class:`InputError` naming the first field of ``new`` longer than :data:`FIELD_LIMITS`."""
    values = {
        "method_name": new.method_name,
        "external_id": new.external_id,
        "agent": new.agent.ref,
        "agent_config": new.agent.config,
    }
    for name, value in values.items():
        if value is not None and len(value) > FIELD_LIMITS[name]:
            raise InputError(f"{name} is {len(value)} characters long; at most {FIELD_LIMITS[name]} are accepted")


def validate_team_name(name: str) -> str:
    """Return the team name stripped, or raise :class:`InputError` saying what is wrong."""
    stripped = name.strip()
    if not stripped:
        raise InputError("team name is empty")
    if not TEAM_NAME.match(stripped):
        raise InputError(
            f"team name {name!r} is invalid: use 1-63 letters, digits, spaces, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return stripped


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """What intake records. ``external_id`` (e.g. the EvalAI submission pk) makes intake idempotent."""

    team: str
    track: str
    agent: AgentRef
    source: SourceKind = SourceKind.LOCAL
    external_id: str | None = None
    method_name: str | None = None
    challenge_id: int | None = None
    phase_id: int | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """A recorded submission (as read from the state store)."""

    id: int
    team: str
    track: str
    agent: AgentRef
    source: SourceKind
    external_id: str | None
    status: SubmissionStatus
    reason: str | None
    created_at: datetime
    updated_at: datetime
    method_name: str | None = None
    challenge_id: int | None = None
    phase_id: int | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One row of a submission's status history."""

    submission_id: int
    from_status: SubmissionStatus | None
    to_status: SubmissionStatus
    reason: str | None
    at: datetime
