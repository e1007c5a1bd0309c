"""Typed values of the EvalAI host API (spec ``evalai-host-api.md``) and the adapter's configuration.

Responses are pydantic models that ignore fields lbcloud does not use, so a newer EvalAI adding
fields does not break the parse. Queue message bodies are parsed strictly on content and leniently
on id types (:func:`parse_message`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class EvalAIStatus(StrEnum):
    """Submission statuses as EvalAI stores them (lowercase, spec §5)."""

    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    QUEUED = "queued"
    RUNNING = "running"
    PARTIALLY_EVALUATED = "partially_evaluated"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RESUMING = "resuming"
    ARCHIVED = "archived"


TERMINAL_STATUSES = frozenset({"finished", "failed", "cancelled"})
"""EvalAI statuses after which a duplicate delivery never starts work (spec §11)."""
ELIGIBLE_STATUSES = frozenset({"submitting", "submitted", "queued", "running", "resuming"})
"""EvalAI statuses for which a delivery may start (or continue) an evaluation."""
E10_FILTERS = frozenset({"submitted", "running", "queued", "resuming", "failed", "cancelled", "finished", "submitting"})
"""The only values E10's exact-match ``status`` filter accepts."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Challenge(_Lenient):
    """E1: the challenge a queue belongs to."""

    id: int
    title: str = ""
    is_docker_based: bool = False
    remote_evaluation: bool = False
    allow_resuming_submissions: bool = False
    submission_time_limit: int | None = None
    use_fifo_sqs: bool = False
    sqs_retention_period: int | None = None
    is_active: bool = True
    queue: str | None = None


class Phase(_Lenient):
    """E2/E3: one challenge phase."""

    id: int
    codename: str = ""
    name: str = ""
    is_public: bool = False
    is_partial_submission_evaluation_enabled: bool = False


class Delivery(_Lenient):
    """E4: one received message (both fields ``None`` when nothing was received)."""

    body: str | None = None
    receipt_handle: str | None = None

    @field_validator("body", mode="before")
    @classmethod
    def _body_as_text(cls, value: Any) -> Any:
        # EvalAI answers the SQS body text; tolerate an already-decoded object
        if isinstance(value, dict | list):
            return json.dumps(value)
        return value

    @property
    def empty(self) -> bool:
        return self.body is None or self.receipt_handle is None


class EvalAISubmission(_Lenient):
    """E6/E10: a submission as the host sees it (spec §3.1), reduced to what lbcloud uses."""

    id: int
    participant_team: int | None = None
    participant_team_name: str = ""
    challenge_phase: int | None = None
    status: str
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    rerun_resumed_at: datetime | None = None
    method_name: str | None = None
    is_public: bool | None = None
    is_flagged: bool = False
    input_file: str | None = None
    stdout_file: str | None = None
    stderr_file: str | None = None
    job_name: list[str] = Field(default_factory=list)

    @field_validator("participant_team", "challenge_phase", mode="before")
    @classmethod
    def _pk_of_nested(cls, value: Any) -> Any:
        # some EvalAI serialisers nest the object; lbcloud only needs its pk
        if isinstance(value, dict):
            return value.get("id", value.get("pk"))
        return value

    @field_validator("job_name", mode="before")
    @classmethod
    def _job_names(cls, value: Any) -> Any:
        return [] if value is None else value


class LeaderboardRow(_Lenient):
    """E14: one leaderboard row (values in label order, ``"#"`` where missing)."""

    submission_id: int = Field(alias="submission__id")
    team_name: str = Field(alias="submission__participant_team__team_name", default="")
    method_name: str | None = Field(alias="submission__method_name", default=None)
    schema_: dict[str, Any] = Field(alias="leaderboard__schema", default_factory=dict)
    filtering_score: float | None = None
    result: list[Any] = Field(default_factory=list)

    def values(self) -> dict[str, Any]:
        """The row's metrics by label."""
        labels = [str(label) for label in self.schema_.get("labels", [])]
        return dict(zip(labels, self.result, strict=False))


class LeaderboardPage(_Lenient):
    """E14: one page of a phase split's leaderboard."""

    count: int
    next: str | None = None
    previous: str | None = None
    results: list[LeaderboardRow] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------- messages


class MalformedMessage(ValueError):
    """A queue message lbcloud cannot act on; ``reason`` says why, for the operator."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class SubmissionMessage:
    """A parsed queue message: "submission ``submission_pk`` of ``phase_pk`` may need work".

    ``submitted_image_uri`` is informational only (absent from re-published messages); the image is
    always read from the submission's ``input_file``.
    """

    challenge_pk: int
    phase_pk: int
    submission_pk: int
    submitted_image_uri: str | None = None


def _coerce_pk(body: Mapping[str, Any], key: str) -> int:
    if key not in body:
        raise MalformedMessage(f"the message has no {key!r}")
    value = body[key]
    if isinstance(value, bool):
        raise MalformedMessage(f"{key!r} is a boolean, not an id")
    if isinstance(value, int):
        pk = value
    elif isinstance(value, str) and value.strip().isdigit():
        pk = int(value.strip())
    else:
        raise MalformedMessage(f"{key!r} must be an integer id (or its decimal string), got {value!r}")
    if pk <= 0:
        raise MalformedMessage(f"{key!r} must be a positive id, got {pk}")
    return pk


def parse_message(body: str | bytes) -> SubmissionMessage:
    """Parse a queue message body (spec §4). Raises :class:`MalformedMessage` with the reason."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        snippet = (body[:80] if isinstance(body, str) else body[:80].decode("utf-8", "replace")).strip()
        raise MalformedMessage(f"the message body is not JSON ({err}): {snippet!r}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"the message body must be a JSON object, got {type(data).__name__}")
    image = data.get("submitted_image_uri")
    if image is not None and not isinstance(image, str):
        raise MalformedMessage(f"'submitted_image_uri' must be a string, got {image!r}")
    return SubmissionMessage(
        challenge_pk=_coerce_pk(data, "challenge_pk"),
        phase_pk=_coerce_pk(data, "phase_pk"),
        submission_pk=_coerce_pk(data, "submission_pk"),
        submitted_image_uri=image or None,
    )


def image_from_input_file(content: bytes | str) -> str:
    """The image reference in a docker submission's input file ``{"submitted_image_uri": ...}``.

    Raises :class:`MalformedMessage` when the file holds no usable image reference."""
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        raise MalformedMessage("the submission's input file is not JSON (is the challenge docker-based?)") from None
    image = data.get("submitted_image_uri") if isinstance(data, dict) else None
    if not isinstance(image, str) or not image.strip():
        raise MalformedMessage("the submission's input file names no image ('submitted_image_uri' missing or empty)")
    return image.strip()


# ---------------------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class EvalAIConfig:
    """What the EvalAI adapters need, built from ``settings.evalai`` by the wiring.

    ``phase_tracks`` maps EvalAI phase pks to lbcloud track names; ``split`` is the dataset split
    codename results are reported under; ``outbox_dir`` keeps final results EvalAI has not
    accepted yet (and the parked-message record) across restarts. The client retries a request at
    most ``max_attempts`` times and waits at most ``max_inline_wait_s`` for a ``Retry-After``; longer
    outages are the callers' to ride out (they back off without blocking the dispatcher).
    """

    base_url: str = "https://eval.ai"
    token: str | None = None
    auth_scheme: str = "Bearer"
    challenge_id: int | None = None
    queue_name: str | None = None
    phase_tracks: Mapping[int, str] = field(default_factory=dict)
    split: str = "leaderboard"
    poll_interval_s: float = 5.0
    max_poll_interval_s: float = 60.0
    partial_interval_s: float = 60.0
    cancel_poll_interval_s: float = 30.0
    requests_per_minute: int = 50
    timeout_s: float = 20.0
    max_attempts: int = 3
    max_backoff_s: float = 30.0
    max_inline_wait_s: float = 10.0
    auth_backoff_s: float = 300.0
    outbox_dir: str | None = None
    max_unexpected_deliveries: int = 3

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], **overrides: Any) -> EvalAIConfig:
        """Build from ``settings.evalai.model_dump()``; unknown keys (``enabled``...) are ignored."""
        names = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in {**values, **overrides}.items() if k in names}
        if "phase_tracks" in kwargs:
            kwargs["phase_tracks"] = {int(k): str(v) for k, v in kwargs["phase_tracks"].items()}
        return cls(**kwargs)
