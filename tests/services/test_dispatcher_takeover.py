"""Restarts that never stall and finals that reach the sinks once per ending: continuous takeover of
expired leases, resumed submissions publishing again, and one INFO log line per decision."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.route_catalog import FileRouteCatalog
from lbcloud.adapters.store.sql import SqlStateStore
from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, Submission, SubmissionStatus
from lbcloud.domain.tracks import Track
from lbcloud.services.control import cancel_submission, resume_submission
from lbcloud.services.dispatcher import Dispatcher
from lbcloud.services.ports import ArtifactStore, Publication
from tests.services.dispatch_helpers import ScriptedBackend, make_track

S = SubmissionStatus


@dataclass
class RecordingSink:
    """A sink that keeps what it was told (every submission is its own)."""

    name: str = "recording"
    partials: list[tuple[int, int, str]] = field(default_factory=list)
    finals: list[tuple[int, str, int]] = field(default_factory=list)

    def handles(self, submission: Submission) -> bool:
        return True

    def started(self, submission: Submission) -> None:
        pass

    def publish(self, publication: Publication) -> None:
        if not publication.submission.status.terminal:
            sub = publication.submission
            self.partials.append((sub.id, publication.records, publication.evalai_result))

    def ended(self, submission: Submission, publication: Publication | None) -> None:
        self.finals.append((submission.id, submission.status.value, publication.records if publication else 0))


@pytest.fixture
def track(tmp_path: Path) -> Track:
    return make_track(tmp_path, smoke=None)


def _dispatcher(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track, backend: ScriptedBackend, *,
    owner: str = "d1", lease_s: float = 30.0, sink: RecordingSink | None = None, slots: int = 2,
) -> Dispatcher:  # fmt: skip
    return Dispatcher(
        store=store, artifacts=artifacts, backend=backend, tracks={track.name: track}, catalog=FileRouteCatalog(),
        clock=SystemClock(), owner=owner, capacity={"default": slots}, lease_s=lease_s,
        sinks=[sink] if sink else [],
    )  # fmt: skip


def _submit(store: SqlStateStore, track: Track, team: str = "alpha") -> int:
    sub, _ = store.create_submission(
        NewSubmission(team=team, track=track.name, agent=AgentRef(AgentKind.LOCAL, f"/agents/{team}.py", digest=team))
    )
    return sub.id


def _drain(d: Dispatcher, backend: ScriptedBackend, ticks: int = 8) -> None:
    for _ in range(ticks):
        d.tick()
        for spec in backend.running():
            backend.finish(spec)
    d.tick()


def test_a_quick_restart_under_a_new_owner_takes_the_dead_owners_attempts_over_once_their_lease_expires(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    backend = ScriptedBackend()
    first = _dispatcher(store, artifacts, track, backend, owner="host-100", lease_s=0.5)
    sid = _submit(store, track)
    first.tick()
    held = {a.id for a in store.live_attempts()}
    assert len(held) == 2
    # killed; restarted at once under a new owner (a new pid), while the old leases still run
    second = _dispatcher(store, artifacts, track, backend, owner="host-200", lease_s=0.5)
    second.tick()
    assert backend.adopted == [], "a lease still running belongs to its owner"
    assert len(backend.launched) == 2, "the slots are still held, nothing else launches"
    time.sleep(0.6)
    second.tick()
    assert set(backend.adopted) == held, "taken over on the first tick after the lease expired"
    assert {a.owner for a in store.live_attempts()} == {"host-200"}
    _drain(second, backend)
    assert store.get_submission(sid).status is S.FINISHED
    assert len(backend.launched) == 3, "no route ran twice"


def test_an_expired_attempt_whose_process_is_gone_is_requeued_and_its_slot_refilled(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    class Forgetful(ScriptedBackend):
        def adopt(self, attempts):  # type: ignore[no-untyped-def]
            from lbcloud.domain.tasks import AttemptOutcome
            from lbcloud.services.ports import BackendEvent, BackendEventKind

            super().adopt(attempts)
            for a in attempts:
                self.live.pop(a.id, None)
            return [
                BackendEvent(
                    a.id, BackendEventKind.ENDED, outcome=AttemptOutcome.LOST, blame=Blame.INFRASTRUCTURE, reason="gone"
                )
                for a in attempts
            ]

    backend = Forgetful()
    first = _dispatcher(store, artifacts, track, backend, owner="a", lease_s=0.3)
    sid = _submit(store, track)
    first.tick()
    second = _dispatcher(store, artifacts, track, backend, owner="b", lease_s=0.3)
    time.sleep(0.4)
    second.tick()  # takes over, learns they are lost, relaunches in the same tick
    live = store.live_attempts()
    assert len(live) == 2 and {a.owner for a in live} == {"b"}
    _drain(second, backend)
    assert store.get_submission(sid).status is S.FINISHED
    assert all(t.status.value == "done" for t in store.route_tasks(sid))


def test_a_resumed_submission_publishes_its_partials_and_final_once_more(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    backend = ScriptedBackend()
    sink = RecordingSink()
    d = _dispatcher(store, artifacts, track, backend, sink=sink)
    sid = _submit(store, track)
    d.tick()
    backend.finish(backend.launched[0])
    backend.fail(backend.launched[1], Blame.INFRASTRUCTURE, "node lost")
    d.tick()
    cancel_submission(store, sid)
    for _ in range(3):
        d.tick()
        time.sleep(0.01)
    d._last_terminal_scan = -1e9  # the periodic scan, due now
    d.tick()
    assert [f[1] for f in sink.finals] == ["cancelled"]
    resume_submission(store, sid)
    d.capacity = {"default": 1}  # one route at a time, so a partial shows between the two
    partials_before = len(sink.partials)
    _drain(d, backend)
    d._last_terminal_scan = -1e9
    d.tick()
    assert store.get_submission(sid).status is S.FINISHED
    assert sink.finals == [(sid, "cancelled", 1), (sid, "finished", 3)], "exactly one more final, with every route"
    assert len(sink.partials) > partials_before, "partials flow again while it runs"


def test_a_restart_publishes_finals_a_crash_left_unpublished_and_never_repeats_published_ones(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    backend = ScriptedBackend()
    sink = RecordingSink()
    d = _dispatcher(store, artifacts, track, backend, sink=sink)
    published = _submit(store, track, "alpha")
    _drain(d, backend)
    assert sink.finals == [(published, "finished", 3)]
    # a submission that ended while no dispatcher published it (a crash right after the transition)
    lost = _submit(store, track, "beta")
    cancel_submission(store, lost)
    sink2 = RecordingSink()
    restarted = _dispatcher(store, artifacts, track, ScriptedBackend(), owner="d2", sink=sink2)
    restarted.tick()
    assert sink2.finals == [(lost, "cancelled", 0)]
    restarted._last_terminal_scan = -1e9
    restarted.tick()
    third = _dispatcher(store, artifacts, track, ScriptedBackend(), owner="d3", sink=RecordingSink())
    third.tick()
    assert third.sinks[0].finals == []  # type: ignore[attr-defined]


def test_every_decision_is_one_info_line_with_its_ids(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lbcloud.services.dispatcher")
    backend = ScriptedBackend()
    d = _dispatcher(store, artifacts, track, backend, sink=RecordingSink())
    sid = _submit(store, track)
    d.tick()
    first, second = backend.launched[:2]
    backend.finish(first)
    backend.fail(second, Blame.SIMULATOR, "crashed")
    d.tick()
    _drain(d, backend)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert f"decision=plan submission={sid} tasks=3 pending=3" in lines
    assert any(line.startswith(f"decision=launch attempt={first.attempt_id} submission={sid}") for line in lines)
    assert any(line.startswith(f"decision=record_end attempt={first.attempt_id}") and "outcome=record" in line
               for line in lines)  # fmt: skip
    assert any(line.startswith(f"decision=retry submission={sid}") and "blame=simulator" in line for line in lines)
    assert f"decision=publish_final submission={sid} status=finished sinks=recording" in lines


def test_partial_publications_carry_the_scores_of_the_routes_evaluated_so_far(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    import json

    backend = ScriptedBackend()
    sink = RecordingSink()
    d = _dispatcher(store, artifacts, track, backend, sink=sink, slots=1)
    _submit(store, track)
    d.tick()
    backend.finish(backend.launched[0], rc=60)
    d.tick()
    d.tick()
    assert sink.partials, "a partial was published"
    _sid, records, evalai = sink.partials[-1]
    accuracies = json.loads(evalai)[0]["accuracies"]
    assert records == 1
    assert accuracies["Route completion"] == 60
    assert accuracies["Driving score"] == 60
    backend.finish(backend.launched[1], rc=100)
    d.tick()
    d.tick()
    accuracies = json.loads(sink.partials[-1][2])[0]["accuracies"]
    assert accuracies["Route completion"] == 80, "the mean over the two routes done, not over all three"


class CountingStore:
    """Wraps the real store and records which of its methods a tick calls."""

    def __init__(self, inner: SqlStateStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        target = getattr(self.inner, name)
        if callable(target):

            def call(*args: object, **kwargs: object) -> object:
                self.calls.append(name)
                return target(*args, **kwargs)

            return call
        return target


def test_an_idle_tick_with_every_slot_busy_reads_the_store_once(
    store: SqlStateStore, artifacts: ArtifactStore, track: Track
) -> None:
    counting = CountingStore(store)
    backend = ScriptedBackend()
    d = Dispatcher(
        store=counting, artifacts=artifacts, backend=backend, tracks={track.name: track},  # type: ignore[arg-type]
        catalog=FileRouteCatalog(), clock=SystemClock(), owner="d1", capacity={"default": 2},
    )  # fmt: skip
    for team in ("alpha", "beta"):
        _submit(store, track, team)
    for _ in range(3):
        d.tick()
    assert len(backend.running()) == 2
    d._last_terminal_scan = time.monotonic()  # the periodic scans are not due
    d._last_lease_renewal = time.monotonic()
    counting.calls.clear()
    d.tick()
    assert counting.calls == ["tick_view"]
