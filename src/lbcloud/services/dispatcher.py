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
attempts through the backend, takes over attempts whose owner died, and repairs any step a crash
interrupted (ended attempt with a task still running; records not yet merged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from lbcloud.domain.scheduling import Candidate, Occupancy, QueuedSubmission, launch_window, plan_launches
from lbcloud.domain.submissions import Submission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, AttemptOutcome, AttemptStatus, NewRouteTask, RouteTask, RouteTaskStatus
from lbcloud.domain.tracks import Track
from lbcloud.services.ports import (
    ArtifactStore,
    AttemptBackend,
    AttemptEnd,
    AttemptSpec,
    BackendEvent,
    BackendEventKind,
    Clock,
    MergedResult,
    MetricsRecorder,
    NoMetrics,
    Publication,
    ResultSink,
    StateStore,
)
from lbcloud.services.publish import RouteCatalog, build_publication, global_numbers

log = logging.getLogger(__name__)

TYPICAL_SPEED_M_S = 6.0
TERMINAL_SCAN_S = 2.0


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


class Dispatcher:
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
        self._ended_notified: set[int] = set()
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
            stop.wait(max(0.0, tick_s - (time.monotonic() - started)))

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
            if stop is not None:
                stop.wait(tick_s)
            else:
                self.clock.sleep(tick_s)

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
        try:
            if not self._recovered:
                self.recover()
                self._recovered = True
            report.planned = self._plan_submissions()
            report.cancelled = self._stop_cancelled()
            report.ended = self._collect(self.backend.poll())
            report.launched = self._launch()
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
            log.info("re-attaching to %d live attempt(s)", len(attempts))
            self._collect(self.backend.adopt(list(attempts.values())))
        terminal = [SubmissionStatus.FINISHED, SubmissionStatus.FAILED, SubmissionStatus.CANCELLED]
        for submission in self.store.list_submissions(statuses=terminal, limit=1_000_000):
            self._ended_notified.add(submission.id)
        live_tasks = {a.task_id for a in self.store.live_attempts()}
        for submission in self.store.list_submissions(statuses=list(ACTIVE_STATUSES), limit=1_000_000):
            self._repair(submission, live_tasks)
        self._publish_dirty()

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
        with_record = sum(1 for t in tasks if t.status.settled)
        merged = self.store.merged_result(submission.id)
        if with_record and (merged is None or merged.records != with_record):
            self._dirty.add(submission.id)

    # ------------------------------------------------------------------------------ planning
    def _plan_submissions(self) -> int:
        planned = 0
        for submission in self.store.list_submissions(statuses=[SubmissionStatus.SUBMITTED, SubmissionStatus.RESUMING]):
            track = self.tracks.get(submission.track)
            if track is None:
                self.store.transition(submission.id, SubmissionStatus.FAILED, f"unknown track {submission.track!r}")
                continue
            try:
                routes = self.catalog.routes(track)
            except LbcloudError as err:
                self.store.transition(submission.id, SubmissionStatus.FAILED, f"cannot read the route file: {err}")
                continue
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
                            smoke=track.smoke_route is not None and route.route_id == track.smoke_route and rep == 0,
                        )
                    )
            self.store.plan_route_tasks(submission.id, tasks)
            self.store.transition(submission.id, SubmissionStatus.QUEUED, f"{len(tasks)} route task(s) queued")
            planned += 1
        return planned

    # ------------------------------------------------------------------------------ cancellation
    def _stop_cancelled(self) -> int:
        stopped = 0
        now = time.monotonic()
        submissions: dict[int, Submission] = {}
        for attempt in self.store.live_attempts():
            if attempt.submission_id not in submissions:
                submissions[attempt.submission_id] = self.store.get_submission(attempt.submission_id)
            if not submissions[attempt.submission_id].status.terminal:
                continue
            if attempt.handle is None or now - self._cancel_sent.get(attempt.id, -1e9) < 5.0:
                continue
            self._cancel_sent[attempt.id] = now
            try:
                self.backend.cancel(attempt.id, attempt.handle)
                stopped += 1
            except LbcloudError as err:
                log.warning("cancel of attempt %d failed: %s", attempt.id, err, extra={"attempt": attempt.id})
        # submissions stopped by someone else (CLI, web, EvalAI) get their final publication; a scan
        # every couple of seconds is enough and keeps ticks cheap on a long history
        if now - self._last_terminal_scan >= TERMINAL_SCAN_S:
            self._last_terminal_scan = now
            stopped_statuses = [SubmissionStatus.CANCELLED, SubmissionStatus.FAILED]
            for submission in self.store.list_submissions(statuses=stopped_statuses):
                if submission.id not in self._ended_notified:
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
            return False  # replayed end (e.g. after a restart)
        submission = self.store.get_submission(attempt.submission_id)
        track = self.tracks[submission.track]
        task = next(t for t in self.store.route_tasks(submission.id) if t.id == attempt.task_id)
        outcome = event.outcome or AttemptOutcome.FAILED
        blame = event.blame
        reason = event.reason
        record = event.record_json
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
            self._dirty.add(submission.id)
            return
        failure = Failure(attempt.blame, attempt.reason or "attempt failed", preempted=preempted)
        retries = task.counted_retries
        limit_sim, limit_infra = track.max_simulator_retries, track.max_infrastructure_retries
        if should_retry(failure, retries, limit_sim, limit_infra):
            self.store.set_task_status(task.id, RouteTaskStatus.PENDING, blame=attempt.blame, reason=attempt.reason)
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
        if task.smoke and attempt.blame is Blame.AGENT:
            self._fail_fast(submission, task, attempt)
            return
        self._dirty.add(submission.id)

    def _fail_fast(self, submission: Submission, task: RouteTask, attempt: Attempt) -> None:
        what = "smoke route" if task.smoke else "route"
        reason = (
            f"the agent failed on the public {what} {task.route_id} ({attempt.reason or 'agent fault'}); "
            "the other routes were not run"
        )
        if task.smoke:
            pending = self.store.cancel_pending_tasks(submission.id, "not run: the agent failed the smoke route")
            log.info("failing fast: %d route(s) not run", pending, extra={"submission": submission.id})
        else:
            self.store.cancel_pending_tasks(submission.id, "not run: the agent was rejected")
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
            return
        tasks = self.store.route_tasks(submission_id)
        if not tasks:
            if submission.status.terminal and submission.id not in self._ended_notified:
                self._ended_notified.add(submission.id)
                for sink in self._sinks_for(submission):
                    self._sink_call(sink, "ended", partial(sink.ended, submission, None))
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
            submission = self.store.transition(
                submission_id, SubmissionStatus.PARTIALLY_EVALUATED,
                f"{publication.records} of {publication.total} route(s) evaluated",
            )  # fmt: skip
        sinks = self._sinks_for(submission)
        if not submission.status.terminal:
            for sink in sinks:
                self._sink_call(sink, "publish", partial(sink.publish, publication))
            return
        if submission.id in self._ended_notified:
            return
        self._ended_notified.add(submission.id)
        for sink in sinks:
            self._sink_call(sink, "publish", partial(sink.publish, publication))
            self._sink_call(sink, "ended", partial(sink.ended, submission, publication))
        if self.on_final is not None:
            try:
                self.on_final(submission, track, publication)
            except LbcloudError as err:
                log.error("post-final step failed: %s", err, extra={"submission": submission_id})

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
    def _launch(self) -> int:
        started = time.perf_counter()
        live = self.store.live_attempts()
        by_pool: dict[str, int] = {}
        for attempt in live:
            by_pool[attempt.pool] = by_pool.get(attempt.pool, 0) + 1
        if all(by_pool.get(pool, 0) >= cap for pool, cap in self.capacity.items()):
            return 0  # no room: nothing to decide
        queue = self.store.queued_work()
        self.metrics.queue_depth(sum(work.pending for work in queue))
        if not queue:
            return 0
        submissions = {work.submission.id: work.submission for work in queue}
        by_team: dict[str, int] = {}
        for attempt in live:
            if attempt.submission_id not in submissions:
                submissions[attempt.submission_id] = self.store.get_submission(attempt.submission_id)
            team = submissions[attempt.submission_id].team
            by_team[team] = by_team.get(team, 0) + 1
        served: dict[str, int] = {}
        queued: list[QueuedSubmission] = []
        for work in queue:
            submission = work.submission
            track = self.tracks.get(submission.track)
            if track is None:
                continue
            planned = self._planned_count(track)
            served[submission.team] = served.get(submission.team, 0) + max(0, planned - work.pending)
            queued.append(
                QueuedSubmission(
                    submission.id, submission.team, self.pool_of(track), len(queued), work.pending,
                    smoke_pending=work.smoke_pending, smoke_running=work.smoke_running,
                )
            )  # fmt: skip
        occupancy = Occupancy(
            capacity=self.capacity,
            running_by_pool=by_pool,
            running_by_team=by_team,
            running_smoke=frozenset(q.submission_id for q in queued if q.smoke_running),
            team_limit=self.team_limit,
            served_by_team=served,
        )
        best = self.store.best_pending_tasks(launch_window(queued, occupancy))
        candidates = [
            Candidate(
                task_id=task.id,
                submission_id=q.submission_id,
                team=q.team,
                pool=q.pool,
                order=q.order,
                expected_s=task.expected_s,
                position=task.position,
                smoke=task.smoke,
                smoke_pending=q.smoke_pending or q.smoke_running,
            )
            for q in queued
            for task in best.get(q.submission_id, ())
        ]
        plan = plan_launches(candidates, occupancy)
        self.metrics.scheduler_decision(time.perf_counter() - started, len(plan))
        by_id = {t.id: (t, submissions[q.submission_id]) for q in queued for t in best.get(q.submission_id, ())}
        launched = 0
        for choice in plan:
            task, submission = by_id[choice.task_id]
            track = self.tracks[submission.track]
            claimed = self.store.claim_task(
                task.id, backend=self.backend.name, pool=choice.pool, owner=self.owner, lease_s=self.lease_s
            )
            if claimed is None:
                continue  # another dispatcher took it
            attempt = claimed
            spec = AttemptSpec(
                attempt_id=attempt.id,
                attempt_number=attempt.number,
                submission_id=submission.id,
                task_id=task.id,
                team=submission.team,
                track=track,
                agent=submission.agent,
                route_id=task.route_id,
                repetition=task.repetition,
                budget_s=track.attempt_budget_s(task.route_length_m),
                token=attempt.token,
                seed=track.seed_for(task.repetition),
            )
            try:
                handle = self.backend.launch(spec)
            except LbcloudError as err:
                self._collect(
                    [
                        BackendEvent(
                            attempt.id, BackendEventKind.ENDED, outcome=AttemptOutcome.FAILED,
                            blame=Blame.INFRASTRUCTURE, reason=f"could not launch: {err}",
                        )
                    ]
                )  # fmt: skip
                continue
            self.store.set_attempt_handle(attempt.id, handle)
            self.metrics.attempt_started(track.name)
            self.store.add_event(
                submission.id, "attempt_started",
                f"route {task.route_id}: attempt {attempt.number} started" + (" (smoke route)" if task.smoke else ""),
                route_id=task.route_id, attempt_id=attempt.id,
            )  # fmt: skip
            launched += 1
        return launched

    def _planned_count(self, track: Track) -> int:
        """How many route tasks a submission of ``track`` has (routes × repetitions)."""
        try:
            return len(self.catalog.routes(track)) * track.repetitions
        except LbcloudError:
            return 0

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


ACTIVE_STATUSES = (
    SubmissionStatus.QUEUED,
    SubmissionStatus.RUNNING,
    SubmissionStatus.PARTIALLY_EVALUATED,
    SubmissionStatus.RESUMING,
)
