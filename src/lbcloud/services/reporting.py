"""Reports from inside an attempt: the route record, log chunks and heartbeats.

The reporter beside the agent (``lbcloud reporter``) calls the dispatcher's reporter API with the
attempt's token; this service checks and stores what it sends:

- **who**: the token must belong to a live attempt (:meth:`StateStore.attempt_by_token`) and match
  the attempt id in the request;
- **record**: at most ``max_record_bytes``; a leaderboard results document (the evaluator's
  checkpoint, as the local backend passes it on) whose last route record is the attempt's own
  task; stored at :func:`attempt_record_key`. Idempotent: the same bytes again succeed, different
  bytes once a record exists are a :class:`Conflict`;
- **logs**: chunks carry the byte offset they start at, so a retried chunk is never appended twice
  and a gap is refused with the offset the service expects next;
- **heartbeats**: remembered per attempt (the first one also becomes a submission event).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lbcloud.domain.artifact_keys import RECORDING_MAX_BYTES, LogStream, attempt_log_key, attempt_recording_key
from lbcloud.domain.errors import Conflict, InputError, LbcloudError, NotFound
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.tasks import Attempt, AttemptStatus
from lbcloud.services.ports import ArtifactStore, StateStore


def attempt_record_key(submission_id: int, attempt_id: int) -> str:
    """Where an attempt's reported route record is kept (the backend reads it back on success)."""
    return f"submissions/{submission_id}/attempts/{attempt_id}/record.json"


class ReportUnauthorized(LbcloudError):
    """The token is unknown or does not belong to the attempt named in the request."""

    exit_code = 9


class ReportGone(Conflict):
    """The attempt already ended; nothing more is accepted for it."""


class ReportTooLarge(InputError):
    """The payload is larger than the service accepts."""


class OffsetMismatch(Conflict):
    """A log chunk does not start where the stored log ends; ``expected`` says where it should."""

    def __init__(self, message: str, expected: int) -> None:
        super().__init__(message)
        self.expected = expected


@dataclass(frozen=True, slots=True)
class RecordReceipt:
    key: str
    sha256: str
    created: bool
    """False when the very same record had been stored before (an idempotent replay)."""


@dataclass(frozen=True, slots=True)
class LogReceipt:
    key: str
    next_offset: int
    appended: int
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Heartbeat:
    attempt_id: int
    at: float
    detail: str = ""


class ReportingService:
    """Validates and stores what reporters send. Thread-safe within one process."""

    def __init__(
        self,
        store: StateStore,
        artifacts: ArtifactStore,
        *,
        max_record_bytes: int = 1 << 20,
        max_chunk_bytes: int = 1 << 20,
        max_log_bytes: int = 64 << 20,
        max_recording_bytes: int = RECORDING_MAX_BYTES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.max_record_bytes = max_record_bytes
        self.max_chunk_bytes = max_chunk_bytes
        self.max_log_bytes = max_log_bytes
        self.max_recording_bytes = max_recording_bytes
        self._monotonic = monotonic
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._heartbeats: dict[int, Heartbeat] = {}

    # --------------------------------------------------------------------------------- checks
    def authenticate(self, token: str, attempt_id: int) -> Attempt:
        """The attempt the token belongs to; :class:`ReportUnauthorized` if it is not ``attempt_id``."""
        attempt = self.store.attempt_by_token(token) if token else None
        if attempt is None or attempt.id != attempt_id:
            raise ReportUnauthorized(f"the token is not valid for attempt {attempt_id}")
        return attempt

    def _require_live(self, attempt: Attempt) -> None:
        if attempt.status is AttemptStatus.ENDED:
            raise ReportGone(f"attempt {attempt.id} has ended; its reports are closed")

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    # --------------------------------------------------------------------------------- record
    def put_record(self, token: str, attempt_id: int, data: bytes) -> RecordReceipt:
        """Store the attempt's route record once (see the module docstring for the rules)."""
        attempt = self.authenticate(token, attempt_id)
        key = attempt_record_key(attempt.submission_id, attempt.id)
        digest = hashlib.sha256(data).hexdigest()
        with self._lock(key):
            if self.artifacts.exists(key):
                if hashlib.sha256(self.artifacts.get(key)).hexdigest() == digest:
                    return RecordReceipt(key, digest, created=False)
                raise Conflict(f"attempt {attempt.id} already reported a different route record")
            self._require_live(attempt)
            if len(data) > self.max_record_bytes:
                raise ReportTooLarge(f"the route record is {len(data)} bytes; the limit is {self.max_record_bytes}")
            self._validate_record(attempt, data)
            self.artifacts.put(key, data, "application/json")
        return RecordReceipt(key, digest, created=True)

    def _validate_record(self, attempt: Attempt, data: bytes) -> None:
        """The payload is a leaderboard results document (the evaluator's checkpoint) whose last
        record is this attempt's route task; raises :class:`InputError` naming the problem."""
        source = f"attempt {attempt.id} route record"
        results = parse_results(data, source)
        if not results.records:
            raise InputError(f"{source}: the document holds no route record")
        record = results.records[-1]
        task = next((t for t in self.store.route_tasks(attempt.submission_id) if t.id == attempt.task_id), None)
        if task is None:
            raise NotFound(f"route task {attempt.task_id} of attempt {attempt.id} not found")
        expected = {task.instance_id, f"RouteScenario_{task.route_id}"}
        if record.route_id not in expected:
            raise InputError(f"{source}: route_id {record.route_id!r} is not this attempt's route ({task.instance_id})")

    # ------------------------------------------------------------------------------ recordings
    def put_recording(self, token: str, attempt_id: int, data: bytes) -> RecordReceipt:
        """Store the attempt's simulator recording once (same bytes again: a replay; different: 409)."""
        attempt = self.authenticate(token, attempt_id)
        key = attempt_recording_key(attempt.submission_id, attempt.id)
        digest = hashlib.sha256(data).hexdigest()
        with self._lock(key):
            if self.artifacts.exists(key):
                if hashlib.sha256(self.artifacts.get(key)).hexdigest() == digest:
                    return RecordReceipt(key, digest, created=False)
                raise Conflict(f"attempt {attempt.id} already reported a different recording")
            self._require_live(attempt)
            if len(data) > self.max_recording_bytes:
                raise ReportTooLarge(f"the recording is {len(data)} bytes; the limit is {self.max_recording_bytes}")
            self.artifacts.put(key, data, "application/octet-stream")
        return RecordReceipt(key, digest, created=True)

    # ------------------------------------------------------------------------------------ logs
    def append_log(self, token: str, attempt_id: int, stream: str, offset: int, data: bytes) -> LogReceipt:
        """Append ``data`` to the stream's log if it starts at ``offset`` (replays are skipped).

        Returns the offset the next chunk must start at. A chunk past the end raises
        :class:`OffsetMismatch` with the expected offset; logs beyond ``max_log_bytes`` are dropped
        (``truncated``)."""
        attempt = self.authenticate(token, attempt_id)
        try:
            log_stream = LogStream(stream)
        except ValueError:
            known = ", ".join(s.value for s in LogStream)
            raise InputError(f"unknown log stream {stream!r}; use one of {known}") from None
        if offset < 0:
            raise InputError("offset must be >= 0")
        if len(data) > self.max_chunk_bytes:
            raise ReportTooLarge(f"the log chunk is {len(data)} bytes; the limit is {self.max_chunk_bytes}")
        key = attempt_log_key(attempt.submission_id, attempt.id, log_stream)
        with self._lock(key):
            current = self.artifacts.get(key) if self.artifacts.exists(key) else b""
            end = len(current)
            if end >= self.max_log_bytes:
                return LogReceipt(key, max(end, offset + len(data)), 0, truncated=True)
            if offset > end:
                raise OffsetMismatch(f"log {log_stream.value} of attempt {attempt.id} ends at {end}, not {offset}", end)
            new = data[end - offset :]
            if not new:
                return LogReceipt(key, end, 0)
            self._require_live(attempt)
            room = max(0, self.max_log_bytes - end)
            kept = new[:room]
            if kept:
                self.artifacts.put(key, current + kept, "text/plain; charset=utf-8")
            # report the whole chunk as consumed so the reporter moves on past what was dropped
            return LogReceipt(key, offset + len(data), len(kept), truncated=len(kept) < len(new))

    def log_offset(self, token: str, attempt_id: int, stream: str) -> int:
        """How many bytes of the stream are stored (a restarted reporter resumes from there)."""
        attempt = self.authenticate(token, attempt_id)
        key = attempt_log_key(attempt.submission_id, attempt.id, LogStream(stream))
        return len(self.artifacts.get(key)) if self.artifacts.exists(key) else 0

    # ------------------------------------------------------------------------------ heartbeats
    def heartbeat(self, token: str, attempt_id: int, detail: str = "") -> Heartbeat:
        attempt = self.authenticate(token, attempt_id)
        self._require_live(attempt)
        beat = Heartbeat(attempt.id, self._monotonic(), detail[:500])
        first = attempt.id not in self._heartbeats
        self._heartbeats[attempt.id] = beat
        if first:
            self.store.add_event(
                attempt.submission_id, "reporter", "the attempt's reporter is connected", attempt_id=attempt.id
            )
        return beat

    def last_heartbeat(self, attempt_id: int) -> Heartbeat | None:
        return self._heartbeats.get(attempt_id)
