"""EvalAI as a result sink (implements :class:`lbcloud.services.ports.ResultSink`), with a durable outbox.

- :meth:`EvalAISink.started`: PATCH ``running`` (E7) once per submission, without a ``job_name``.
- :meth:`EvalAISink.publish` (partial): PUT ``partially_evaluated`` (E9, plural ``challenges`` path)
  with the cumulative result; at most one per submission per ``partial_interval_s`` and none when
  nothing changed; an update that arrives too early is kept and sent by :meth:`flush` once due.
  EvalAI's status is re-read first, so a participant's cancellation is never overwritten.
- :meth:`EvalAISink.ended`: the terminal PUT (E8). The report is first written to the outbox (a
  folder of JSON files), then delivered: re-read the status (never ``finished`` over
  ``cancelled``), PUT, verify by GET. Anything not delivered stays in the outbox and
  :meth:`flush` retries it later, across restarts. A permanent refusal (e.g. labels that do not
  match the phase split) is kept as ``rejected`` and shown to operators as a store event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.errors import EvalAIAuthError, EvalAIError, EvalAIRequestError
from lbcloud.adapters.evalai.models import EvalAIConfig
from lbcloud.domain.errors import LbcloudError, Unavailable
from lbcloud.domain.state_words import RouteCounts, describe_submission
from lbcloud.domain.submissions import SourceKind, Submission, SubmissionStatus
from lbcloud.services.ports import Clock, Publication, StateStore

log = logging.getLogger(__name__)

VERIFY_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class FinalReport:
    """One terminal report waiting in the outbox (everything PUT E8 needs, as strings)."""

    challenge: int
    phase: int
    submission_pk: int
    status: str
    result: str
    stdout: str
    stderr: str
    metadata: str
    submission_id: int | None = None
    tries: int = 0
    last_error: str | None = None
    rejected: bool = False
    resumed_after_cancel: bool = False  # an operator resumed it after a cancel: report over "cancelled"


class FinalOutbox:
    """Final reports not yet accepted by EvalAI: one JSON file per submission pk, written atomically.

    Without a folder (tests, throwaway runs) reports are kept in memory only."""

    def __init__(self, folder: str | Path | None) -> None:
        self._folder = Path(folder) if folder else None
        self._memory: dict[int, FinalReport] = {}
        self._lock = threading.Lock()
        if self._folder is not None:
            self._folder.mkdir(parents=True, exist_ok=True)

    def _path(self, pk: int) -> Path:
        assert self._folder is not None
        return self._folder / f"final-{pk}.json"

    def put(self, report: FinalReport) -> None:
        with self._lock:
            if self._folder is None:
                self._memory[report.submission_pk] = report
                return
            path = self._path(report.submission_pk)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(report)), encoding="utf-8")
            os.replace(tmp, path)

    def remove(self, pk: int) -> None:
        with self._lock:
            if self._folder is None:
                self._memory.pop(pk, None)
            else:
                self._path(pk).unlink(missing_ok=True)

    def pending(self) -> list[FinalReport]:
        """Reports still to deliver (rejected ones excluded)."""
        return [r for r in self.all() if not r.rejected]

    def all(self) -> list[FinalReport]:
        with self._lock:
            if self._folder is None:
                return list(self._memory.values())
            out = []
            for path in sorted(self._folder.glob("final-*.json")):
                try:
                    out.append(FinalReport(**json.loads(path.read_text(encoding="utf-8"))))
                except (ValueError, TypeError) as err:
                    log.error("unreadable outbox entry %s: %s", path.name, err)
            return out


def _metadata(submission: Submission, publication: Publication | None) -> str:
    """The host-only ``metadata`` string: lbcloud's ids, the merged file and a manifest summary."""
    doc: dict[str, Any] = {
        "lbcloud_submission": submission.id,
        "track": submission.track,
        "status": submission.status.value,
        "reason": submission.reason,
    }
    if publication is not None:
        try:
            doc["results"] = json.loads(publication.merged_document)
        except ValueError:
            doc["results"] = publication.merged_document
        try:
            manifest = json.loads(publication.manifest)
        except ValueError:
            manifest = None
        if isinstance(manifest, dict):
            routes = manifest.pop("routes", [])
            summary: dict[str, Any] = dict(manifest)
            if isinstance(routes, list):
                summary["routes"] = len(routes)
                summary["attempts"] = sum(len(r.get("attempts", [])) for r in routes if isinstance(r, dict))
            doc["manifest"] = summary
    return json.dumps(doc)


def status_line(status: SubmissionStatus, publication: Publication | None, reason: str | None) -> str:
    """The submission's state in the words the web pages and the CLI use (one line for stdout)."""
    counts = RouteCounts(total=publication.total, done=publication.records) if publication else RouteCounts()
    view = describe_submission(status, counts, reason)
    return f"\nStatus: {view.word} ({view.detail})\n"


class EvalAISink:
    """Publishes EvalAI submissions' progress and results. Never raises into the dispatcher."""

    name = "evalai"

    def __init__(
        self,
        client: EvalAIClient,
        store: StateStore,
        config: EvalAIConfig,
        clock: Clock,
        *,
        outbox: FinalOutbox | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.config = config
        self.clock = clock
        self.outbox = outbox or FinalOutbox(config.outbox_dir)
        self._lock = threading.Lock()
        self._running_sent: set[int] = set()
        self._running_retry: dict[int, Submission] = {}
        self._last_partial_at: dict[int, float] = {}
        self._last_partial_digest: dict[int, str] = {}
        self._pending_partial: dict[int, Publication] = {}
        self._quiet_until = 0.0  # EvalAI is failing: no calls before this (monotonic) time
        self._outage_s = 0.0

    # ----------------------------------------------------------------------------------- identity
    def handles(self, submission: Submission) -> bool:
        return (
            submission.source in (SourceKind.EVALAI, SourceKind.SQS)
            and submission.external_id is not None
            and submission.external_id.isdigit()
            and submission.phase_id is not None
            and (submission.challenge_id or self.config.challenge_id) is not None
        )

    def _ids(self, submission: Submission) -> tuple[int, int, int]:
        challenge = submission.challenge_id or self.config.challenge_id
        assert challenge is not None and submission.phase_id is not None and submission.external_id is not None
        return challenge, submission.phase_id, int(submission.external_id)

    # ------------------------------------------------------------------------------------ port API
    def started(self, submission: Submission) -> None:
        """PATCH ``running`` once (each PATCH resets EvalAI's ``started_at``); retried by :meth:`flush`
        until it succeeds or a partial or final result makes it moot."""
        if not self.handles(submission) or submission.id in self._running_sent:
            return
        try:
            merged = self.store.merged_result(submission.id)
        except LbcloudError:
            merged = None
        if merged is not None and merged.records > 0:
            self._running_sent.add(submission.id)  # after a restart: EvalAI already shows progress
            return
        challenge, _phase, pk = self._ids(submission)
        if self._quiet():
            with self._lock:
                self._running_retry[submission.id] = submission
            return
        try:
            self.client.set_status(challenge, pk, "running")
        except (Unavailable, EvalAIError) as err:
            log.warning("could not mark EvalAI submission %s running (will retry): %s", pk, err)
            self._failed(err)
            with self._lock:
                self._running_retry[submission.id] = submission
            return
        self._succeeded()
        with self._lock:
            self._running_retry.pop(submission.id, None)
        self._running_sent.add(submission.id)

    def publish(self, publication: Publication) -> None:
        """Queue a partial update (sent now if due); finals are reported by :meth:`ended`."""
        submission = publication.submission
        if not self.handles(submission) or publication.final or submission.status.terminal:
            return
        digest = hashlib.sha256(
            (publication.evalai_result + "\0" + publication.participant_stdout).encode()
        ).hexdigest()
        with self._lock:
            if self._last_partial_digest.get(submission.id) == digest:
                self._pending_partial.pop(submission.id, None)
                return
            self._pending_partial[submission.id] = publication
        self._send_due_partials()

    def ended(self, submission: Submission, publication: Publication | None) -> None:
        """Write the terminal report to the outbox, then try to deliver it."""
        if not self.handles(submission) or not submission.status.terminal:
            return
        with self._lock:
            self._pending_partial.pop(submission.id, None)
            self._running_retry.pop(submission.id, None)
        challenge, phase, pk = self._ids(submission)
        status = submission.status.value
        reason = submission.reason or ""
        stderr_lines = [line for line in ((publication.stderr if publication else ""), reason) if line]
        if submission.status is SubmissionStatus.CANCELLED:
            stderr_lines.append("The submission was cancelled; routes evaluated so far are listed in stdout.")
        stdout = (publication.participant_stdout if publication is not None else "") + status_line(
            submission.status, publication, submission.reason
        )
        result = publication.evalai_result if (publication and submission.status is SubmissionStatus.FINISHED) else "[]"
        report = FinalReport(
            challenge=challenge,
            phase=phase,
            submission_pk=pk,
            status=status,
            result=result,
            stdout=stdout,
            stderr="\n".join(stderr_lines) + ("\n" if stderr_lines else ""),
            metadata=_metadata(submission, publication),
            submission_id=submission.id,
            resumed_after_cancel=submission.status is not SubmissionStatus.CANCELLED
            and self._resumed_after_cancel(submission),
        )
        self.outbox.put(report)
        if not self._quiet():
            self._deliver(report)

    def _resumed_after_cancel(self, submission: Submission) -> bool:
        """Whether the submission was resumed after it was cancelled (so EvalAI's ``cancelled`` is an
        earlier report of ours, which the resumed run supersedes)."""
        try:
            history = self.store.history(submission.id)
        except LbcloudError:
            return False
        return any(
            c.from_status is SubmissionStatus.CANCELLED and c.to_status is SubmissionStatus.RESUMING for c in history
        )

    def report_rejection(self, challenge: int, phase: int, submission: int, reason: str) -> None:
        """Tell the participant that intake refused the submission (``failed``, reason in stderr)."""
        report = FinalReport(
            challenge=challenge,
            phase=phase,
            submission_pk=submission,
            status="failed",
            result="[]",
            stdout="lbcloud did not evaluate this submission.\n",
            stderr=f"Submission refused: {reason}\n",
            metadata=json.dumps({"refused": reason}),
        )
        self.outbox.put(report)
        if not self._quiet():
            self._deliver(report)

    # ----------------------------------------------------------------------------------- outages
    def _quiet(self) -> bool:
        """Whether EvalAI recently failed (calls wait, so the dispatcher is not held up by retries)."""
        return self.clock.monotonic() < self._quiet_until

    def _failed(self, err: Exception) -> None:
        if isinstance(err, EvalAIAuthError):
            pause = self.config.auth_backoff_s
        elif isinstance(err, Unavailable):
            self._outage_s = min(self.config.max_poll_interval_s, max(5.0, self._outage_s * 2))
            pause = self._outage_s
        else:
            return  # a refusal of one request says nothing about EvalAI's health
        self._quiet_until = self.clock.monotonic() + pause

    def _succeeded(self) -> None:
        self._outage_s = 0.0

    # ---------------------------------------------------------------------------------- background
    def flush(self) -> int:
        """Retry ``running``, send due partial updates and retry undelivered finals; returns finals
        delivered now."""
        if self._quiet():
            return 0
        with self._lock:
            retry = list(self._running_retry.values())
        for submission in retry:
            self.started(submission)
        self._send_due_partials()
        delivered = 0
        for report in self.outbox.pending():
            if self._quiet():
                break
            if self._deliver(report) == "delivered":
                delivered += 1
        return delivered

    def pending_finals(self) -> list[FinalReport]:
        return self.outbox.pending()

    # ------------------------------------------------------------------------------------ delivery
    def _due_partials(self) -> Iterator[Publication]:
        now = self.clock.monotonic()
        with self._lock:
            for sid, publication in list(self._pending_partial.items()):
                last = self._last_partial_at.get(sid)
                if last is None or now - last >= self.config.partial_interval_s:
                    del self._pending_partial[sid]
                    yield publication

    def _send_due_partials(self) -> None:
        if self._quiet():
            return
        for publication in list(self._due_partials()):
            self._send_partial(publication)

    def _send_partial(self, publication: Publication) -> None:
        submission = publication.submission
        challenge, phase, pk = self._ids(submission)
        try:
            current = self.client.submission(pk).status.lower()
            if current in ("cancelled", "finished", "failed"):
                log.info("not sending a partial update: EvalAI submission %s is %s", pk, current)
                return
            self.client.put_result(
                challenge,
                phase,
                pk,
                "partially_evaluated",
                result=publication.evalai_result,
                stdout=publication.participant_stdout
                + status_line(SubmissionStatus.PARTIALLY_EVALUATED, publication, None),
                stderr=publication.stderr,
                partial=True,
            )
        except (Unavailable, EvalAIError) as err:
            # results are cumulative: the next update heals a lost one
            log.warning("partial update of EvalAI submission %s failed: %s", pk, err)
            self._failed(err)
            with self._lock:
                self._pending_partial.setdefault(submission.id, publication)
            return
        digest = hashlib.sha256((publication.evalai_result + "\0" + publication.participant_stdout).encode())
        with self._lock:
            self._running_retry.pop(submission.id, None)
            self._running_sent.add(submission.id)
            self._last_partial_at[submission.id] = self.clock.monotonic()
            self._last_partial_digest[submission.id] = digest.hexdigest()

    def _event(self, report: FinalReport, kind: str, message: str) -> None:
        if report.submission_id is None:
            return
        try:
            self.store.add_event(report.submission_id, kind, message)
        except LbcloudError as err:
            log.warning("could not record event %s: %s", kind, err)

    def _deliver(self, report: FinalReport) -> str:
        """Deliver one final report: ``delivered``, ``skipped``, ``rejected``, ``retry`` or ``auth``."""
        pk = report.submission_pk
        try:
            for _ in range(VERIFY_ATTEMPTS):
                current = self.client.submission(pk).status.lower()
                if current == "cancelled" and report.status != "cancelled" and not report.resumed_after_cancel:
                    self.outbox.remove(pk)
                    self._event(
                        report,
                        "evalai_not_reported",
                        f"EvalAI submission {pk} is cancelled there; lbcloud's {report.status} "
                        "result was not reported over it",
                    )
                    return "skipped"
                self.client.put_result(
                    report.challenge,
                    report.phase,
                    pk,
                    report.status,
                    result=report.result,
                    stdout=report.stdout,
                    stderr=report.stderr,
                    metadata=report.metadata,
                )
                if self.client.submission(pk).status.lower() == report.status:
                    self.outbox.remove(pk)
                    self._event(report, "evalai_reported", f"{report.status} reported to EvalAI submission {pk}")
                    self._succeeded()
                    return "delivered"
            raise Unavailable(f"EvalAI submission {pk} did not keep status {report.status} after the PUT")
        except EvalAIAuthError as err:
            self._failed(err)
            self.outbox.put(replace(report, tries=report.tries + 1, last_error=str(err)))
            log.error("final result of EvalAI submission %s kept for later: %s", pk, err)
            return "auth"
        except EvalAIRequestError as err:
            self.outbox.put(replace(report, tries=report.tries + 1, last_error=str(err), rejected=True))
            self._event(report, "evalai_rejected", f"EvalAI refused the final result: {err}")
            log.error("EvalAI refused the final result of submission %s: %s", pk, err)
            return "rejected"
        except (Unavailable, EvalAIError) as err:
            self._failed(err)
            self.outbox.put(replace(report, tries=report.tries + 1, last_error=str(err)))
            log.warning("final result of EvalAI submission %s kept for a later retry: %s", pk, err)
            return "retry"
