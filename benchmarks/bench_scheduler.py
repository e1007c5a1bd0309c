"""Scheduler benchmark: makespan against the lower bound, lbcloud's global queue vs the reference's static split.

(a) one 20-route submission; (b) 5 concurrent submissions from 3 teams; each on 4 and 8 slots, with
the smoke gate off, strict, and work-conserving (the dispatcher's), against the reference's split.
Route durations are drawn from realistic CARLA Leaderboard 2.0 routes: 6-11 km
driven at 4-8 m/s with a simulation ratio (simulated / wall time) of 0.22-0.30, i.e. 45-200 min of wall
time each. The same draws feed both policies. lbcloud's policy is the real one
(:func:`lbcloud.domain.scheduling.plan_launches`, smoke route first) driven by an event simulation.

Run:  python benchmarks/bench_scheduler.py [--seeds 200] [--slots 4,8]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from dataclasses import dataclass

from lbcloud.domain.scheduling import (
    Candidate,
    Occupancy,
    makespan_lower_bound,
    plan_launches,
    plan_speculative,
    preemptions_needed,
    static_contiguous_split_makespan,
)

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


GATES = ("off", "strict", "conserving")


@dataclass
class _Run:
    end: float
    sid: int
    idx: int
    start: float
    speculative: bool


def simulate_lbcloud(subs: list[Sub], slots: int, gate: str = "conserving") -> dict[int, tuple[float, float]]:
    """Event simulation of the dispatcher's policy. Returns submission -> (first start, completion).

    ``gate``: ``off`` (no smoke route), ``strict`` (nothing else of a submission runs before its smoke
    route passed) or ``conserving`` (idle slots run gated routes speculatively, pre-empted first; the
    dispatcher's behaviour). Expected durations are the true ones with ±15 % noise: the scheduler
    does not know true durations in advance. Every smoke route passes here."""
    smoke = gate != "off"
    rng = random.Random(7)
    expected = {(s.sid, i): d * rng.uniform(0.85, 1.15) for s in subs for i, d in enumerate(s.durations)}
    pending = {(s.sid, i) for s in subs for i in range(len(s.durations))}
    smoke_done = {s.sid: not smoke for s in subs}
    running: list[_Run] = []
    by_sid = {s.sid: s for s in subs}
    first_start: dict[int, float] = {}
    finish: dict[int, float] = {}
    now = 0.0
    arrivals = sorted(s.arrival for s in subs)
    while pending or running:
        arrived = [s for s in subs if s.arrival <= now]
        cands = [
            Candidate(
                task_id=s.sid * 1000 + i, submission_id=s.sid, team=s.team, pool="p", order=s.sid,
                expected_s=expected[(s.sid, i)], position=i, smoke=smoke and i == 0,
                smoke_pending=not smoke_done[s.sid],
            )
            for s in arrived
            for i in range(len(s.durations))
            if (s.sid, i) in pending
        ]  # fmt: skip
        ordinary = [r for r in running if not r.speculative]
        running_team: dict[str, int] = {}
        for r in ordinary:
            running_team[by_sid[r.sid].team] = running_team.get(by_sid[r.sid].team, 0) + 1
        running_smoke = frozenset(r.sid for r in running if smoke and r.idx == 0)
        served: dict[str, int] = {}
        for s in arrived:
            if s.sid not in finish:
                started = sum(1 for i in range(len(s.durations)) if (s.sid, i) not in pending)
                served[s.team] = served.get(s.team, 0) + started
        occupancy = Occupancy(
            capacity={"p": slots}, running_by_pool={"p": len(ordinary)}, running_by_team=running_team,
            running_smoke=running_smoke, served_by_team=served,
        )  # fmt: skip
        plan = plan_launches(cands, occupancy)
        # speculative attempts give their slot back first: the latest started loses the least work
        for _ in range(preemptions_needed(plan, {"p": slots - len(running)}).get("p", 0)):
            victim = max((r for r in running if r.speculative), key=lambda r: r.start)
            running.remove(victim)
            pending.add((victim.sid, victim.idx))
        launches = [(c, False) for c in plan]
        if gate == "conserving":
            spare = slots - len(running) - len(plan)
            chosen = {c.task_id for c in plan}
            rest = [c for c in cands if c.task_id not in chosen]
            launches += [(c, True) for c in plan_speculative(rest, {"p": spare}, occupancy)]
        for c, speculative in launches:
            idx = c.task_id % 1000
            pending.discard((c.submission_id, idx))
            first_start.setdefault(c.submission_id, now)
            duration = by_sid[c.submission_id].durations[idx]
            running.append(_Run(now + duration, c.submission_id, idx, now, speculative))
        next_arrival = min((a for a in arrivals if a > now), default=None)
        soonest = min(running, key=lambda r: r.end) if running else None
        if soonest is not None and (next_arrival is None or soonest.end <= next_arrival):
            running.remove(soonest)
            now = soonest.end
            if soonest.idx == 0 and smoke:
                smoke_done[soonest.sid] = True
                for r in running:  # the gate opened: its speculative attempts are ordinary now
                    if r.sid == soonest.sid:
                        r.speculative = False
            sid = soonest.sid
            if not any(p[0] == sid for p in pending) and not any(r.sid == sid for r in running):
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


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, math.ceil(0.95 * len(xs)) - 1)]


def _row(name: str, xs: list[float]) -> str:
    return f"    {name:34s} mean {statistics.mean(xs):.3f}  p95 {_p95(xs):.3f}  max {max(xs):.3f}"


def bench_single(seeds: int, slots: int) -> dict[str, float]:
    ratios: dict[str, list[float]] = {gate: [] for gate in GATES}
    ref: list[float] = []
    for seed in range(seeds):
        durations = draw_durations(random.Random(seed))
        bound = makespan_lower_bound(durations, slots)
        sub = Sub(1, "a", 0.0, tuple(durations))
        for gate in GATES:
            ratios[gate].append(simulate_lbcloud([sub], slots, gate)[1][1] / bound)
        ref.append(static_contiguous_split_makespan(durations, slots) / bound)
    print(
        f"(a) one submission, {ROUTES} routes (the shortest is the smoke route), {slots} slots, {seeds} seeds"
        " — makespan / lower bound"
    )
    for gate in GATES:
        print(_row(f"lbcloud ({GATE_NAMES[gate]})", ratios[gate]))
    print(_row("reference static split", ref))
    return {gate: statistics.mean(xs) for gate, xs in ratios.items()}


def bench_concurrent(seeds: int, slots: int) -> dict[str, float]:
    teams = ["A", "A", "B", "B", "C"]
    ratios: dict[str, list[float]] = {gate: [] for gate in GATES}
    ref_ratio: list[float] = []
    done: dict[str, list[float]] = {gate: [] for gate in GATES}
    done_ref: list[float] = []
    per_team: dict[str, list[list[float]]] = {t: [[], [], [], []] for t in "ABC"}  # waits and results
    for seed in range(seeds):
        rng = random.Random(10_000 + seed)
        subs = [Sub(i + 1, teams[i], i * 600.0, tuple(draw_durations(rng))) for i in range(5)]
        bound = makespan_lower_bound([d for s in subs for d in s.durations], slots)
        for gate in GATES:
            ours = simulate_lbcloud(subs, slots, gate)
            ratios[gate].append(max(e for _, e in ours.values()) / bound)
            done[gate].extend((ours[s.sid][1] - s.arrival) / 3600 for s in subs)
        ref = simulate_reference(subs, slots)
        for s in subs:
            lists = per_team[s.team]
            lists[0].append((ours[s.sid][0] - s.arrival) / 3600)  # ours: the last gate, work-conserving
            lists[1].append((ref[s.sid][0] - s.arrival) / 3600)
            lists[2].append((ours[s.sid][1] - s.arrival) / 3600)
            lists[3].append((ref[s.sid][1] - s.arrival) / 3600)
        ref_ratio.append(max(e for _, e in ref.values()) / bound)
        done_ref.extend((ref[s.sid][1] - s.arrival) / 3600 for s in subs)
    print(f"(b) 5 submissions from 3 teams (A, A, B, B, C; 10 min apart), {slots} slots, {seeds} seeds")
    for gate in GATES:
        print(_row(f"lbcloud ({GATE_NAMES[gate]})", ratios[gate]))
    print(_row("reference static split", ref_ratio))
    print(
        f"    makespan / lower bound: lbcloud {statistics.mean(ratios['conserving']):.3f}, "
        f"reference {statistics.mean(ref_ratio):.3f}"
    )
    print(
        "    mean time to result over submissions: "
        + ", ".join(f"{GATE_NAMES[g]} {statistics.mean(done[g]):.2f} h" for g in GATES)
        + f", reference {statistics.mean(done_ref):.2f} h"
    )
    print(
        "    per team, mean hours: wait for the first route (lbcloud / reference), time to result (lbcloud / reference)"
    )
    for team, (wait, wait_ref, result, result_ref) in per_team.items():
        print(
            f"      team {team}: {statistics.mean(wait):6.2f} / {statistics.mean(wait_ref):6.2f}"
            f"    {statistics.mean(result):6.2f} / {statistics.mean(result_ref):6.2f}"
        )
    return {gate: statistics.mean(xs) for gate, xs in ratios.items()}


GATE_NAMES = {"off": "no smoke gate", "strict": "strict smoke gate", "conserving": "work-conserving gate"}
GOALS = {4: 1.05, 8: 1.15}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--slots", default="4,8", help="Comma-separated slot counts.")
    args = parser.parse_args()
    for slots in [int(x) for x in args.slots.split(",")]:
        single = bench_single(args.seeds, slots)
        bench_concurrent(max(3, args.seeds // 4), slots)
        goal = GOALS.get(slots)
        if goal is not None:
            verdict = "met" if single["conserving"] <= goal else "NOT met"
            print(f"    goal for one submission on {slots} slots with the gate on: <= {goal:.2f} ({verdict})\n")


if __name__ == "__main__":
    main()
