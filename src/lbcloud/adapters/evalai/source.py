"""EvalAI as a submission source: the challenge queue (E4/E5) or any transport carrying its messages.

:class:`MessageHandler` decides what one queue message means (spec §4, §11); it is shared by
:class:`EvalAISource` (EvalAI's own queue endpoints) and :class:`lbcloud.adapters.sqs.SQSSource` (the
host's SQS queue). For one message it:

1. parses the body strictly on content, leniently on id types; a malformed body, a foreign
   challenge or an unmapped phase is *parked* (recorded for operators with its reason) and acked;
2. reads the submission (E6): a submission lbcloud already holds is reconciled, never run twice
   (EvalAI ``cancelled`` cancels ours, ``resuming`` resumes ours, anything else is a duplicate);
3. for a new pk in an eligible status, reads the image from the submission's ``input_file``, and
   records the submission through intake (idempotent on the pk) **before** the message is acked;
4. intake refusals (registry not allowed, qualification gate, bad image reference) are reported to
   the participant as a ``failed`` result with the reason, through the sink's durable outbox;
5. unexpected statuses (``archived``, a participant's edit, a future value) never start work: the
   message is left for redelivery and, after ``max_unexpected_deliveries``, parked and acked.

:class:`EvalAISource.poll_once` receives at most one message, polls less often while the queue is
empty, and backs off (without raising) while EvalAI is unreachable or the token is refused.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.errors import EvalAIAuthError, EvalAIError, EvalAINotFound
from lbcloud.adapters.evalai.models import (
    ELIGIBLE_STATUSES,
    TERMINAL_STATUSES,
    EvalAIConfig,
    EvalAISubmission,
    MalformedMessage,
    SubmissionMessage,
    image_from_input_file,
    parse_message,
)
from lbcloud.domain.errors import Conflict, InputError, LbcloudError, Unavailable
from lbcloud.domain.submissions import (
    TEAM_NAME,
    AgentKind,
    AgentRef,
    NewSubmission,
    SourceKind,
    Submission,
    SubmissionStatus,
)
from lbcloud.services.control import cancel_submission, resume_submission
from lbcloud.services.ports import Clock, StateStore

log = logging.getLogger(__name__)


class SubmissionIntake(Protocol):
    """What the handler needs of :class:`lbcloud.services.intake.Intake`."""

    def submit(self, new: NewSubmission) -> tuple[Submission, bool]: ...


class RejectionReporter(Protocol):
    """Tells EvalAI a submission was refused (implemented by :class:`lbcloud.adapters.evalai.sink.EvalAISink`)."""

    def report_rejection(self, challenge: int, phase: int, submission: int, reason: str) -> None: ...


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class ParkedMessage:
    """A message lbcloud set aside without evaluating it, and why."""

    at: str
    source: str
    reason: str
    body: str
    submission_pk: int | None = None


class ParkedMessages:
    """The operator-visible record of parked messages: a JSON-lines file (when ``path`` is given),
    an error log line each, and a store event when the message names a submission lbcloud holds."""

    def __init__(self, path: str | Path | None, clock: Clock) -> None:
        self._path = Path(path) if path else None
        self._clock = clock
        self._lock = threading.Lock()
        self._memory: list[ParkedMessage] = []

    def park(self, source: str, reason: str, body: str, submission_pk: int | None = None) -> ParkedMessage:
        entry = ParkedMessage(self._clock.now().isoformat(), source, reason, body[:10_000], submission_pk)
        with self._lock:
            self._memory.append(entry)
            if self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                with self._path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(asdict(entry)) + "\n")
        log.error("parked a %s message: %s", source, reason, extra={"submission_pk": submission_pk})
        return entry

    def entries(self) -> list[ParkedMessage]:
        """Every parked message (from the file when there is one, so other processes' too)."""
        with self._lock:
            if self._path is None or not self._path.is_file():
                return list(self._memory)
            out = []
            for line in self._path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out.append(ParkedMessage(**json.loads(line)))
            return out


class SubmissionDates:
    """EvalAI ``submitted_at`` per submission pk (the E10 cancellation filter needs the earliest)."""

    def __init__(self) -> None:
        self._dates: dict[int, datetime] = {}
        self._lock = threading.Lock()

    def remember(self, pk: int, submitted_at: datetime | None) -> None:
        if submitted_at is not None:
            with self._lock:
                self._dates[pk] = submitted_at

    def get(self, pk: int) -> datetime | None:
        with self._lock:
            return self._dates.get(pk)


# --------------------------------------------------------------------------------------------- handler


class Verdict(StrEnum):
    """What to do with a delivery: ``ack`` (delete it), ``keep`` (let it come back), ``park``."""

    ACK = "ack"
    KEEP = "keep"
    PARK = "park"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    detail: str
    submission_pk: int | None = None
    submission_id: int | None = None


def team_name_for(evalai: EvalAISubmission) -> str:
    """EvalAI's team name made valid for lbcloud (letters, digits, space, ``._-``; at most 63)."""
    ascii_name = unicodedata.normalize("NFKD", evalai.participant_team_name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9 _.-]+", "-", ascii_name).strip(" _.-")[:63].strip(" _.-")
    if cleaned and TEAM_NAME.match(cleaned):
        return cleaned
    return f"team-{evalai.participant_team or evalai.id}"


class MessageHandler:
    """Turns one EvalAI submission message into a recorded submission (or a reasoned refusal)."""

    def __init__(
        self,
        client: EvalAIClient,
        intake: SubmissionIntake,
        store: StateStore,
        config: EvalAIConfig,
        *,
        clock: Clock,
        parked: ParkedMessages,
        rejections: RejectionReporter | None = None,
        dates: SubmissionDates | None = None,
        source_kind: SourceKind = SourceKind.EVALAI,
    ) -> None:
        self.client = client
        self.intake = intake
        self.store = store
        self.config = config
        self.clock = clock
        self.parked = parked
        self.rejections = rejections
        self.dates = dates or SubmissionDates()
        self.source_kind = source_kind
        self._unexpected: dict[int, int] = {}

    def handle(self, body: str, *, heartbeat: Callable[[], None] | None = None) -> Decision:
        """Decide about one message body. Raises :class:`Unavailable` / :class:`EvalAIAuthError`
        when EvalAI or the store cannot be reached (the caller leaves the message queued)."""
        try:
            message = parse_message(body)
        except MalformedMessage as err:
            return self.park(body, f"malformed message: {err.reason}")
        pk = message.submission_pk
        if self.config.challenge_id is not None and message.challenge_pk != self.config.challenge_id:
            return self.park(
                body,
                f"message for challenge {message.challenge_pk}, not the configured "
                f"challenge {self.config.challenge_id}",
                pk,
            )
        track = self.config.phase_tracks.get(message.phase_pk)
        if track is None:
            known = ", ".join(str(p) for p in sorted(self.config.phase_tracks)) or "none"
            return self.park(
                body, f"phase {message.phase_pk} is not mapped to a track (evalai.phase_tracks knows {known})", pk
            )
        existing = self.store.find_submission(self.source_kind.value, str(pk))
        try:
            evalai = self.client.submission(pk)
        except EvalAINotFound:
            return self.park(body, f"EvalAI has no submission {pk}", pk)
        self.dates.remember(pk, evalai.submitted_at)
        if existing is not None:
            return self._reconcile(existing, evalai)
        status = evalai.status.lower()
        if status in TERMINAL_STATUSES:
            return Decision(Verdict.ACK, f"submission {pk} is already {status} on EvalAI; nothing to do", pk)
        if status not in ELIGIBLE_STATUSES:
            return self._unexpected_status(body, pk, status)
        if heartbeat is not None:
            heartbeat()
        try:
            image = self._image(evalai)
        except MalformedMessage as err:
            return self.park(body, f"submission {pk}: {err.reason}", pk)
        new = NewSubmission(
            team=team_name_for(evalai),
            track=track,
            agent=AgentRef(kind=AgentKind.IMAGE, ref=image),
            source=self.source_kind,
            external_id=str(pk),
            method_name=evalai.method_name or None,
            challenge_id=message.challenge_pk,
            phase_id=message.phase_pk,
        )
        try:
            submission, created = self.intake.submit(new)
        except (InputError, Conflict) as err:
            return self._reject(message, body, str(err))
        if created:
            log.info("recorded EvalAI submission", extra={"submission": submission.id, "submission_pk": pk})
        return Decision(Verdict.ACK, f"submission {pk} recorded as {submission.id}", pk, submission.id)

    def _image(self, evalai: EvalAISubmission) -> str:
        if not evalai.input_file:
            raise MalformedMessage("the submission has no input file (is the challenge docker-based?)")
        return image_from_input_file(self.client.input_file(evalai.input_file, submission=evalai.id))

    def _reconcile(self, existing: Submission, evalai: EvalAISubmission) -> Decision:
        """A message for a submission lbcloud already holds: duplicate, cancellation or resume."""
        pk = evalai.id
        status = evalai.status.lower()
        ours = existing.status
        if status == "cancelled" and not ours.terminal:
            cancel_submission(self.store, existing.id, "cancelled on EvalAI")
            self.store.add_event(existing.id, "evalai_cancelled", f"EvalAI submission {pk} was cancelled there")
            return Decision(Verdict.ACK, f"submission {pk} cancelled on EvalAI", pk, existing.id)
        if status == "resuming" and ours in (SubmissionStatus.FAILED, SubmissionStatus.CANCELLED):
            resume_submission(self.store, existing.id, "resumed on EvalAI")
            self.store.add_event(
                existing.id, "evalai_resumed", f"EvalAI submission {pk} was resumed; routes already evaluated are kept"
            )
            return Decision(Verdict.ACK, f"submission {pk} resumed", pk, existing.id)
        return Decision(
            Verdict.ACK,
            f"duplicate delivery of submission {pk} (ours: {ours.value}, EvalAI: {status})",
            pk,
            existing.id,
        )

    def _unexpected_status(self, body: str, pk: int, status: str) -> Decision:
        seen = self._unexpected.get(pk, 0) + 1
        self._unexpected[pk] = seen
        if seen >= self.config.max_unexpected_deliveries:
            self._unexpected.pop(pk, None)
            return self.park(
                body, f"submission {pk} has status {status!r}, which never starts work ({seen} deliveries)", pk
            )
        return Decision(Verdict.KEEP, f"submission {pk} has unexpected status {status!r}; waiting", pk)

    def _reject(self, message: SubmissionMessage, body: str, reason: str) -> Decision:
        pk = message.submission_pk
        self.parked.park(self.source_kind.value, f"submission {pk} refused: {reason}", body, pk)
        if self.rejections is not None:
            self.rejections.report_rejection(message.challenge_pk, message.phase_pk, pk, reason)
        return Decision(Verdict.ACK, f"submission {pk} refused: {reason}", pk)

    def park(self, body: str, reason: str, pk: int | None = None) -> Decision:
        """Record ``body`` as parked with ``reason`` (and an event on the submission when known)."""
        self.parked.park(self.source_kind.value, reason, body, pk)
        if pk is not None:
            existing = self.store.find_submission(self.source_kind.value, str(pk))
            if existing is not None:
                self.store.add_event(existing.id, "message_parked", reason)
        return Decision(Verdict.PARK, reason, pk)


# ---------------------------------------------------------------------------------------------- source


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one :meth:`EvalAISource.poll_once` did (``skipped`` when it was not due)."""

    received: bool = False
    decision: Decision | None = None
    acked: bool = False
    error: str | None = None
    skipped: bool = False


class EvalAISource:
    """Polls the challenge queue (E4), records submissions, then acks (E5).

    Construct with the shared client, the :class:`MessageHandler` and the config; call
    :meth:`poll_once` from the dispatcher loop as often as convenient (it returns at once when no
    poll is due). Never raises for EvalAI or store outages: it logs, backs off and tries later.
    """

    name = "evalai queue"

    def __init__(self, client: EvalAIClient, handler: MessageHandler, config: EvalAIConfig, clock: Clock) -> None:
        if not config.queue_name:
            raise InputError("evalai.queue_name is not set (see the challenge's Manage tab)")
        self.client = client
        self.handler = handler
        self.config = config
        self.clock = clock
        self.queue = config.queue_name
        self._interval = config.poll_interval_s
        self._failures = 0
        self._next_due = 0.0
        self.last_error: str | None = None

    def poll_once(self, *, force: bool = False) -> PollResult:
        """Receive and handle at most one message if a poll is due (or ``force``)."""
        now = self.clock.monotonic()
        if not force and now < self._next_due:
            return PollResult(skipped=True)
        try:
            result = self._poll()
        except EvalAIAuthError as err:
            self._backoff(self.config.auth_backoff_s, str(err))
            return PollResult(error=str(err))
        except (Unavailable, EvalAIError) as err:
            self._failures += 1
            delay = min(self.config.max_poll_interval_s, self.config.poll_interval_s * 2**self._failures)
            self._backoff(delay, str(err))
            return PollResult(error=str(err))
        self._failures = 0
        self.last_error = None
        if result.received:
            self._interval = self.config.poll_interval_s
            self._next_due = now  # drain a busy queue without waiting
        else:
            self._next_due = now + self._interval
            self._interval = min(self.config.max_poll_interval_s, self._interval * 2)
        return result

    def _backoff(self, delay: float, error: str) -> None:
        if error != self.last_error:
            log.error("EvalAI queue poll failed; next try in %.0f s: %s", delay, error)
        self.last_error = error
        self._next_due = self.clock.monotonic() + delay

    def _poll(self) -> PollResult:
        delivery = self.client.receive(self.queue)
        if delivery.empty or delivery.body is None or delivery.receipt_handle is None:
            return PollResult()
        try:
            decision = self.handler.handle(delivery.body)
        except (Unavailable, EvalAIAuthError):
            raise  # not acked: the message comes back after the visibility timeout
        except LbcloudError as err:
            decision = self.handler.park(delivery.body, f"could not be handled: {err}")
        if decision.verdict is Verdict.KEEP:
            return PollResult(received=True, decision=decision)
        try:
            self.client.ack(self.queue, delivery.receipt_handle, submission=decision.submission_pk)
        except (Unavailable, EvalAIError) as err:
            # harmless: the redelivery is recognised as a duplicate and acked then
            log.warning("ack failed, the message will be redelivered: %s", err)
            return PollResult(received=True, decision=decision, error=str(err))
        return PollResult(received=True, decision=decision, acked=True)
