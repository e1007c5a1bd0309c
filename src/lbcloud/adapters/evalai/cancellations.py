"""Noticing cancellations made on EvalAI (spec §8): EvalAI never pushes them, so lbcloud polls.

One E10 call per interval, ``?status=cancelled&submitted_after=<earliest submitted_at among active
runs − 1 s>``, covers every active EvalAI submission at once (not one E6 per run). A cancelled one is
moved to ``cancelled`` in the state store; the dispatcher then stops its attempts.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.errors import EvalAIAuthError, EvalAIError
from lbcloud.adapters.evalai.models import EvalAIConfig
from lbcloud.adapters.evalai.source import SubmissionDates
from lbcloud.domain.errors import Conflict, LbcloudError, Unavailable
from lbcloud.domain.submissions import SourceKind, Submission, SubmissionStatus
from lbcloud.services.control import cancel_submission
from lbcloud.services.ports import Clock, StateStore

log = logging.getLogger(__name__)

WATCHED = (
    SubmissionStatus.SUBMITTED,
    SubmissionStatus.QUEUED,
    SubmissionStatus.RUNNING,
    SubmissionStatus.PARTIALLY_EVALUATED,
    SubmissionStatus.RESUMING,
)


class CancellationWatcher:
    """Cancels, in the state store, active submissions that were cancelled on EvalAI.

    :meth:`poll_once` returns at once unless ``cancel_poll_interval_s`` has passed; it sends no
    request when no EvalAI submission is active. ``dates`` is shared with the source, which learns
    each submission's ``submitted_at`` at intake; unknown ones (after a restart) are read once (E6).
    """

    name = "evalai cancellations"

    def __init__(
        self,
        client: EvalAIClient,
        store: StateStore,
        config: EvalAIConfig,
        clock: Clock,
        *,
        dates: SubmissionDates | None = None,
    ) -> None:
        if config.challenge_id is None:
            raise LbcloudError("evalai.challenge_id is not set")
        self.client = client
        self.store = store
        self.config = config
        self.clock = clock
        self.challenge: int = config.challenge_id
        self.dates = dates or SubmissionDates()
        self._next_due = 0.0
        self.last_error: str | None = None

    def _active(self) -> dict[int, Submission]:
        active: dict[int, Submission] = {}
        for submission in self.store.list_submissions(statuses=WATCHED):
            if (
                submission.source in (SourceKind.EVALAI, SourceKind.SQS)
                and submission.external_id is not None
                and submission.external_id.isdigit()
                and (submission.challenge_id in (None, self.challenge))
            ):
                active[int(submission.external_id)] = submission
        return active

    def poll_once(self, *, force: bool = False) -> list[int]:
        """Poll if due; returns the lbcloud ids of submissions cancelled now. Never raises for outages."""
        now = self.clock.monotonic()
        if not force and now < self._next_due:
            return []
        self._next_due = now + self.config.cancel_poll_interval_s
        try:
            return self._poll()
        except EvalAIAuthError as err:
            self._next_due = now + self.config.auth_backoff_s
            self._report(str(err))
        except (Unavailable, EvalAIError) as err:
            self._report(str(err))
        return []

    def _report(self, error: str) -> None:
        if error != self.last_error:
            log.error("EvalAI cancellation poll failed: %s", error)
        self.last_error = error

    def _poll(self) -> list[int]:
        active = self._active()
        if not active:
            return []
        dates = []
        for pk in active:
            when = self.dates.get(pk)
            if when is None:
                when = self.client.submission(pk).submitted_at
                self.dates.remember(pk, when)
            if when is not None:
                dates.append(when)
        after = min(dates) - timedelta(seconds=1) if dates else None
        cancelled = self.client.list_submissions(self.challenge, status="cancelled", submitted_after=after)
        self.last_error = None
        stopped = []
        for item in cancelled:
            submission = active.get(item.id)
            if submission is None:
                continue
            try:
                cancel_submission(self.store, submission.id, "cancelled on EvalAI")
            except Conflict:
                continue  # finished meanwhile: the sink will not report finished over cancelled
            self.store.add_event(submission.id, "evalai_cancelled", f"EvalAI submission {item.id} was cancelled there")
            stopped.append(submission.id)
        return stopped
