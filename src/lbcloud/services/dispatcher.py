"""The dispatcher: moves submissions through their lifecycle and route tasks through attempts.

One :meth:`Dispatcher.tick`:

1. plans route tasks of new and resuming submissions (``submitted``/``resuming`` → ``queued``);
2. stops the attempts of submissions that became ``cancelled``/``failed``;
3. collects backend events: attempt running, waiting for capacity, ended (record, or failure with
   blame → retry, fail fast at the smoke route, or give up); after each record the submission's
   results are merged and published (partial), and once every task is settled, finalized;
4. asks the scheduler policy (:mod:`lbcloud.domain.scheduling`) what to launch, claims those tasks in
   the store (two dispatchers never run a task twice) and launches them;
5. renews its leases and runs the periodic pollers (EvalAI, outbox flush...).

All state is in the store, so the dispatcher is restartable: :meth:`recover` re-attaches to live
attempts through the backend and repairs any step a crash interrupted (ended attempt with a task
still running; records not yet merged); every tick takes over the attempts whose owner's lease
expired, so a dispatcher restarted at any moment resumes their work within one lease. Final results
are marked published in the store, so an ended submission reaches its sinks once per ending, across
restarts and resumes.

An idle tick costs one read of the store (:meth:`StateStore.tick_view`); planning new submissions is
bounded per tick so collecting and launching never wait behind a burst of arrivals. Every decision
(launch, record, retry, give-up, fail-fast, adoption, final publication) is one INFO log line with
its ids.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial

from lbcloud.domain.artifact_keys import (
    LogStream,
    attempt_log_key,
    evalai_key,
    manifest_key,
    merged_key,
    route_record_key,
)
from lbcloud.domain.blame import Blame, Failure, blame_of_record_status, should_retry
from lbcloud.domain.errors import LbcloudError, Unavailable
from lbcloud.domain.results.evalai_format import stdout_summary
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.validation import RecordRefused, validate_route_record
from lbcloud.domain.submissions import Submission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, AttemptOutcome, AttemptStatus, NewRouteTask, RouteTask, RouteTaskStatus
from lbcloud.domain.tracks import Track
from lbcloud.services.launching import Launching
from lbcloud.services.ports import (
    ArtifactStore,
    AttemptBackend,
    AttemptEnd,
    BackendEvent,
    BackendEventKind,
    Clock,
    LiveAttempt,
    MergedResult,
    MetricsRecorder,
    NoMetrics,
    Publication,
    ResultSink,
    StateStore,
    WakingBackend,
)
from lbcloud.services.publish import RouteCatalog, RouteInfo, build_publication, global_numbers

log = logging.getLogger(__name__)

TYPICAL_SPEED_M_S = 6.0
TERMINAL_SCAN_S = 2.0
FINALS_SCAN_MARGIN = timedelta(minutes=5)  # status changes committed late still fall in the next scan
PLAN_PER_TICK = 25  # submissions planned per tick at most
PLAN_BUDGET_S = 0.05  # and no longer than this per tick


@dataclass
class TickReport:
    """What one tick did (for tests, the CLI's live view and benchmarks)."""

    planned: int = 0
    launched: int = 0
    ended: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Poller:
    """A periodic job run from the dispatcher loop (EvalAI queue, cancellation poll, outbox flush)."""

    name: str
    interval_s: float
    run: Callable[[], object]


class Dispatcher(Launching):
    """See the module docstring. Not thread-safe: one thread calls :meth:`tick`."""

    def __init__(
        self,
        *,
        store: StateStore,
        artifacts: ArtifactStore,
        backend: AttemptBackend,
        tracks: Mapping[str, Track],
        catalog: RouteCatalog,
        clock: Clock,
        owner: str,
        capacity: Mapping[str, int],
        pool_of: Callable[[Track], str] | None = None,
        sinks: Sequence[ResultSink] = (),
        metrics: MetricsRecorder | None = None,
        lease_s: float = 30.0,
        team_limit: int | None = None,
        facts: Mapping[str, str] | None = None,
        split: str = "leaderboard",
        pollers: Sequence[Poller] = (),
        on_final: Callable[[Submission, Track, Publication | None], None] | None = None,
        publish_interval_s: float = 0.0,
        speculate: bool = True,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.backend = backend
        self.tracks = dict(tracks)
        self.catalog = catalog
        self.clock = clock
        self.owner = owner
        self.capacity = dict(capacity)
        self.pool_of = pool_of or (lambda track: track.pool.name)
        self.sinks = list(sinks)
        self.metrics = metrics or NoMetrics()
        self.lease_s = lease_s
        self.team_limit = team_limit
        self.facts = dict(facts or {})
        self.split = split
        self.pollers = list(pollers)
        self.on_final = on_final
        self._poller_due: dict[str, float] = {}
        self._cancel_sent: dict[int, float] = {}
        self._started_notified: set[int] = set()
        # submission id -> the status change whose final publication this process made (or gave up on)
        self._ended_notified: dict[int, datetime] = {}
        self._ended_this_tick: set[int] = set()  # attempts ended during the current tick
        self._finals_mark: datetime | None = None
        self.speculate = speculate  # work-conserving smoke gate (False: strict gate)
        self.speculative: dict[int, int] = {}
        self.preempted: set[int] = set()
        self.queue_settled = False
        self._last_lease_renewal = 0.0
        self._last_terminal_scan = -1e9
        self._recovered = False
        self._dirty: set[int] = set()  # submissions whose results changed and are not yet published
        self._last_publish: dict[int, float] = {}
        self.publish_interval_s = publish_interval_s

    # ------------------------------------------------------------------------------ main loop
    def run(self, stop: threading.Event, tick_s: float = 0.2) -> None:
        """Tick until ``stop`` is set; store outages are logged and retried, never fatal."""
        while not stop.is_set():
            started = time.monotonic()
            self.tick()
            self._pause(max(0.0, tick_s - (time.monotonic() - started)), stop)

    def run_until_idle(
        self,
        *,
        tick_s: float = 0.2,
        timeout_s: float | None = None,
        stop: threading.Event | None = None,
        on_tick: Callable[[TickReport], None] | None = None,
    ) -> bool:
        """Tick until no submission is active and no attempt is live. Returns False on timeout/stop."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            report = self.tick()
            if on_tick is not None:
                on_tick(report)
            if self.idle():
                return True
            if (deadline is not None and time.monotonic() > deadline) or (stop is not None and stop.is_set()):
                return False
            self._pause(tick_s, stop)

    def _pause(self, seconds: float, stop: threading.Event | None) -> None:
        """Between ticks: the backend's wait when it can wake early (an attempt ended), else a sleep."""
        if isinstance(self.backend, WakingBackend):
            self.backend.wait(seconds)
        elif stop is not None:
            stop.wait(seconds)
        else:
            self.clock.sleep(seconds)

    def idle(self) -> bool:
        try:
            active = self.store.list_submissions(
                statuses=[
                    SubmissionStatus.SUBMITTED,
                    SubmissionStatus.QUEUED,
                    SubmissionStatus.RUNNING,
                    SubmissionStatus.PARTIALLY_EVALUATED,
                    SubmissionStatus.RESUMING,
                ],
                limit=1,
            )
            return not active and not self.store.live_attempts()
        except Unavailable:
            return False

    def tick(self) -> TickReport:
        report = TickReport()
        self._ended_this_tick.clear()
        try:
            if not self._recovered:
                self.recover()
                self._recovered = True
            view = self.store.tick_view()
            self._take_over_expired(view.live)
            if view.submissions_to_plan:
                report.planned = self._plan_submissions()
            report.cancelled = self._stop_cancelled(view.live)
            report.ended = self._collect(self.backend.poll())
            if report.planned or report.ended:
                self.queue_settled = False  # new or returned work may need a speculative slot
            live = [la for la in view.live if la.attempt.id not in self._ended_this_tick]
            report.launched = self._launch(live)
            self._renew_leases()
        except Unavailable as err:
            report.errors.append(str(err))
            log.warning("state store unavailable, retrying next tick: %s", err)
            self.metrics.external_error("store", "unavailable")
        self._run_pollers(report)
        return report

    def close(self) -> None:
        self.backend.close()

    # ------------------------------------------------------------------------------ recovery
    def recover(self) -> None:
        """Re-attach to live attempts, take over expired leases, repair interrupted steps."""
        mine = self.store.live_attempts(owner=self.owner)
        taken = self.store.take_over_expired(self.owner, self.lease_s)
        attempts = {a.id: a for a in [*mine, *taken]}
        if attempts:
            self._adopt(list(attempts.values()))
        live_tasks = {a.task_id for a in self.store.live_attempts()}
        for submission in self.store.list_submissions(statuses=list(ACTIVE_STATUSES), limit=1_000_000):
            self._repair(submission, live_tasks)
        self._publish_dirty()

    def _take_over_expired(self, live: Sequence[LiveAttempt]) -> None:
        """Adopt the attempts whose owner stopped renewing its lease (a dead or stalled dispatcher)."""
        if not any(la.lease_expired and la.attempt.owner != self.owner for la in live):
            return
        taken = [a for a in self.store.take_over_expired(self.owner, self.lease_s) if a.owner == self.owner]
        if taken:
            self._adopt(taken)
            live_tasks = {a.task_id for a in self.store.live_attempts()}
            for submission_id in sorted({a.submission_id for a in taken}):
                self._repair(self.store.get_submission(submission_id), live_tasks)

    def _adopt(self, attempts: Sequence[Attempt]) -> None:
        for attempt in attempts:
            log.info(
                "decision=adopt attempt=%d submission=%d task=%d previous_owner=%s",
                attempt.id, attempt.submission_id, attempt.task_id, attempt.owner,
                extra={"attempt": attempt.id, "submission": attempt.submission_id},
            )  # fmt: skip
        self._remark_speculative(attempts)
        self._collect(self.backend.adopt(list(attempts)))

    def _remark_speculative(self, attempts: Sequence[Attempt]) -> None:
        """Adopted attempts of a submission whose smoke route has not passed yet are speculative (the
        mark is rebuilt from the store, so a restart keeps them pre-empted first)."""
        if not self.speculate:
            return
        for submission_id in sorted({a.submission_id for a in attempts}):
            smoke = next((t for t in self.store.route_tasks(submission_id) if t.smoke), None)
            if smoke is None or smoke.status is RouteTaskStatus.DONE:
                continue
            for attempt in attempts:
                if attempt.submission_id == submission_id and attempt.task_id != smoke.id:
                    self.speculative[attempt.id] = submission_id

    def _repair(self, submission: Submission, live_tasks: set[int]) -> None:
        """Finish what a crash interrupted: a task left running without a live attempt, or records
        not yet merged."""
        track = self.tracks.get(submission.track)
        if track is None:
            return
        tasks = self.store.route_tasks(submission.id)
        for task in tasks:
            if task.status is RouteTaskStatus.RUNNING and task.id not in live_tasks:
                last = max(self.store.attempts(task_id=task.id), key=lambda a: a.number, default=None)
                if last is not None and last.outcome is not None:
                    self._settle_task(submission, track, task, last, last.record_json)
                else:
                    self.store.set_task_status(task.id, RouteTaskStatus.PENDING, reason="re-queued after a restart")
                    log.info(
                        "decision=requeue submission=%d task=%d route=%s: running without a live attempt",
                        submission.id, task.id, task.route_id, extra={"submission": submission.id},
                    )  # fmt: skip
        with_record = sum(1 for t in tasks if t.status.settled)
        merged = self.store.merged_result(submission.id)
        if with_record and (merged is None or merged.records != with_record):
            self._dirty.add(submission.id)

    # ------------------------------------------------------------------------------ planning
    def _plan_submissions(self) -> int:
        """Plan the oldest waiting submissions: at most ``PLAN_PER_TICK`` and ``PLAN_BUDGET_S`` a tick."""
        planned = 0
        started = time.monotonic()
        waiting = self.store.list_submissions(
            statuses=[SubmissionStatus.SUBMITTED, SubmissionStatus.RESUMING], limit=PLAN_PER_TICK, oldest_first=True
        )
        for submission in waiting:
            if planned and time.monotonic() - started > PLAN_BUDGET_S:
                break  # the rest waits for the next tick; collection and launches come first
            track = self.tracks.get(submission.track)
            if track is None:
                self.store.transition(submission.id, SubmissionStatus.FAILED, f"unknown track {submission.track!r}")
                continue
            try:
                routes = self.catalog.routes(track)
            except LbcloudError as err:
                self.store.transition(submission.id, SubmissionStatus.FAILED, f"cannot read the route file: {err}")
                continue
            smoke_route = track.smoke_route or shortest_public_route(track, routes)
            tasks = []
            for index, route in enumerate(routes):
                for rep in range(track.repetitions):
                    tasks.append(
                        NewRouteTask(
                            route_id=route.route_id,
                            repetition=rep,
                            position=index * track.repetitions + rep,
                            route_length_m=route.length_m,
                            expected_s=route.length_m / TYPICAL_SPEED_M_S / max(track.simulation_ratio_hint, 1e-3),
                            smoke=smoke_route is not None and route.route_id == smoke_route and rep == 0,
                        )
                    )
            if submission.status is SubmissionStatus.RESUMING:
                self._started_notified.discard(submission.id)
            stored = self.store.plan_route_tasks(submission.id, tasks)
            self.store.transition(submission.id, SubmissionStatus.QUEUED, f"{len(tasks)} route task(s) queued")
            log.info(
                "decision=%s submission=%d tasks=%d pending=%d",
                "resume" if submission.status is SubmissionStatus.RESUMING else "plan", submission.id, len(stored),
                sum(1 for t in stored if t.status is RouteTaskStatus.PENDING), extra={"submission": submission.id},
            )  # fmt: skip
            planned += 1
        return planned

    # ------------------------------------------------------------------------------ cancellation
    def _stop_cancelled(self, live: Sequence[LiveAttempt]) -> int:
        stopped = 0
        now = time.monotonic()
        for entry in live:
            attempt = entry.attempt
            if not entry.submission_status.terminal:
                continue
            if attempt.handle is None or now - self._cancel_sent.get(attempt.id, -1e9) < 5.0:
                continue
            self._cancel_sent[attempt.id] = now
            try:
                self.backend.cancel(attempt.id, attempt.handle)
                log.info(
                    "decision=stop attempt=%d submission=%d: the submission is %s",
                    attempt.id, attempt.submission_id, entry.submission_status.value, extra={"attempt": attempt.id},
                )  # fmt: skip
                stopped += 1
            except LbcloudError as err:
                log.warning("cancel of attempt %d failed: %s", attempt.id, err, extra={"attempt": attempt.id})
        # ended submissions whose final publication is not recorded (stopped by someone else, or a
        # crash between the ending and its publication) get it; a scan every couple of seconds is enough
        if now - self._last_terminal_scan >= TERMINAL_SCAN_S:
            self._last_terminal_scan = now
            self.queue_settled = False  # and look again for work another dispatcher queued
            # the first scan reads the whole history, later ones only what changed since (with margin)
            since, self._finals_mark = self._finals_mark, self.clock.now() - FINALS_SCAN_MARGIN
            for submission in self.store.unpublished_finals(limit=1000, since=since):
                if self._ended_notified.get(submission.id) != submission.updated_at:
                    self._refresh(submission.id)
        return stopped

    # ------------------------------------------------------------------------------ collecting
    def _collect(self, events: Sequence[BackendEvent]) -> int:
        ended = 0
        for event in events:
            try:
                if self._handle_event(event):
                    ended += 1
            except Unavailable:
                raise
            except LbcloudError as err:
                log.error("event for attempt %d could not be applied: %s", event.attempt_id, err)
        self._publish_dirty()
        return ended

    def _publish_dirty(self) -> None:
        """Merge and publish each submission whose records changed: at most once per tick, and at
        most once per ``publish_interval_s`` per submission (a change waits for the next round)."""
        now = time.monotonic()
        for submission_id in sorted(self._dirty):
            if now - self._last_publish.get(submission_id, -1e9) < self.publish_interval_s:
                continue
            self._dirty.discard(submission_id)
            self._last_publish[submission_id] = now
            self._refresh(submission_id)

    def _handle_event(self, event: BackendEvent) -> bool:
        attempt = self.store.get_attempt(event.attempt_id)
        if event.handle and not attempt.handle and attempt.status is not AttemptStatus.ENDED:
            self.store.set_attempt_handle(attempt.id, event.handle)
            attempt = replace(attempt, handle=event.handle)
        for stream, data in event.logs.items():
            self._put(attempt_log_key(attempt.submission_id, attempt.id, LogStream(stream)), data, "text/plain")
        if event.kind is BackendEventKind.RUNNING:
            if attempt.status is not AttemptStatus.ENDED:
                self.store.set_attempt_status(attempt.id, AttemptStatus.RUNNING, node=event.node)
                self._mark_running(attempt)
            if event.agent_digest and self.store.get_submission(attempt.submission_id).agent.digest is None:
                self.store.set_agent_digest(attempt.submission_id, event.agent_digest)  # what actually ran
            return False
        if event.kind is BackendEventKind.WAITING_CAPACITY:
            if attempt.status is not AttemptStatus.ENDED:
                self.store.set_attempt_status(attempt.id, AttemptStatus.WAITING_CAPACITY)
                self.store.add_event(
                    attempt.submission_id, "waiting_capacity", event.message or "waiting for capacity",
                    attempt_id=attempt.id,
                )  # fmt: skip
            return False
        if attempt.status is AttemptStatus.ENDED:
            log.info(
                "decision=ignore_duplicate attempt=%d submission=%d: its end was already recorded",
                attempt.id, attempt.submission_id, extra={"attempt": attempt.id},
            )  # fmt: skip
            return False  # replayed end (e.g. after a restart)
        submission = self.store.get_submission(attempt.submission_id)
        track = self.tracks[submission.track]
        task = next(t for t in self.store.route_tasks(submission.id) if t.id == attempt.task_id)
        outcome = event.outcome or AttemptOutcome.FAILED
        blame = event.blame
        reason = event.reason
        record = event.record_json
        if record:
            try:  # nothing counts before it is checked against the task and re-scored
                validate_route_record(record, route_id=task.route_id, repetition=task.repetition, scorer=track.scorer)
            except RecordRefused as err:
                outcome, blame, reason, record = (
                    AttemptOutcome.FAILED,
                    Blame.AGENT,
                    f"route record refused: {err}",
                    None,
                )
        if outcome is AttemptOutcome.RECORD and record:
            status = self._record_status(record)
            blame = blame_of_record_status(status) if blame is Blame.NONE else blame
            if blame is not Blame.NONE:
                # the record's status, with the evaluator's explanation when the backend found one
                reason = f"{status} ({event.message})" if event.message else status
            if blame is Blame.SIMULATOR:  # a "Simulation crashed" record: retry like a crash
                outcome = AttemptOutcome.FAILED
                reason = reason or "the simulation crashed"
        preempted = event.preempted or outcome is AttemptOutcome.LOST
        faulty = blame in (Blame.SIMULATOR, Blame.INFRASTRUCTURE)
        counted = outcome is AttemptOutcome.FAILED and faulty and not preempted
        ended = self.store.end_attempt(
            attempt.id,
            AttemptEnd(
                outcome=outcome, blame=blame, reason=reason, exit_code=event.exit_code, record_json=record,
                counted=counted, sim_ratio=event.sim_ratio,
            ),
        )  # fmt: skip
        self._ended_this_tick.add(attempt.id)
        log.info(
            "decision=record_end attempt=%d submission=%d route=%s outcome=%s blame=%s counted=%s",
            attempt.id, submission.id, task.route_id, outcome.value, blame.value, counted,
            extra={"attempt": attempt.id, "submission": submission.id},
        )  # fmt: skip
        duration = (ended.ended_at - ended.created_at).total_seconds() if ended.ended_at and ended.created_at else 0.0
        self.metrics.attempt_ended(track.name, outcome.value, blame.value, duration)
        self.store.add_event(
            submission.id,
            "attempt_ended",
            f"route {task.route_id}: attempt {attempt.number} ended ({outcome.value}"
            + (f", blame {blame.value}" if blame is not Blame.NONE else "")
            + (f": {reason}" if reason and blame is not Blame.NONE else "")
            + ")",
            route_id=task.route_id,
            attempt_id=attempt.id,
        )
        self._settle_task(submission, track, task, ended, record, preempted=preempted)
        return True

    @staticmethod
    def _record_status(record_json: str) -> str:
        doc = parse_results(record_json, "route record")
        return doc.records[-1].status if doc.records else ""

    def _settle_task(
        self,
        submission: Submission,
        track: Track,
        task: RouteTask,
        attempt: Attempt,
        record: str | None,
        *,
        preempted: bool = False,
    ) -> None:
        """Decide what the ended attempt means for its route task and the submission."""
        outcome = attempt.outcome
        self.speculative.pop(attempt.id, None)
        if attempt.id in self.preempted:
            self.preempted.discard(attempt.id)
            if outcome is not AttemptOutcome.RECORD and not submission.status.terminal:
                self.store.set_task_status(
                    task.id,
                    RouteTaskStatus.PENDING,
                    reason="pre-empted: its speculative run gave the slot to other work",
                )
                log.info(
                    "decision=requeue submission=%d task=%d route=%s attempt=%d: pre-empted speculative run",
                    submission.id, task.id, task.route_id, attempt.id, extra={"submission": submission.id},
                )  # fmt: skip
                return
        if outcome is AttemptOutcome.CANCELLED or submission.status.terminal:
            if task.status is RouteTaskStatus.RUNNING:
                self.store.set_task_status(task.id, RouteTaskStatus.CANCELLED, reason=attempt.reason)
            self._dirty.add(submission.id)
            return
        if outcome is AttemptOutcome.RECORD and record:
            key = route_record_key(submission.id, task.route_id, task.repetition)
            self._put(key, record.encode(), "application/json")
            done = self.store.set_task_status(
                task.id, RouteTaskStatus.DONE, blame=attempt.blame, reason=attempt.reason if attempt.blame
                is not Blame.NONE else None, record_json=record,
            )  # fmt: skip
            self.metrics.route_done(track.name, (attempt.ended_at or self.clock.now()).timestamp()
                                    - (attempt.created_at).timestamp())  # fmt: skip
            if done.smoke and attempt.blame is Blame.AGENT:
                self._fail_fast(submission, task, attempt)
                return
            if "sensors were invalid" in self._record_status(record):
                self._fail_fast(submission, task, attempt)
                return
            if done.smoke:
                self._open_gate(submission.id)
            self._dirty.add(submission.id)
            return
        failure = Failure(attempt.blame, attempt.reason or "attempt failed", preempted=preempted)
        retries = task.counted_retries
        limit_sim, limit_infra = track.max_simulator_retries, track.max_infrastructure_retries
        if should_retry(failure, retries, limit_sim, limit_infra):
            self.store.set_task_status(task.id, RouteTaskStatus.PENDING, blame=attempt.blame, reason=attempt.reason)
            log.info(
                "decision=retry submission=%d task=%d route=%s attempt=%d blame=%s counted_retries=%d",
                submission.id, task.id, task.route_id, attempt.id, attempt.blame.value, retries,
                extra={"submission": submission.id},
            )  # fmt: skip
            self.store.add_event(
                submission.id, "retry",
                f"route {task.route_id} will be retried ({attempt.blame.value}: {attempt.reason})",
                route_id=task.route_id,
            )  # fmt: skip
            return
        final_reason = attempt.reason or "attempt failed"
        if attempt.blame in (Blame.SIMULATOR, Blame.INFRASTRUCTURE):
            final_reason = f"{final_reason} (gave up after {retries + 1} counted attempt(s))"
        self.store.set_task_status(
            task.id, RouteTaskStatus.FAILED_FINAL, blame=attempt.blame, reason=final_reason,
            record_json=record if record else None,
        )  # fmt: skip
        log.info(
            "decision=give_up submission=%d task=%d route=%s attempt=%d blame=%s: %s",
            submission.id, task.id, task.route_id, attempt.id, attempt.blame.value, final_reason,
            extra={"submission": submission.id},
        )  # fmt: skip
        if task.smoke and attempt.blame is Blame.AGENT:
            self._fail_fast(submission, task, attempt)
            return
        self._dirty.add(submission.id)

    def _open_gate(self, submission_id: int) -> None:
        """The smoke route passed: the submission's speculative attempts are ordinary from now on."""
        promoted = [a for a, s in self.speculative.items() if s == submission_id]
        for attempt_id in promoted:
            del self.speculative[attempt_id]
        log.info(
            "decision=open_gate submission=%d speculative_now_ordinary=%d", submission_id, len(promoted),
            extra={"submission": submission_id},
        )  # fmt: skip

    def _fail_fast(self, submission: Submission, task: RouteTask, attempt: Attempt) -> None:
        what = "smoke route" if task.smoke else "route"
        reason = (
            f"the agent failed on the public {what} {task.route_id} ({attempt.reason or 'agent fault'}); "
            "the other routes were not run"
        )
        if task.smoke:
            pending = self.store.cancel_pending_tasks(submission.id, "not run: the agent failed the smoke route")
        else:
            pending = self.store.cancel_pending_tasks(submission.id, "not run: the agent was rejected")
        log.info(
            "decision=fail_fast submission=%d task=%d route=%s attempt=%d not_run=%d",
            submission.id, task.id, task.route_id, attempt.id, pending, extra={"submission": submission.id},
        )  # fmt: skip
        current = self.store.get_submission(submission.id)
        if not current.status.terminal:
            self.store.transition(submission.id, SubmissionStatus.FAILED, reason)
        self._dirty.add(submission.id)

    def _mark_running(self, attempt: Attempt) -> None:
        submission = self.store.get_submission(attempt.submission_id)
        if submission.status in (SubmissionStatus.QUEUED, SubmissionStatus.RESUMING):
            submission = self.store.transition(submission.id, SubmissionStatus.RUNNING, "first attempt started")
        if submission.id not in self._started_notified:
            self._started_notified.add(submission.id)
            for sink in self._sinks_for(submission):
                self._sink_call(sink, "started", partial(sink.started, submission))

    # ------------------------------------------------------------------------------ publishing
    def _refresh(self, submission_id: int) -> None:
        """Merge, store and publish a submission's results; finalize it when every task is settled."""
        submission = self.store.get_submission(submission_id)
        track = self.tracks.get(submission.track)
        if track is None:
            if submission.status.terminal:
                self._ended_notified[submission.id] = submission.updated_at  # nothing to publish it with
            return
        tasks = self.store.route_tasks(submission_id)
        if not tasks:
            if submission.status.terminal and self._ended_notified.get(submission.id) != submission.updated_at:
                self._ended_notified[submission.id] = submission.updated_at
                for sink in self._sinks_for(submission):
                    self._sink_call(sink, "ended", partial(sink.ended, submission, None))
                self._final_published(submission)
            return
        all_settled = all(t.status.settled for t in tasks)
        if all_settled and not submission.status.terminal:
            submission = self._finalize(submission, tasks)
        try:
            outcome, publication = build_publication(
                submission,
                track,
                tasks,
                self.store.attempts(submission_id=submission_id),
                route_file_hash=self.catalog.file_hash(track),
                facts=self.facts,
                split=self.split,
                eta_s=self._eta(tasks),
            )
        except LbcloudError as err:
            self.store.add_event(submission_id, "publish_error", f"results could not be merged: {err}")
            log.error("merge failed: %s", err, extra={"submission": submission_id})
            if submission.status.terminal:
                self._ended_notified[submission.id] = submission.updated_at  # not again every scan
            return
        merged = outcome.results
        ds, rc, ip = global_numbers(merged)
        self.store.save_merged_result(
            MergedResult(
                submission_id=submission_id,
                document=publication.merged_document,
                final=publication.final,
                records=publication.records,
                total=publication.total,
                driving_score=ds,
                route_completion=rc,
                infraction_penalty=ip,
                entry_status=merged.entry_status,
                updated_at=self.clock.now(),
            )
        )
        self._put(merged_key(submission_id), publication.merged_document.encode(), "application/json")
        self._put(evalai_key(submission_id, "results.json"), publication.evalai_result.encode(), "application/json")
        self._put(evalai_key(submission_id, "stdout.txt"), stdout_summary(merged).encode(), "text/plain")
        self._put(evalai_key(submission_id, "metadata.json"), publication.merged_document.encode(), "application/json")
        self._put(manifest_key(submission_id), publication.manifest.encode(), "application/json")
        if (
            submission.status in (SubmissionStatus.RUNNING, SubmissionStatus.QUEUED, SubmissionStatus.RESUMING)
            and publication.records > 0
            and not submission.status.terminal
        ):
            # the reason stays on the submission while more routes finish: no count that would go stale
            submission = self.store.transition(
                submission_id, SubmissionStatus.PARTIALLY_EVALUATED, "the first route results were published"
            )
        sinks = self._sinks_for(submission)
        if not submission.status.terminal:
            for sink in sinks:
                self._sink_call(sink, "publish", partial(sink.publish, publication))
            return
        if self._ended_notified.get(submission.id) == submission.updated_at:
            return
        self._ended_notified[submission.id] = submission.updated_at
        for sink in sinks:
            self._sink_call(sink, "publish", partial(sink.publish, publication))
            self._sink_call(sink, "ended", partial(sink.ended, submission, publication))
        self._final_published(submission, publication)
        if self.on_final is not None:
            try:
                self.on_final(submission, track, publication)
            except LbcloudError as err:
                log.error("post-final step failed: %s", err, extra={"submission": submission_id})

    def _final_published(self, submission: Submission, publication: Publication | None = None) -> None:
        sinks = [s.name for s in self._sinks_for(submission)]
        records = f"{publication.records} of {publication.total} route(s)" if publication else "no route records"
        message = f"final result ({submission.status.value}, {records}) published to " + (
            ", ".join(["leaderboard", *sinks])
        )
        self.store.mark_final_published(submission.id, message)
        log.info(
            "decision=publish_final submission=%d status=%s sinks=%s",
            submission.id, submission.status.value, ",".join(sinks) or "-", extra={"submission": submission.id},
        )  # fmt: skip

    def _finalize(self, submission: Submission, tasks: Sequence[RouteTask]) -> Submission:
        failed = [t for t in tasks if t.status is RouteTaskStatus.FAILED_FINAL]
        cancelled = [t for t in tasks if t.status is RouteTaskStatus.CANCELLED]
        infra = [t for t in failed if t.blame in (Blame.SIMULATOR, Blame.INFRASTRUCTURE)]
        if infra:
            routes = ", ".join(t.route_id for t in infra)
            return self.store.transition(
                submission.id, SubmissionStatus.FAILED,
                f"route(s) {routes} could not be evaluated: {infra[0].reason} "
                f"(blame {infra[0].blame.value}; not the team's fault — an operator can resume it)",
            )  # fmt: skip
        if cancelled:
            return self.store.transition(submission.id, SubmissionStatus.FAILED, "some routes were not run")
        return self.store.transition(submission.id, SubmissionStatus.FINISHED, "every route evaluated")

    def _eta(self, tasks: Sequence[RouteTask]) -> float | None:
        remaining = [t for t in tasks if not t.status.settled]
        if not remaining:
            return None
        slots = max(1, sum(self.capacity.values()))
        return sum(t.expected_s for t in remaining) / slots

    def _sinks_for(self, submission: Submission) -> list[ResultSink]:
        return [s for s in self.sinks if s.handles(submission)]

    def _sink_call(self, sink: ResultSink, what: str, call: Callable[[], None]) -> None:
        try:
            call()
        except LbcloudError as err:
            self.metrics.external_error(sink.name, what)
            log.warning("sink %s failed to %s: %s", sink.name, what, err)

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.artifacts.put(key, data, content_type)
        except LbcloudError as err:
            self.metrics.external_error("artifacts", "put")
            log.warning("artifact upload of %s failed: %s", key, err)

    # ------------------------------------------------------------------------------ launching
    def _renew_leases(self) -> None:
        now = time.monotonic()
        if now - self._last_lease_renewal >= self.lease_s / 3:
            self.store.renew_leases(self.owner, self.lease_s)
            self._last_lease_renewal = now

    def _run_pollers(self, report: TickReport) -> None:
        now = time.monotonic()
        for poller in self.pollers:
            if now < self._poller_due.get(poller.name, 0.0):
                continue
            self._poller_due[poller.name] = now + poller.interval_s
            try:
                poller.run()
            except LbcloudError as err:
                report.errors.append(f"{poller.name}: {err}")
                log.warning("%s failed: %s", poller.name, err)


def shortest_public_route(track: Track, routes: Sequence[RouteInfo]) -> str | None:
    """The default smoke route of a track that names none: its shortest public route (None: no
    public route, no smoke gate)."""
    public = [r for r in routes if r.route_id in track.public_routes]
    return min(public, key=lambda r: (r.length_m, r.route_id)).route_id if public else None


ACTIVE_STATUSES = (
    SubmissionStatus.QUEUED,
    SubmissionStatus.RUNNING,
    SubmissionStatus.PARTIALLY_EVALUATED,
    SubmissionStatus.RESUMING,
)
