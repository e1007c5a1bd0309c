"""Scheduler benchmark: makespan against the lower bound, lbcloud's global queue vs the reference's static split.

(a) one 20-route submission on 4 slots; (b) 5 concurrent submissions from 3 teams on 4 slots, with
per-team waiting time. Route durations are drawn from realistic CARLA Leaderboard 2.0 routes: 6-11 km
driven at 4-8 m/s with a simulation ratio (simulated / wall time) of 0.22-0.30, i.e. 45-200 min of wall
time each. The same draws feed both policies. lbcloud's policy is the real one
(:func:`lbcloud.domain.scheduling.plan_launches`, smoke route first) driven by an event simulation.

Run:  python benchmarks/bench_scheduler.py [--seeds 200]
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
from dataclasses import dataclass

from lbcloud.domain.scheduling import (
    Candidate,
    Occupancy,
    makespan_lower_bound,
    plan_launches,
    static_contiguous_split_makespan,
)

SLOTS = 4
ROUTES = 20


def draw_durations(rng: random.Random, n: int = ROUTES) -> list[float]:
    """Wall-clock seconds per route; the shortest comes first, as the track's public smoke route."""
    out = []
    for _ in range(n):
        length = rng.uniform(6000, 11000)
        speed = rng.uniform(4, 8)
        ratio = rng.uniform(0.22, 0.30)
        out.append(length / speed / ratio)
    shortest = out.index(min(out))
    out.insert(0, out.pop(shortest))
    return out


@dataclass(frozen=True)
class Sub:
    sid: int
    team: str
    arrival: float
    durations: tuple[float, ...]


def simulate_lbcloud(subs: list[Sub], slots: int, smoke: bool = True) -> dict[int, tuple[float, float]]:
    """Event simulation of the dispatcher's policy. Returns submission -> (first start, completion).

    Expected durations are the route lengths' proxy with ±15 % noise: the scheduler does not know
    true durations in advance."""
    rng = random.Random(7)
    expected = {(s.sid, i): d * rng.uniform(0.85, 1.15) for s in subs for i, d in enumerate(s.durations)}
    pending = {(s.sid, i) for s in subs for i in range(len(s.durations))}
    smoke_done = {s.sid: not smoke for s in subs}
    running: list[tuple[float, int, int]] = []  # (end, sid, idx)
    by_sid = {s.sid: s for s in subs}
    first_start: dict[int, float] = {}
    finish: dict[int, float] = {}
    now = 0.0
    arrivals = sorted(s.arrival for s in subs)
    while pending or running:
        arrived = [s for s in subs if s.arrival <= now]
        cands = []
        for s in arrived:
            for i in range(len(s.durations)):
                if (s.sid, i) in pending:
                    cands.append(
                        Candidate(
                            task_id=s.sid * 1000 + i,
                            submission_id=s.sid,
                            team=s.team,
                            pool="p",
                            order=s.sid,
                            expected_s=expected[(s.sid, i)],
                            position=i,
                            smoke=smoke and i == 0,
                            smoke_pending=not smoke_done[s.sid],
                        )
                    )
        running_team: dict[str, int] = {}
        running_smoke = set()
        for _, sid, idx in running:
            running_team[by_sid[sid].team] = running_team.get(by_sid[sid].team, 0) + 1
            if smoke and idx == 0:
                running_smoke.add(sid)
        served: dict[str, int] = {}
        for s in arrived:
            if s.sid not in finish:
                started = sum(1 for i in range(len(s.durations)) if (s.sid, i) not in pending)
                served[s.team] = served.get(s.team, 0) + started
        plan = plan_launches(
            cands,
            Occupancy(
                capacity={"p": slots},
                running_by_pool={"p": len(running)},
                running_by_team=running_team,
                running_smoke=frozenset(running_smoke),
                served_by_team=served,
            ),
        )
        for c in plan:
            idx = c.task_id % 1000
            pending.discard((c.submission_id, idx))
            first_start.setdefault(c.submission_id, now)
            heapq.heappush(running, (now + by_sid[c.submission_id].durations[idx], c.submission_id, idx))
        next_arrival = min((a for a in arrivals if a > now), default=None)
        if running and (next_arrival is None or running[0][0] <= next_arrival):
            end, sid, idx = heapq.heappop(running)
            now = end
            if idx == 0:
                smoke_done[sid] = True
            if not any(p[0] == sid for p in pending) and not any(r[1] == sid for r in running):
                finish[sid] = now
        elif next_arrival is not None:
            now = next_arrival
        else:
            break
    return {sid: (first_start[sid], finish[sid]) for sid in finish}


def simulate_reference(subs: list[Sub], slots: int, workers: int = 4) -> dict[int, tuple[float, float]]:
    """The reference: each submission becomes ``workers`` Jobs of contiguous ranges; pods wait FIFO
    for one of ``slots`` GPU nodes; a submission ends with its slowest range."""
    jobs: list[tuple[float, int, float]] = []  # (arrival, sid, duration)
    for s in subs:
        n = len(s.durations)
        w = min(workers, n)
        starts = [(i * n + w - 1) // w for i in range(w)] + [n]
        for i in range(w):
            jobs.append((s.arrival, s.sid, sum(s.durations[starts[i] : starts[i + 1]])))
    jobs.sort(key=lambda j: (j[0], j[1]))
    free = [0.0] * slots
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for arrival, sid, duration in jobs:
        slot = min(range(slots), key=lambda k: free[k])
        start = max(free[slot], arrival)
        free[slot] = start + duration
        first[sid] = min(first.get(sid, start), start)
        last[sid] = max(last.get(sid, 0.0), start + duration)
    return {sid: (first[sid], last[sid]) for sid in last}


def bench_single(seeds: int) -> None:
    ours, ours_nosmoke, ref = [], [], []
    for seed in range(seeds):
        durations = draw_durations(random.Random(seed))
        bound = makespan_lower_bound(durations, SLOTS)
        sub = Sub(1, "a", 0.0, tuple(durations))
        ours.append(simulate_lbcloud([sub], SLOTS)[1][1] / bound)
        ours_nosmoke.append(simulate_lbcloud([sub], SLOTS, smoke=False)[1][1] / bound)
        ref.append(static_contiguous_split_makespan(durations, SLOTS) / bound)
    print(
        f"(a) one submission, {ROUTES} routes (shortest is the smoke route), {SLOTS} slots, {seeds} seeds"
        " — makespan / lower bound"
    )
    for name, xs in (
        ("lbcloud (smoke route first)", ours),
        ("lbcloud (no smoke gate)", ours_nosmoke),
        ("reference static split", ref),
    ):
        print(f"    {name:30s} mean {statistics.mean(xs):.3f}  p50 {statistics.median(xs):.3f}  max {max(xs):.3f}")
    print(f"    reference / lbcloud mean makespan: {statistics.mean(ref) / statistics.mean(ours):.2f}x")


def bench_concurrent(seeds: int) -> None:
    teams = ["A", "A", "B", "B", "C"]
    ours_ratio, ref_ratio = [], []
    wait_ours: dict[str, list[float]] = {t: [] for t in "ABC"}
    wait_ref: dict[str, list[float]] = {t: [] for t in "ABC"}
    done_ours: dict[str, list[float]] = {t: [] for t in "ABC"}
    done_ref: dict[str, list[float]] = {t: [] for t in "ABC"}
    for seed in range(seeds):
        rng = random.Random(10_000 + seed)
        subs = [Sub(i + 1, teams[i], i * 600.0, tuple(draw_durations(rng))) for i in range(5)]
        all_durations = [d for s in subs for d in s.durations]
        bound = makespan_lower_bound(all_durations, SLOTS)
        ours = simulate_lbcloud(subs, SLOTS)
        ref = simulate_reference(subs, SLOTS)
        ours_ratio.append(max(e for _, e in ours.values()) / bound)
        ref_ratio.append(max(e for _, e in ref.values()) / bound)
        for s in subs:
            wait_ours[s.team].append((ours[s.sid][0] - s.arrival) / 3600)
            wait_ref[s.team].append((ref[s.sid][0] - s.arrival) / 3600)
            done_ours[s.team].append((ours[s.sid][1] - s.arrival) / 3600)
            done_ref[s.team].append((ref[s.sid][1] - s.arrival) / 3600)
    print(f"\n(b) 5 submissions from 3 teams (A, A, B, B, C; 10 min apart), {SLOTS} slots, {seeds} seeds")
    print(
        f"    makespan / lower bound: lbcloud {statistics.mean(ours_ratio):.3f}, "
        f"reference {statistics.mean(ref_ratio):.3f}"
    )
    all_ours = [x for t in "ABC" for x in done_ours[t]]
    all_ref = [x for t in "ABC" for x in done_ref[t]]
    print(
        f"    mean time to result over submissions: lbcloud {statistics.mean(all_ours):.2f} h, "
        f"reference {statistics.mean(all_ref):.2f} h"
    )
    print(
        "    per team, mean hours:   wait for first route (lbcloud / reference)   time to result (lbcloud / reference)"
    )
    for t in "ABC":
        print(
            f"      team {t}:              {statistics.mean(wait_ours[t]):6.2f} / {statistics.mean(wait_ref[t]):6.2f}"
            f"                          {statistics.mean(done_ours[t]):6.2f} / {statistics.mean(done_ref[t]):6.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    args = parser.parse_args()
    bench_single(args.seeds)
    bench_concurrent(max(20, args.seeds // 4))


if __name__ == "__main__":
    main()
