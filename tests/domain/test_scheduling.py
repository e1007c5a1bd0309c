"""The global scheduler's policy: capacity, smoke gate, fair share, longest first, no starvation."""

from __future__ import annotations

from collections import Counter, defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from lbcloud.domain.scheduling import (
    Candidate,
    Occupancy,
    QueuedSubmission,
    launch_window,
    makespan_lower_bound,
    plan_launches,
    static_contiguous_split_makespan,
)


def _cands(
    team: str, submission: int, order: int, durations: list[float], smoke_pending: bool = False
) -> list[Candidate]:
    return [
        Candidate(
            task_id=submission * 1000 + i,
            submission_id=submission,
            team=team,
            pool="gpu",
            order=order,
            expected_s=d,
            position=i,
            smoke=smoke_pending and i == 0,
            smoke_pending=smoke_pending,
        )
        for i, d in enumerate(durations)
    ]


def test_longest_expected_route_goes_first_inside_a_submission() -> None:
    cands = _cands("a", 1, 0, [10, 50, 30, 40])
    plan = plan_launches(cands, Occupancy(capacity={"gpu": 2}, running_by_pool={}, running_by_team={}))
    assert [c.expected_s for c in plan] == [50, 40]


def test_smoke_route_runs_alone_before_the_rest_of_its_submission() -> None:
    cands = _cands("a", 1, 0, [5, 50, 30], smoke_pending=True)
    plan = plan_launches(cands, Occupancy(capacity={"gpu": 3}, running_by_pool={}, running_by_team={}))
    assert [c.task_id for c in plan] == [1000]
    assert plan[0].smoke


def test_nothing_of_a_submission_starts_while_its_smoke_route_runs() -> None:
    cands = _cands("a", 1, 0, [50, 30], smoke_pending=True)[1:]
    occupancy = Occupancy(
        capacity={"gpu": 3}, running_by_pool={"gpu": 1}, running_by_team={"a": 1}, running_smoke=frozenset({1})
    )
    assert plan_launches(cands, occupancy) == []


def test_the_team_with_fewest_running_attempts_gets_the_next_slot() -> None:
    cands = _cands("busy", 1, 0, [10, 10, 10]) + _cands("idle", 2, 1, [10, 10])
    occupancy = Occupancy(capacity={"gpu": 4}, running_by_pool={"gpu": 3}, running_by_team={"busy": 3})
    plan = plan_launches(cands, occupancy)
    assert [c.team for c in plan] == ["idle"]


def test_per_team_limit_is_respected() -> None:
    cands = _cands("a", 1, 0, [10] * 5) + _cands("b", 2, 1, [10] * 5)
    plan = plan_launches(cands, Occupancy(capacity={"gpu": 8}, running_by_pool={}, running_by_team={}, team_limit=2))
    assert Counter(c.team for c in plan) == {"a": 2, "b": 2}


def test_oldest_submission_of_a_team_goes_first() -> None:
    cands = _cands("a", 2, 5, [99]) + _cands("a", 1, 1, [1])
    plan = plan_launches(cands, Occupancy(capacity={"gpu": 1}, running_by_pool={}, running_by_team={}))
    assert plan[0].submission_id == 1


def test_a_full_pool_launches_nothing() -> None:
    cands = _cands("a", 1, 0, [10])
    assert plan_launches(cands, Occupancy(capacity={"gpu": 2}, running_by_pool={"gpu": 2}, running_by_team={})) == []


def test_reference_split_is_no_better_than_the_lower_bound() -> None:
    durations = [1.0, 1.0, 1.0, 10.0]
    assert static_contiguous_split_makespan(durations, 2) == 11.0
    assert makespan_lower_bound(durations, 2) == 10.0


candidate_sets = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(min_value=1, max_value=6),
        st.lists(st.floats(min_value=1, max_value=100), min_size=1, max_size=6),
        st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


def _build(spec: list[tuple[str, int, list[float], bool]]) -> list[Candidate]:
    out: list[Candidate] = []
    seen: set[int] = set()
    for order, (team, sub, durations, smoke) in enumerate(spec):
        sub_id = order * 10 + sub
        if sub_id in seen:
            continue
        seen.add(sub_id)
        out += _cands(team, sub_id, order, durations, smoke)
    return out


@settings(max_examples=200, deadline=None)
@given(candidate_sets, st.integers(min_value=1, max_value=10), st.integers(min_value=0, max_value=5))
def test_never_over_capacity_and_each_task_at_most_once(
    spec: list[tuple[str, int, list[float], bool]], capacity: int, running: int
) -> None:
    cands = _build(spec)
    running = min(running, capacity)
    plan = plan_launches(
        cands, Occupancy(capacity={"gpu": capacity}, running_by_pool={"gpu": running}, running_by_team={})
    )
    assert len(plan) <= capacity - running
    assert len({c.task_id for c in plan}) == len(plan)
    # the smoke gate: a submission with a pending smoke route launches only that route
    for c in plan:
        if c.smoke_pending:
            assert c.smoke


@settings(max_examples=200, deadline=None)
@given(candidate_sets, st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=4))
def test_fair_share_keeps_teams_within_one_slot_of_each_other(
    spec: list[tuple[str, int, list[float], bool]], capacity: int, limit: int
) -> None:
    cands = _build(spec)
    plan = plan_launches(
        cands, Occupancy(capacity={"gpu": capacity}, running_by_pool={}, running_by_team={}, team_limit=limit)
    )
    per_team = Counter(c.team for c in plan)
    smoke_per_team = Counter(c.team for c in plan if c.smoke)
    assert all(n <= limit for n in per_team.values())
    # a team that got fewer slots than another must have run out of launchable work, unless the
    # difference is made of smoke routes (they go first, one per submission)
    launched = {c.task_id for c in plan}
    for team, count in per_team.items():
        for other, other_count in per_team.items():
            if other_count - smoke_per_team[other] > count + 1:
                leftover = [
                    c
                    for c in cands
                    if c.team == team and c.task_id not in launched and (c.smoke or not c.smoke_pending)
                ]
                smoke_blocked = {c.submission_id for c in plan if c.smoke}
                leftover = [c for c in leftover if c.submission_id not in smoke_blocked]
                assert not leftover or count >= limit, (team, other)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 5)), min_size=2, max_size=6))
def test_no_starvation_every_task_eventually_runs(teams: list[tuple[str, int]]) -> None:
    """Repeatedly planning with tasks finishing one tick later runs every task in bounded ticks."""
    cands: list[Candidate] = []
    for order, (team, n) in enumerate(teams):
        cands += _cands(team, order + 1, order, [float(i + 1) for i in range(n)])
    remaining = {c.task_id: c for c in cands}
    ticks = 0
    while remaining and ticks < 100:
        plan = plan_launches(
            list(remaining.values()), Occupancy(capacity={"gpu": 2}, running_by_pool={}, running_by_team={})
        )
        assert plan, "work remains but nothing was planned"
        for c in plan:
            del remaining[c.task_id]
        ticks += 1
    assert not remaining
    assert ticks <= (len(cands) + 1) // 2


def test_smoke_routes_of_new_submissions_go_before_other_teams_private_routes() -> None:
    old = _cands("old", 1, 0, [100, 90, 80])
    new = _cands("new", 2, 1, [5, 60], smoke_pending=True)
    occupancy = Occupancy(capacity={"gpu": 1}, running_by_pool={}, running_by_team={}, served_by_team={"old": 0})
    plan = plan_launches(old + new, occupancy)
    assert [(c.team, c.smoke) for c in plan] == [("new", True)]


def test_a_team_served_less_wins_a_tie_on_running_attempts() -> None:
    cands = _cands("first", 1, 0, [10, 10]) + _cands("second", 2, 1, [10, 10])
    occupancy = Occupancy(
        capacity={"gpu": 1}, running_by_pool={}, running_by_team={}, served_by_team={"first": 5, "second": 1}
    )
    assert [c.team for c in plan_launches(cands, occupancy)] == ["second"]


def test_teams_take_turns_on_few_slots() -> None:
    """With 1 slot and 3 teams, repeated decisions rotate through the teams instead of draining the oldest."""
    remaining = {c.task_id: c for t, team in enumerate("abc") for c in _cands(team, t + 1, t, [10.0] * 3)}
    served: Counter[str] = Counter()
    order = []
    while remaining:
        occupancy = Occupancy(capacity={"gpu": 1}, running_by_pool={}, running_by_team={}, served_by_team=served)
        (picked,) = plan_launches(list(remaining.values()), occupancy)
        order.append(picked.team)
        served[picked.team] += 1
        del remaining[picked.task_id]
    assert order == ["a", "b", "c"] * 3


@st.composite
def queues(draw: st.DrawFn) -> tuple[list[Candidate], list[QueuedSubmission], Occupancy]:
    """A whole queue (several teams, pools and smoke states) and an occupancy of the pools."""
    pools = ["p0", "p1", "p2"][: draw(st.integers(1, 3))]
    capacity = {p: draw(st.integers(0, 6)) for p in pools}
    running_by_pool = {p: draw(st.integers(0, capacity[p])) for p in pools}
    teams = ["a", "b", "c", "d"][: draw(st.integers(1, 4))]
    candidates: list[Candidate] = []
    queued: list[QueuedSubmission] = []
    running_smoke: set[int] = set()
    task_id = 0
    for order in range(draw(st.integers(0, 14))):
        team, pool = draw(st.sampled_from(teams)), draw(st.sampled_from(pools))
        pending = draw(st.integers(1, 9))
        smoke_state = draw(st.sampled_from(["done", "pending", "running"]))
        if smoke_state == "running":
            running_smoke.add(order)
        tasks = []
        for position in range(pending):
            task_id += 1
            tasks.append(
                Candidate(
                    task_id=task_id, submission_id=order, team=team, pool=pool, order=order,
                    expected_s=float(draw(st.integers(1, 4))), position=position,
                    smoke=smoke_state == "pending" and position == 0,
                    smoke_pending=smoke_state != "done",
                )
            )  # fmt: skip
        candidates += draw(st.permutations(tasks))
        queued.append(
            QueuedSubmission(
                order, team, pool, order, pending,
                smoke_pending=smoke_state == "pending", smoke_running=smoke_state == "running",
            )
        )  # fmt: skip
    running_by_team = {t: draw(st.integers(0, 3)) for t in teams}
    occupancy = Occupancy(
        capacity=capacity,
        running_by_pool=running_by_pool,
        running_by_team=running_by_team,
        running_smoke=frozenset(running_smoke),
        team_limit=draw(st.none() | st.integers(1, 5)),
        served_by_team={t: draw(st.integers(0, 6)) for t in teams},
    )
    return candidates, queued, occupancy


@settings(max_examples=400, deadline=None)
@given(queues())
def test_a_decision_over_the_launch_window_equals_one_over_the_whole_queue(
    queue: tuple[list[Candidate], list[QueuedSubmission], Occupancy],
) -> None:
    candidates, queued, occupancy = queue
    window = launch_window(queued, occupancy)
    best: dict[int, list[Candidate]] = defaultdict(list)
    for c in sorted(candidates, key=lambda c: (0 if c.smoke else 1, -c.expected_s, c.position, c.task_id)):
        best[c.submission_id].append(c)
    seen = [c for sub, limit in window.items() for c in best[sub][:limit]]
    assert plan_launches(seen, occupancy) == plan_launches(candidates, occupancy)


def test_the_launch_window_grows_with_free_slots_not_with_the_queue() -> None:
    queued = [QueuedSubmission(i, f"team{i % 50}", "default", i, 20) for i in range(1000)]
    occupancy = Occupancy(capacity={"default": 64}, running_by_pool={"default": 62}, running_by_team={})
    window = launch_window(queued, occupancy)
    assert sum(window.values()) == 50 * 3  # each team: its oldest submission's three best tasks
    assert set(window) == set(range(50))
    full = Occupancy(capacity={"default": 64}, running_by_pool={"default": 64}, running_by_team={})
    assert launch_window(queued, full) == {}
