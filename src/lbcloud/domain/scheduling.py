"""The global route scheduler's policy (pure).

One queue of route tasks across all submissions. Each call to :func:`plan_launches` decides which
runnable tasks to start now, given what is running:

1. **Capacity**: never more running attempts in a pool than its slots, never more per team than
   the per-team limit.
2. **Smoke gate**: while a submission has an unfinished smoke route (a public route run first), only
   that route may run for it; its other routes wait until the smoke route has a record. Smoke
   routes go before other work, so every new submission gets its first feedback within one slot
   turnover, and a broken agent fails fast even on a busy cluster.
3. **Fair share between teams**: the next slot goes to the team with the fewest running attempts
   (counting those planned in this call); ties go to the team that has been served least (route
   tasks started for its waiting submissions), then to the team whose waiting submission is oldest.
4. **Inside a team**: its oldest submission first (FIFO), so no submission starves.
5. **Inside a submission**: smoke route first, then the longest expected route first (it bounds the
   makespan), then route position.
6. **Work-conserving gate**: a slot that nothing above can use runs a gated submission's longest
   routes *speculatively* (:func:`plan_speculative`). Speculative attempts give their slot back
   first when other work needs it (:func:`preemptions_needed`), and are cancelled, neither counted
   nor billed to the team, if the smoke route fails; once it passes they are ordinary attempts.

:func:`launch_window` keeps a decision's cost proportional to the free slots rather than to the
queue: from a summary of the queued submissions it names the few submissions, and how many of each
one's best tasks, that :func:`plan_launches` could possibly pick now, so only those are read.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Candidate:
    """A route task that could start now.

    ``order`` is the submission's global arrival order (smaller = older). ``smoke_pending`` is True
    for every task of a submission whose smoke route has no record yet.
    """

    task_id: int
    submission_id: int
    team: str
    pool: str
    order: int
    expected_s: float
    position: int = 0
    smoke: bool = False
    smoke_pending: bool = False


@dataclass(frozen=True, slots=True)
class Occupancy:
    """What is running now, and how much room there is."""

    capacity: Mapping[str, int]
    running_by_pool: Mapping[str, int]
    running_by_team: Mapping[str, int]
    running_smoke: frozenset[int] = frozenset()
    team_limit: int | None = None
    served_by_team: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueuedSubmission:
    """A queued submission with pending route tasks, as :func:`launch_window` sees it.

    ``order`` is the global arrival order (as in :class:`Candidate`); ``smoke_pending`` is True when
    its smoke route has not started yet (then only that route may start), ``smoke_running`` when it
    is running now (then none may).
    """

    submission_id: int
    team: str
    pool: str
    order: int
    pending: int
    smoke_pending: bool = False
    smoke_running: bool = False


def launch_window(queued: Iterable[QueuedSubmission], occupancy: Occupancy) -> dict[int, int]:
    """Submission id -> how many of its best pending tasks (in scheduler order) a decision must see.

    :func:`plan_launches` over the tasks named here returns exactly what it returns over the whole
    queue: per team and pool it launches at most ``free`` tasks, so it never gets past the first
    ``free + 1`` smoke-gated submissions nor past the first ``free + 1`` other tasks, oldest
    submission first. Seeing one more than it can take keeps every submission it touches non-empty,
    so the team ordering (which looks at a team's oldest waiting submission) is unchanged too.
    """
    free = {pool: max(0, cap - occupancy.running_by_pool.get(pool, 0)) for pool, cap in occupancy.capacity.items()}
    smoke_seen: dict[tuple[str, str], int] = defaultdict(int)
    tasks_seen: dict[tuple[str, str], int] = defaultdict(int)
    window: dict[int, int] = {}
    for q in sorted(queued, key=lambda q: (q.order, q.submission_id)):
        room = free.get(q.pool, 0)
        if room <= 0 or q.smoke_running or q.pending <= 0:
            continue
        need = room + 1
        group = (q.team, q.pool)
        if q.smoke_pending:
            if smoke_seen[group] < need:
                smoke_seen[group] += 1
                window[q.submission_id] = 1
        elif tasks_seen[group] < need:
            take = min(q.pending, need)
            tasks_seen[group] += take
            window[q.submission_id] = take
    return window


def _task_key(c: Candidate) -> tuple[int, float, int, int]:
    return (0 if c.smoke else 1, -c.expected_s, c.position, c.task_id)


def plan_launches(candidates: Iterable[Candidate], occupancy: Occupancy) -> list[Candidate]:
    """Return the tasks to launch now, in launch order (see the module docstring for the policy).

    ``occupancy.running_smoke`` holds the submissions whose smoke route is running right now: none
    of their tasks may start.
    """
    free = {pool: max(0, cap - occupancy.running_by_pool.get(pool, 0)) for pool, cap in occupancy.capacity.items()}
    if not any(free.values()):
        return []
    running_team: dict[str, int] = defaultdict(int, occupancy.running_by_team)

    # team -> submission order -> pool -> sorted task list (as a reversed stack)
    by_team: dict[str, dict[tuple[int, int], dict[str, list[Candidate]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for c in candidates:
        if free.get(c.pool, 0) <= 0 or c.submission_id in occupancy.running_smoke:
            continue
        if c.smoke_pending and not c.smoke:
            continue
        by_team[c.team][(c.order, c.submission_id)][c.pool].append(c)
    for subs in by_team.values():
        for pools in subs.values():
            for tasks in pools.values():
                tasks.sort(key=_task_key, reverse=True)

    served: dict[str, int] = defaultdict(int, occupancy.served_by_team)

    def key(team: str) -> tuple[int, int, int, tuple[int, int], str]:
        subs = by_team[team]
        smoke_ready = any(tasks and tasks[-1].smoke for pools in subs.values() for tasks in pools.values())
        return (0 if smoke_ready else 1, running_team[team], served[team], min(subs), team)

    heap = [key(t) for t in by_team]
    heapq.heapify(heap)
    plan: list[Candidate] = []
    limit = occupancy.team_limit
    while heap:
        team = heapq.heappop(heap)[-1]
        if limit is not None and running_team[team] >= limit:
            continue
        picked = _pick_for_team(by_team[team], free)
        if picked is None:
            continue
        plan.append(picked)
        free[picked.pool] -= 1
        running_team[team] += 1
        served[team] += 1
        if picked.smoke:
            # the rest of this submission waits for its smoke route
            by_team[team].pop((picked.order, picked.submission_id), None)
        if by_team[team]:
            heapq.heappush(heap, key(team))
        if not any(free.values()):
            break
    return plan


def _pick_for_team(
    subs: dict[tuple[int, int], dict[str, list[Candidate]]], free: Mapping[str, int]
) -> Candidate | None:
    """Take a smoke route of the team if one can start (oldest submission first), else the best task of
    the team's oldest submission that has a task in a pool with room."""
    for key in sorted(subs):
        for pool, tasks in subs[key].items():
            if tasks and tasks[-1].smoke and free.get(pool, 0) > 0:
                return _take(subs, key, pool)
    for key in sorted(subs):
        pools = subs[key]
        best: Candidate | None = None
        for pool, tasks in pools.items():
            if tasks and free.get(pool, 0) > 0 and (best is None or _task_key(tasks[-1]) < _task_key(best)):
                best = tasks[-1]
        if best is not None:
            return _take(subs, key, best.pool)
    return None


def _take(subs: dict[tuple[int, int], dict[str, list[Candidate]]], key: tuple[int, int], pool: str) -> Candidate:
    pools = subs[key]
    picked = pools[pool].pop()
    if not pools[pool]:
        del pools[pool]
    if not pools:
        del subs[key]
    return picked


def plan_speculative(candidates: Iterable[Candidate], free: Mapping[str, int], occupancy: Occupancy) -> list[Candidate]:
    """Speculative launches for slots left free after :func:`plan_launches`: non-smoke tasks of
    smoke-gated submissions, oldest submission first and longest route first inside it, teams with
    fewer running attempts first, within the per-team limit. ``free`` is pool -> free slots now."""
    room = {pool: n for pool, n in free.items() if n > 0}
    if not room:
        return []
    running_team: dict[str, int] = defaultdict(int, occupancy.running_by_team)
    queues: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        if c.smoke or not c.smoke_pending or room.get(c.pool, 0) <= 0:
            continue
        queues[c.team].append(c)
    for tasks in queues.values():
        tasks.sort(key=lambda c: (c.order, c.submission_id, -c.expected_s, c.position, c.task_id), reverse=True)
    plan: list[Candidate] = []
    limit = occupancy.team_limit
    while queues and any(room.values()):
        team = min(queues, key=lambda t: (running_team[t], queues[t][-1].order, t))
        if limit is not None and running_team[team] >= limit:
            del queues[team]
            continue
        tasks = queues[team]
        picked = None
        while tasks and picked is None:
            c = tasks.pop()
            if room.get(c.pool, 0) > 0:
                picked = c
        if not tasks:
            del queues[team]
        if picked is None:
            continue
        plan.append(picked)
        room[picked.pool] -= 1
        running_team[team] += 1
    return plan


def preemptions_needed(plan: Iterable[Candidate], free: Mapping[str, int]) -> dict[str, int]:
    """Pool -> how many speculative attempts must give their slot back so ``plan`` (ordinary work,
    planned as if speculative slots were free) can start; ``free`` is pool -> truly free slots."""
    wanted: dict[str, int] = defaultdict(int)
    for c in plan:
        wanted[c.pool] += 1
    return {pool: n - free.get(pool, 0) for pool, n in wanted.items() if n > free.get(pool, 0)}


def static_contiguous_split_makespan(durations: list[float], workers: int) -> float:
    """Makespan of the reference deployment's plan: contiguous ranges per worker, slowest wins."""
    n = len(durations)
    workers = max(1, min(workers, n))
    starts = [(i * n + workers - 1) // workers for i in range(workers)] + [n]
    return max(sum(durations[starts[i] : starts[i + 1]]) for i in range(workers)) if n else 0.0


def makespan_lower_bound(durations: list[float], slots: int) -> float:
    """max(longest route, total / slots): no schedule can beat it."""
    if not durations:
        return 0.0
    return max(*durations, sum(durations) / max(1, slots))
