"""The operator's overview: queue, running attempts, capacity, failures by blame, usage and cost."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from lbcloud.domain.state_words import count_routes, describe_submission
from lbcloud.domain.submissions import ACTIVE, SubmissionStatus
from lbcloud.domain.tasks import AttemptStatus, RouteTaskStatus
from lbcloud.domain.tracks import Pool
from lbcloud.entrypoints.web.progress import Workload, estimate
from lbcloud.entrypoints.web.views import (
    AttemptOut,
    StateOut,
    SubmissionOut,
    attempt_out,
    pool_name,
    pool_slots,
    state_out,
    submission_out,
)
from lbcloud.entrypoints.wiring import System
from lbcloud.services.costs import Usage, cost_report


class PoolOut(BaseModel):
    name: str
    slots: int
    running: int
    waiting: int
    gpus_per_attempt: int
    price_per_hour: float


class QueueItem(BaseModel):
    submission: SubmissionOut
    state: StateOut
    pending: int
    running: int
    done: int
    total: int
    queue_position: int | None
    eta_s: float | None


class UsageOut(BaseModel):
    attempts: int
    hours: float
    gpu_hours: float
    cost: float


class SubmissionUsage(BaseModel):
    submission_id: int
    team: str
    track: str
    status: str
    usage: UsageOut


class OperatorOverview(BaseModel):
    """``waiting``: active submissions with no attempt started yet; ``running_submissions``: the others."""

    waiting: int
    running_submissions: int
    queue: list[QueueItem]
    running: list[AttemptOut]
    pools: list[PoolOut]
    failures_by_blame: dict[str, int]
    recent_failures: list[AttemptOut]
    usage_by_submission: list[SubmissionUsage]
    usage_by_team: dict[str, UsageOut]
    total_usage: UsageOut


def _usage(u: Usage) -> UsageOut:
    return UsageOut(attempts=u.attempts, hours=u.hours, gpu_hours=u.gpu_hours, cost=u.cost)


def build_overview(system: System, recent: int = 20) -> OperatorOverview:
    store = system.store
    now = system.clock.now()
    submissions = store.list_submissions(limit=100000)
    by_id = {s.id: s for s in submissions}
    attempts = store.attempts()
    tasks_by_id = {}
    queue: list[QueueItem] = []
    workloads: dict[str, list[Workload]] = {}
    waiting_by_pool: Counter[str] = Counter()
    for s in sorted(submissions, key=lambda s: (s.created_at, s.id)):
        if not (s.status in ACTIVE or s.status is SubmissionStatus.SUBMITTED):
            continue
        tasks = store.route_tasks(s.id)
        tasks_by_id.update({t.id: t for t in tasks})
        track = system.tracks.get(s.track)
        pool = pool_name(system, track) if track else "default"
        pending = [t for t in tasks if t.status is RouteTaskStatus.PENDING]
        running = [t for t in tasks if t.status is RouteTaskStatus.RUNNING]
        waiting_by_pool[pool] += len(pending)
        remaining = sum(t.expected_s for t in pending) + sum(t.expected_s / 2 for t in running)
        longest = max((t.expected_s for t in pending), default=0.0)
        started = any(t.attempts > 0 for t in tasks)
        workloads.setdefault(pool, []).append(Workload(s.id, s.created_at, pool, remaining, longest, started))
        queue.append(
            QueueItem(
                submission=submission_out(s),
                state=state_out(describe_submission(s.status, count_routes([t.status for t in tasks]), s.reason)),
                pending=len(pending), running=len(running),
                done=sum(1 for t in tasks if t.status is RouteTaskStatus.DONE), total=len(tasks),
                queue_position=None, eta_s=None,
            )
        )  # fmt: skip
    pools_by_name: dict[str, tuple[Pool, int]] = {}
    for track in system.tracks.values():
        pools_by_name.setdefault(pool_name(system, track), (track.pool, pool_slots(system, track)))
    for item in queue:
        track = system.tracks.get(item.submission.track)
        if track is None:
            continue
        loads = workloads.get(pool_name(system, track), [])
        target = next(w for w in loads if w.submission_id == item.submission.id)
        est = estimate(target, loads, pool_slots(system, track))
        item.queue_position, item.eta_s = est.queue_position, est.eta_s

    live = [a for a in attempts if a.status is not AttemptStatus.ENDED]
    running_by_pool = Counter(a.pool for a in live)
    for a in live:
        if a.task_id not in tasks_by_id:
            tasks_by_id.update({t.id: t for t in store.route_tasks(a.submission_id)})
    pools = [
        PoolOut(name=name, slots=slots, running=running_by_pool.get(name, 0), waiting=waiting_by_pool.get(name, 0),
                gpus_per_attempt=pool.gpus_per_attempt, price_per_hour=pool.price_per_hour)
        for name, (pool, slots) in sorted(pools_by_name.items())
    ]  # fmt: skip
    failed = [a for a in attempts if a.outcome is not None and a.blame.value != "none"]
    failures = Counter(a.blame.value for a in failed)
    recent_failed = sorted(failed, key=lambda a: a.ended_at or a.created_at, reverse=True)[:recent]
    for a in recent_failed:
        if a.task_id not in tasks_by_id:
            tasks_by_id.update({t.id: t for t in store.route_tasks(a.submission_id)})

    owners: dict[int, tuple[str, Pool]] = {}
    for s in submissions:
        track = system.tracks.get(s.track)
        owners[s.id] = (s.team, track.pool if track else Pool())
    report = cost_report(attempts, owners, now)
    usage_rows = [
        SubmissionUsage(submission_id=sid, team=by_id[sid].team, track=by_id[sid].track,
                        status=by_id[sid].status.value, usage=_usage(u))
        for sid, u in sorted(report.by_submission.items(), key=lambda kv: (-kv[1].cost, -kv[1].hours, kv[0]))
    ]  # fmt: skip
    recent_out = []
    for a in recent_failed:
        out = attempt_out(a, tasks_by_id.get(a.task_id), now)
        out.team = by_id[a.submission_id].team if a.submission_id in by_id else None
        recent_out.append(out)
    waiting = sum(1 for item in queue if item.queue_position is not None)
    return OperatorOverview(
        waiting=waiting,
        running_submissions=len(queue) - waiting,
        queue=queue,
        running=[attempt_out(a, tasks_by_id.get(a.task_id), now) for a in live],
        pools=pools,
        failures_by_blame=dict(failures),
        recent_failures=recent_out,
        usage_by_submission=usage_rows,
        usage_by_team={team: _usage(u) for team, u in sorted(report.by_team.items())},
        total_usage=_usage(report.total),
    )
