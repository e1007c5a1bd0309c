"""The work-conserving smoke gate over the real store with a scripted backend: idle slots run a gated
submission's longest routes speculatively, pre-empted first, cancelled and not counted if the smoke
route fails; the shortest public route is the default smoke route."""

from __future__ import annotations

from pathlib import Path

from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.route_catalog import FileRouteCatalog
from lbcloud.adapters.store.sql import SqlStateStore
from lbcloud.domain.scheduling import Candidate, Occupancy, plan_speculative, preemptions_needed
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import AttemptOutcome, RouteTaskStatus
from lbcloud.domain.tracks import Track
from lbcloud.services.dispatcher import Dispatcher
from lbcloud.services.ports import ArtifactStore
from tests.services.dispatch_helpers import ScriptedBackend, make_track

S = SubmissionStatus


def _dispatcher(store: SqlStateStore, artifacts: ArtifactStore, track: Track, backend: ScriptedBackend,
                slots: int = 3) -> Dispatcher:  # fmt: skip
    return Dispatcher(
        store=store, artifacts=artifacts, backend=backend, tracks={track.name: track}, catalog=FileRouteCatalog(),
        clock=SystemClock(), owner="d1", capacity={"default": slots},
    )  # fmt: skip


def _submit(store: SqlStateStore, track: Track, team: str = "alpha") -> int:
    sub, _ = store.create_submission(
        NewSubmission(team=team, track=track.name, agent=AgentRef(AgentKind.LOCAL, f"/{team}.py", digest=team))
    )
    return sub.id


def test_idle_slots_run_the_gated_submissions_longest_routes_which_stay_once_the_smoke_route_passes(
    store: SqlStateStore, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    track = make_track(tmp_path)  # smoke route 0 (100 m); 1 is 900 m, 2 is 500 m
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    d.tick()
    assert [s.route_id for s in backend.launched] == ["0", "1", "2"], "no slot idles behind the gate"
    assert set(d.speculative) == {backend.launched[1].attempt_id, backend.launched[2].attempt_id}
    backend.finish(backend.launched[0])
    d.tick()
    assert d.speculative == {}, "the gate opened: they are ordinary attempts now"
    assert backend.cancelled == []
    for spec in backend.running():
        backend.finish(spec)
    d.tick()
    assert store.get_submission(sid).status is S.FINISHED
    assert len(backend.launched) == 3, "nothing ran twice"


def test_a_failed_smoke_route_cancels_the_speculative_runs_without_counting_them(
    store: SqlStateStore, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    track = make_track(tmp_path)
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    d.tick()
    smoke, *speculative = backend.launched
    backend.finish(smoke, rc=0, failure="Agent couldn't be set up")
    d.tick()
    sub = store.get_submission(sid)
    assert sub.status is S.FAILED and sub.reason is not None and "smoke route 0" in sub.reason, "fails fast"
    d.tick()
    d.tick()
    assert sorted(backend.cancelled) == sorted(s.attempt_id for s in speculative)
    for spec in speculative:
        attempt = store.get_attempt(spec.attempt_id)
        assert attempt.outcome is AttemptOutcome.CANCELLED and not attempt.counted
    statuses = {t.route_id: t.status for t in store.route_tasks(sid)}
    assert statuses == {"0": RouteTaskStatus.DONE, "1": RouteTaskStatus.CANCELLED, "2": RouteTaskStatus.CANCELLED}
    assert all(t.counted_retries == 0 for t in store.route_tasks(sid))


def test_speculative_runs_give_their_slot_to_other_work_first_and_run_again_later(
    store: SqlStateStore, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    track = make_track(tmp_path)
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend)
    first = _submit(store, track, "alpha")
    d.tick()
    assert len(backend.running()) == 3
    second = _submit(store, track, "beta")  # its smoke route is ordinary work: it needs a slot
    d.tick()
    latest = backend.launched[2]  # the speculative run started last loses the least work
    assert backend.cancelled == [latest.attempt_id]
    d.tick()  # the cancelled run ended: its slot goes to beta's smoke route
    beta = [s for s in backend.launched if s.submission_id == second]
    assert [s.route_id for s in beta] == ["0"]
    task = next(t for t in store.route_tasks(first) if t.route_id == latest.route_id)
    assert task.status in (RouteTaskStatus.PENDING, RouteTaskStatus.RUNNING) and task.counted_retries == 0
    for _ in range(8):
        for spec in backend.running():
            backend.finish(spec)
        d.tick()
    assert store.get_submission(first).status is S.FINISHED
    assert store.get_submission(second).status is S.FINISHED
    preempted = store.get_attempt(latest.attempt_id)
    assert preempted.outcome is AttemptOutcome.CANCELLED and not preempted.counted


def test_the_shortest_public_route_is_the_smoke_route_when_the_track_names_none(
    store: SqlStateStore, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    track = make_track(tmp_path, smoke=None, public_routes=("1", "2"))  # 900 m and 500 m
    d = _dispatcher(store, artifacts, track, ScriptedBackend())
    sid = _submit(store, track)
    d.tick()
    assert [t.route_id for t in store.route_tasks(sid) if t.smoke] == ["2"]


# ------------------------------------------------------------------------------ the pure policy
def _cand(task: int, sub: int, team: str, expected: float, *, smoke: bool = False, gated: bool = True) -> Candidate:
    return Candidate(task, sub, team, "p", order=sub, expected_s=expected, smoke=smoke, smoke_pending=gated)


def test_speculative_picks_are_gated_non_smoke_routes_longest_first_fair_between_teams() -> None:
    cands = [
        _cand(1, 1, "a", 10, smoke=True),
        _cand(2, 1, "a", 50),
        _cand(3, 1, "a", 90),
        _cand(4, 2, "b", 70),
        _cand(5, 3, "c", 99, gated=False),  # not gated: ordinary work, not speculative
    ]
    occupancy = Occupancy(capacity={"p": 4}, running_by_pool={}, running_by_team={"a": 1})
    picked = plan_speculative(cands, {"p": 3}, occupancy)
    assert [c.task_id for c in picked] == [4, 3, 2]
    limited = Occupancy(capacity={"p": 4}, running_by_pool={}, running_by_team={"a": 1}, team_limit=1)
    assert [c.task_id for c in plan_speculative(cands, {"p": 3}, limited)] == [4]
    assert plan_speculative(cands, {"p": 0}, occupancy) == []


def test_preemptions_are_what_the_ordinary_plan_needs_beyond_the_free_slots() -> None:
    plan = [_cand(1, 1, "a", 1), _cand(2, 1, "a", 1), _cand(3, 1, "a", 1)]
    assert preemptions_needed(plan, {"p": 1}) == {"p": 2}
    assert preemptions_needed(plan, {"p": 3}) == {}


def test_a_restarted_dispatcher_knows_which_adopted_runs_are_speculative(
    store: SqlStateStore, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    track = make_track(tmp_path)
    backend = ScriptedBackend()
    first = _dispatcher(store, artifacts, track, backend)
    _submit(store, track)
    first.tick()
    smoke, *speculative = backend.launched
    assert set(first.speculative) == {s.attempt_id for s in speculative}
    restarted = _dispatcher(store, artifacts, track, backend)  # same owner: a restart, adopting its attempts
    restarted.tick()
    assert set(restarted.speculative) == {s.attempt_id for s in speculative}, "the smoke route is still running"
    backend.finish(smoke)
    restarted.tick()
    assert restarted.speculative == {}
