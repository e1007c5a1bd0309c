"""The dispatcher's lifecycle logic over the real SQL store and artifact folder, with a scripted backend.

The backend is scripted so each test decides how attempts end; end-to-end runs with real SUMO
processes are in tests/e2e/.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.route_catalog import FileRouteCatalog
from lbcloud.adapters.store.sql import SqlStateStore, open_state_store
from lbcloud.domain.artifact_keys import manifest_key, merged_key, route_record_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, RouteTaskStatus
from lbcloud.domain.tracks import Track
from lbcloud.services.control import cancel_submission, resume_submission
from lbcloud.services.dispatcher import Dispatcher
from lbcloud.services.ports import ArtifactStore, AttemptSpec, BackendEvent, BackendEventKind
from tests.services.dispatch_helpers import ScriptedBackend, make_track

S = SubmissionStatus


@pytest.fixture
def track(tmp_path: Path) -> Track:
    return make_track(tmp_path)


def _dispatcher(store: SqlStateStore, artifacts: ArtifactStore, track: Track, backend: ScriptedBackend,
                owner: str = "d1", slots: int = 2, speculate: bool = True) -> Dispatcher:  # fmt: skip
    return Dispatcher(
        store=store,
        artifacts=artifacts,
        backend=backend,
        tracks={track.name: track},
        catalog=FileRouteCatalog(),
        clock=SystemClock(),
        owner=owner,
        capacity={"default": slots},
        lease_s=30.0,
        speculate=speculate,
    )


def _submit(store: SqlStateStore, track: Track, team: str = "alpha") -> int:
    sub, _ = store.create_submission(
        NewSubmission(team=team, track=track.name, agent=AgentRef(AgentKind.LOCAL, f"/agents/{team}.py", digest=team))
    )
    return sub.id


def test_with_a_strict_gate_the_smoke_route_runs_first_then_longest_first_and_the_submission_finishes(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend, speculate=False)
    sid = _submit(store, track)
    d.tick()
    d.tick()  # the backend reports the attempt running on the next poll
    assert [s.route_id for s in backend.launched] == ["0"], "only the public smoke route runs first"
    assert store.get_submission(sid).status is S.RUNNING
    backend.finish(backend.launched[0])
    d.tick()
    d.tick()
    # routes 1 (900 m) and 2 (500 m): longest first
    assert [s.route_id for s in backend.launched[1:]] == ["1", "2"]
    assert store.get_submission(sid).status is S.PARTIALLY_EVALUATED
    for spec in backend.running():
        backend.finish(spec, rc=50.0, collisions=1)
    d.tick()
    sub = store.get_submission(sid)
    assert sub.status is S.FINISHED
    merged = store.merged_result(sid)
    assert merged is not None and merged.final and merged.records == 3 and merged.total == 3
    doc = parse_results(artifacts.get(merged_key(sid)), "merged")
    assert doc.entry_status == "Finished"
    assert [r.route_id for r in doc.records] == ["RouteScenario_0_rep0", "RouteScenario_1_rep0", "RouteScenario_2_rep0"]
    assert artifacts.exists(route_record_key(sid, "1", 0))
    manifest = json.loads(artifacts.get(manifest_key(sid)))
    assert manifest["scorer"] == "lb2.0" and manifest["routes_file_hash"].startswith("sha256:")
    assert [r["route"] for r in manifest["routes"]] == ["0", "1", "2"]
    # the manifest is public once finished: no absolute paths of the server in it
    assert "/" not in manifest["routes_file"] and "/" not in manifest["agent"]["ref"]
    assert manifest["agent"]["digest"]


def test_with_a_strict_gate_an_agent_failing_the_smoke_route_fails_fast_and_other_routes_never_run(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend, speculate=False)
    sid = _submit(store, track)
    d.tick()
    backend.finish(backend.launched[0], rc=0, failure="Agent couldn't be set up")
    d.tick()
    d.tick()
    sub = store.get_submission(sid)
    assert sub.status is S.FAILED
    assert sub.reason is not None and "smoke route 0" in sub.reason and "couldn't be set up" in sub.reason
    assert len(backend.launched) == 1
    statuses = {t.route_id: t.status for t in store.route_tasks(sid)}
    assert statuses == {"0": RouteTaskStatus.DONE, "1": RouteTaskStatus.CANCELLED, "2": RouteTaskStatus.CANCELLED}


def test_simulator_crash_is_retried_and_does_not_count_against_the_team(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    d.tick()
    backend.fail(backend.launched[0], Blame.SIMULATOR, "the simulation crashed")
    d.tick()
    d.tick()
    smoke_attempts = [s for s in backend.launched if s.route_id == "0"]
    assert len(smoke_attempts) == 2 and smoke_attempts[1].attempt_number == 2
    for _ in range(3):
        for spec in backend.running():
            backend.finish(spec)
        d.tick()
    assert store.get_submission(sid).status is S.FINISHED
    smoke = next(t for t in store.route_tasks(sid) if t.route_id == "0")
    assert smoke.counted_retries == 1 and smoke.blame is Blame.NONE


def test_simulator_that_keeps_crashing_fails_the_route_with_blame_simulator(
    store: SqlStateStore, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    track = make_track(tmp_path, smoke=None, max_simulator_retries=1)
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    for _ in range(6):
        d.tick()
        for spec in backend.running():
            if spec.route_id == "2":
                backend.fail(spec, Blame.SIMULATOR, "simulator died")
            else:
                backend.finish(spec)
    d.tick()
    sub = store.get_submission(sid)
    assert sub.status is S.FAILED
    assert sub.reason is not None and "blame simulator" in sub.reason and "not the team's fault" in sub.reason
    assert sum(1 for s in backend.launched if s.route_id == "2") == 2  # first try + one counted retry
    merged = store.merged_result(sid)
    assert merged is not None
    doc = parse_results(merged.document, "merged")
    assert doc.entry_status == "Crashed"  # the synthesized record says Simulation crashed


def test_preemption_is_retried_without_counting(store: SqlStateStore, artifacts: ArtifactStore, tmp_path: Path) -> None:
    track = make_track(tmp_path, smoke=None, max_infrastructure_retries=0)
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    d.tick()
    for _ in range(4):
        for spec in backend.running():
            if spec.route_id == "1":
                backend.fail(spec, Blame.INFRASTRUCTURE, "pod evicted", preempted=True)
        d.tick()
    for _ in range(3):
        for spec in backend.running():
            backend.finish(spec)
        d.tick()
    assert store.get_submission(sid).status is S.FINISHED
    task = next(t for t in store.route_tasks(sid) if t.route_id == "1")
    assert task.counted_retries == 0 and task.attempts >= 5


def test_hung_agent_loses_that_route_only(store: SqlStateStore, artifacts: ArtifactStore, tmp_path: Path) -> None:
    track = make_track(tmp_path, smoke=None)
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    for _ in range(4):
        d.tick()
        for spec in backend.running():
            if spec.route_id == "1":
                backend.fail(spec, Blame.AGENT, "no output for 60 s (hung)")
            else:
                backend.finish(spec)
    d.tick()
    assert sum(1 for s in backend.launched if s.route_id == "1") == 1, "agent faults are not retried"
    sub = store.get_submission(sid)
    assert sub.status is S.FINISHED
    doc = parse_results(store.merged_result(sid).document, "merged")  # type: ignore[union-attr]
    by_id = {r.route_id: r for r in doc.records}
    assert by_id["RouteScenario_1_rep0"].status == "Failed - Agent crashed"
    assert by_id["RouteScenario_1_rep0"].scores.score_composed == 0
    task = next(t for t in store.route_tasks(sid) if t.route_id == "1")
    assert task.blame is Blame.AGENT and "hung" in (task.reason or "")


def test_cancel_stops_attempts_and_keeps_partial_results(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    d.tick()
    backend.finish(backend.launched[0])
    d.tick()
    d.tick()
    assert len(backend.running()) == 2
    running_ids = {s.attempt_id for s in backend.running()}
    cancel_submission(store, sid, "operator said so")
    d.tick()
    d.tick()
    assert set(backend.cancelled) == running_ids
    assert store.get_submission(sid).status is S.CANCELLED
    assert not store.live_attempts()
    merged = store.merged_result(sid)
    assert merged is not None and merged.records == 1 and not merged.final


def test_resume_reruns_only_the_missing_routes(store: SqlStateStore, artifacts: ArtifactStore, track: Track) -> None:
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    d.tick()
    backend.finish(backend.launched[0])
    d.tick()
    d.tick()
    cancel_submission(store, sid)
    d.tick()
    d.tick()
    resume_submission(store, sid)
    for _ in range(4):
        d.tick()
        for spec in backend.running():
            backend.finish(spec)
    d.tick()
    assert store.get_submission(sid).status is S.FINISHED
    assert sorted(s.route_id for s in backend.launched) == ["0", "1", "1", "2", "2"]


def test_a_restarted_dispatcher_adopts_live_attempts_and_loses_nothing(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    backend = ScriptedBackend()
    first = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    first.tick()
    backend.finish(backend.launched[0])
    first.tick()
    first.tick()
    live_before = {a.id for a in store.live_attempts()}
    assert len(live_before) == 2
    # the first dispatcher "dies"; a new one with the same owner id starts on the same state
    second = _dispatcher(store, artifacts, track, backend)
    second.tick()
    assert set(backend.adopted) == live_before
    for spec in backend.running():
        backend.finish(spec)
    second.tick()
    assert store.get_submission(sid).status is S.FINISHED
    assert len(backend.launched) == 3, "no route task ran twice"


class _Killed(BaseException):
    """The dispatcher process dying mid-launch."""


class _DiesAfterStarting(ScriptedBackend):
    def launch(self, spec: AttemptSpec) -> str:
        super().launch(spec)
        raise _Killed  # started, but the handle never reaches the store


class _FindsStartedAttempts(ScriptedBackend):
    def adopt(self, attempts: Sequence[Attempt]) -> list[BackendEvent]:
        super().adopt(attempts)
        return [
            BackendEvent(a.id, BackendEventKind.RUNNING, handle=f"found-{a.id}") for a in attempts if a.handle is None
        ]


def test_an_attempt_started_before_a_crash_is_given_its_handle_and_can_be_cancelled(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    sid = _submit(store, track)
    with pytest.raises(_Killed):
        _dispatcher(store, artifacts, track, _DiesAfterStarting()).tick()
    (orphan,) = store.live_attempts()
    assert orphan.handle is None
    backend = _FindsStartedAttempts()
    second = _dispatcher(store, artifacts, track, backend)
    second.tick()
    assert store.get_attempt(orphan.id).handle == f"found-{orphan.id}"
    cancel_submission(store, sid, "operator cancel")
    second.tick()
    assert orphan.id in backend.cancelled, "the found attempt is stopped like any other"


def test_two_dispatchers_on_one_store_never_launch_a_task_twice(
    store: SqlStateStore, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    track = make_track(tmp_path, smoke=None)
    b1, b2 = ScriptedBackend(), ScriptedBackend()
    d1 = _dispatcher(store, artifacts, track, b1, owner="d1", slots=3)
    d2 = _dispatcher(store, artifacts, track, b2, owner="d2", slots=3)
    ids = [_submit(store, track, team=f"team{i}") for i in range(3)]
    for _ in range(6):
        d1.tick()
        d2.tick()
        for backend in (b1, b2):
            for spec in backend.running():
                backend.finish(spec)
    launched = [(s.submission_id, s.route_id) for s in b1.launched + b2.launched]
    assert len(launched) == len(set(launched)) == 9
    for sid in ids:
        d1.tick()
        assert store.get_submission(sid).status is S.FINISHED


def test_restart_repairs_a_task_left_running_after_its_attempt_ended(
    store: SqlStateStore, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    """A crash between recording an attempt's end and settling its task is repaired on restart."""
    from lbcloud.domain.tasks import AttemptOutcome
    from lbcloud.services.ports import AttemptEnd
    from tests.services.dispatch_helpers import record_doc

    track = make_track(tmp_path, smoke=None)
    backend = ScriptedBackend()
    first = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    first.tick()
    spec = backend.launched[0]
    # the first dispatcher recorded the end, then died before settling the task
    store.end_attempt(
        spec.attempt_id,
        AttemptEnd(
            outcome=AttemptOutcome.RECORD,
            blame=Blame.NONE,
            reason=None,
            exit_code=0,
            record_json=record_doc(spec.route_id),
            counted=False,
        ),
    )
    task = next(t for t in store.route_tasks(sid) if t.route_id == spec.route_id)
    assert task.status is RouteTaskStatus.RUNNING
    second = _dispatcher(store, artifacts, track, ScriptedBackend())
    second.tick()
    task = next(t for t in store.route_tasks(sid) if t.route_id == spec.route_id)
    assert task.status is RouteTaskStatus.DONE and task.record_json
    merged = store.merged_result(sid)
    assert merged is not None and merged.records >= 1


@pytest.mark.postgres
def test_two_dispatchers_on_one_postgresql_never_launch_a_task_twice(
    postgres_url: str, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    import threading

    pg = open_state_store(postgres_url)
    try:
        track = make_track(tmp_path, smoke=None)
        b1, b2 = ScriptedBackend(), ScriptedBackend()
        d1 = _dispatcher(pg, artifacts, track, b1, owner="d1", slots=4)
        d2 = _dispatcher(pg, artifacts, track, b2, owner="d2", slots=4)
        ids = [_submit(pg, track, team=f"team{i}") for i in range(4)]

        def drive(dispatcher: Dispatcher, backend: ScriptedBackend) -> None:
            for _ in range(12):
                dispatcher.tick()
                for spec in backend.running():
                    backend.finish(spec)

        threads = [threading.Thread(target=drive, args=(d, b)) for d, b in ((d1, b1), (d2, b2))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _ in range(3):
            d1.tick()
            d2.tick()
        launched = [(s.submission_id, s.route_id) for s in b1.launched + b2.launched]
        assert len(launched) == len(set(launched)) == 12, "each route task ran exactly once"
        assert all(pg.get_submission(sid).status is S.FINISHED for sid in ids)
    finally:
        pg.close()


class _WakingBackend(ScriptedBackend):
    """A backend that can wake the dispatcher: it ends the running attempts while the dispatcher waits."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout_s: float) -> None:
        self.waits.append(timeout_s)
        for spec in self.running():
            self.finish(spec)


def test_between_ticks_the_dispatcher_waits_on_a_backend_that_can_wake_it(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    backend = _WakingBackend()
    d = _dispatcher(store, artifacts, track, backend)
    sid = _submit(store, track)
    # a tick of an hour: only the backend's wait (which returns when attempts end) lets this finish
    assert d.run_until_idle(tick_s=3600.0, timeout_s=60.0)
    assert store.get_submission(sid).status is S.FINISHED
    assert backend.waits and all(w == 3600.0 for w in backend.waits)
