"""The dispatcher's launch step: ask the scheduler policy what to start, claim it, launch it.

The smoke gate is work-conserving (see :mod:`lbcloud.domain.scheduling`): ordinary work is planned
as if speculative attempts' slots were free; speculative attempts give their slot back (cancelled,
the task pending again, nothing counted) when ordinary work needs it, latest started first; slots
still free then run gated submissions' longest routes speculatively. A smoke route that passes makes
its submission's speculative attempts ordinary; one that fails ends the submission, whose live
attempts are then stopped and not counted. Speculative marks live in memory: after a restart the
attempts simply count as ordinary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import LbcloudError
from lbcloud.domain.scheduling import (
    Candidate,
    Occupancy,
    QueuedSubmission,
    launch_window,
    plan_launches,
    plan_speculative,
    preemptions_needed,
)
from lbcloud.domain.submissions import Submission
from lbcloud.domain.tasks import AttemptOutcome, RouteTask
from lbcloud.domain.tracks import Track
from lbcloud.services.ports import (
    AttemptBackend,
    AttemptSpec,
    BackendEvent,
    BackendEventKind,
    LiveAttempt,
    MetricsRecorder,
    StateStore,
)
from lbcloud.services.publish import RouteCatalog

log = logging.getLogger("lbcloud.services.dispatcher")


class Launching:
    """The launch step of :class:`lbcloud.services.dispatcher.Dispatcher` (a mixin over its state)."""

    store: StateStore
    backend: AttemptBackend
    tracks: dict[str, Track]
    catalog: RouteCatalog
    capacity: dict[str, int]
    pool_of: Callable[[Track], str]
    metrics: MetricsRecorder
    owner: str
    lease_s: float
    team_limit: int | None
    speculate: bool
    speculative: dict[int, int]  # live speculative attempt -> its submission
    queue_settled: bool  # the last decision found slots full and nothing to pre-empt for
    preempted: set[int]  # speculative attempts asked to give their slot back

    def _collect(self, events: Sequence[BackendEvent]) -> int:
        raise NotImplementedError

    def _launch(self, live: Sequence[LiveAttempt]) -> int:
        started = time.perf_counter()
        by_pool: dict[str, int] = {}
        ordinary_by_pool: dict[str, int] = {}
        by_team: dict[str, int] = {}
        speculative_live: list[LiveAttempt] = []
        for entry in live:
            pool = entry.attempt.pool
            by_pool[pool] = by_pool.get(pool, 0) + 1
            if entry.attempt.id in self.speculative:
                speculative_live.append(entry)
                continue
            ordinary_by_pool[pool] = ordinary_by_pool.get(pool, 0) + 1
            by_team[entry.team] = by_team.get(entry.team, 0) + 1
        free = {pool: max(0, cap - by_pool.get(pool, 0)) for pool, cap in self.capacity.items()}
        if not any(free.values()) and (not speculative_live or self.queue_settled):
            return 0  # no room, and nothing new that speculative attempts would make room for
        self.queue_settled = False
        queue = self.store.queued_work()
        self.metrics.queue_depth(sum(work.pending for work in queue))
        if not queue:
            return 0
        submissions = {work.submission.id: work.submission for work in queue}
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
            running_by_pool=ordinary_by_pool,  # speculative slots count as free for ordinary work
            running_by_team=by_team,
            running_smoke=frozenset(q.submission_id for q in queued if q.smoke_running),
            team_limit=self.team_limit,
            served_by_team=served,
        )
        window = launch_window(queued, occupancy)
        spare = sum(free.values()) if self.speculate else 0
        if spare:  # gated submissions' best routes, for slots ordinary work leaves idle
            for q in queued:
                if q.smoke_pending or q.smoke_running:
                    window[q.submission_id] = max(window.get(q.submission_id, 0), spare + 1)
        best = self.store.best_pending_tasks(window)
        candidates = [
            Candidate(
                task_id=task.id, submission_id=q.submission_id, team=q.team, pool=q.pool, order=q.order,
                expected_s=task.expected_s, position=task.position, smoke=task.smoke,
                smoke_pending=q.smoke_pending or q.smoke_running,
            )
            for q in queued
            for task in best.get(q.submission_id, ())
        ]  # fmt: skip
        plan = plan_launches(candidates, occupancy)
        needed = preemptions_needed(plan, free)
        self.queue_settled = not any(free.values()) and not needed
        self._preempt(speculative_live, needed)
        room = dict(free)
        ordinary: list[Candidate] = []
        for choice in plan:
            if room.get(choice.pool, 0) > 0:  # the rest waits for the slots being given back
                room[choice.pool] -= 1
                ordinary.append(choice)
        chosen = {c.task_id for c in plan}
        extra = plan_speculative([c for c in candidates if c.task_id not in chosen], room, occupancy) if spare else []
        self.metrics.scheduler_decision(time.perf_counter() - started, len(ordinary) + len(extra))
        by_id = {t.id: (t, submissions[q.submission_id]) for q in queued for t in best.get(q.submission_id, ())}
        launched = 0
        for choice, speculative in [*((c, False) for c in ordinary), *((c, True) for c in extra)]:
            task, submission = by_id[choice.task_id]
            launched += self._start(task, submission, choice.pool, speculative=speculative)
        return launched

    def _preempt(self, speculative_live: Sequence[LiveAttempt], needed: Mapping[str, int]) -> None:
        """Ask the latest-started speculative attempts of each pool to give their slot back."""
        for pool, wanted in needed.items():
            mine = [e.attempt for e in speculative_live if e.attempt.pool == pool]
            count = wanted - sum(1 for a in mine if a.id in self.preempted)  # some are on their way out
            victims = sorted((a for a in mine if a.id not in self.preempted), key=lambda a: a.created_at)
            for attempt in reversed(victims[-count:] if count > 0 else []):
                if attempt.handle is None:
                    continue
                self.preempted.add(attempt.id)
                log.info(
                    "decision=preempt attempt=%d submission=%d: a speculative run gives its slot to other work",
                    attempt.id, attempt.submission_id, extra={"attempt": attempt.id},
                )  # fmt: skip
                try:
                    self.backend.cancel(attempt.id, attempt.handle)
                except LbcloudError as err:
                    log.warning("pre-emption of attempt %d failed: %s", attempt.id, err)

    def _start(self, task: RouteTask, submission: Submission, pool: str, *, speculative: bool) -> int:
        """Claim and launch one task; 1 if it was launched."""
        track = self.tracks[submission.track]
        attempt = self.store.claim_task(task.id, backend=self.backend.name, pool=pool, owner=self.owner,
                                        lease_s=self.lease_s)  # fmt: skip
        if attempt is None:
            return 0  # another dispatcher took it
        spec = AttemptSpec(
            attempt_id=attempt.id, attempt_number=attempt.number, submission_id=submission.id, task_id=task.id,
            team=submission.team, track=track, agent=submission.agent, route_id=task.route_id,
            repetition=task.repetition, budget_s=track.attempt_budget_s(task.route_length_m), token=attempt.token,
            seed=track.seed_for(task.repetition),
        )  # fmt: skip
        if speculative:
            self.speculative[attempt.id] = submission.id
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
            return 0
        self.store.set_attempt_handle(attempt.id, handle)
        self.metrics.attempt_started(track.name)
        log.info(
            "decision=launch attempt=%d submission=%d task=%d route=%s number=%d smoke=%s speculative=%s",
            attempt.id, submission.id, task.id, task.route_id, attempt.number, task.smoke, speculative,
            extra={"attempt": attempt.id, "submission": submission.id},
        )  # fmt: skip
        label = (
            " (smoke route)" if task.smoke else " (speculative, before the smoke route passed)" if speculative else ""
        )
        self.store.add_event(
            submission.id, "attempt_started", f"route {task.route_id}: attempt {attempt.number} started{label}",
            route_id=task.route_id, attempt_id=attempt.id,
        )  # fmt: skip
        return 1

    def _planned_count(self, track: Track) -> int:
        """How many route tasks a submission of ``track`` has (routes × repetitions)."""
        try:
            return len(self.catalog.routes(track)) * track.repetitions
        except LbcloudError:
            return 0
