"""A resumed EvalAI submission reports its final result: the dispatcher, the real EvalAI sink and the
stand-in, with a scripted backend (how attempts end is up to the test)."""

from __future__ import annotations

import json

import pytest

from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.sink import EvalAISink
from lbcloud.adapters.evalai.source import EvalAISource
from lbcloud.adapters.route_catalog import FileRouteCatalog
from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.domain.tracks import Track
from lbcloud.services.control import cancel_submission, resume_submission
from lbcloud.services.dispatcher import Dispatcher
from lbcloud.services.ports import ArtifactStore
from tests.adapters.evalai.conftest import FakeClock
from tests.adapters.evalai.standin import EvalAIStandIn, submit_as_participant
from tests.services.artifact_helpers import folder_artifacts
from tests.services.dispatch_helpers import ScriptedBackend

IMAGE = "registry.local/team-alpha/agent:v1"


def _dispatcher(store: SqlStateStore, artifacts: ArtifactStore, tracks: dict[str, Track], backend: ScriptedBackend,
                sink: EvalAISink) -> Dispatcher:  # fmt: skip
    return Dispatcher(
        store=store, artifacts=artifacts, backend=backend, tracks=tracks, catalog=FileRouteCatalog(),
        clock=SystemClock(), owner="d1", capacity={"local": 4}, pool_of=lambda track: "local", sinks=[sink],
    )  # fmt: skip


def _ticks(
    d: Dispatcher, sink: EvalAISink, clock: FakeClock, n: int = 4, *, finish: ScriptedBackend | None = None
) -> None:
    for _ in range(n):
        d.tick()
        if finish is not None:
            for spec in finish.running():
                finish.finish(spec, rc=50)
        clock.advance(120)  # partial updates are rate limited per submission
        sink.flush()
    d._last_terminal_scan = -1e9
    d.tick()


@pytest.mark.parametrize("how", ["platform_failure", "cancel"])
def test_a_resumed_submission_reports_its_final_result_once_with_the_merged_values(
    how: str, standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore, client: EvalAIClient,
    sink: EvalAISink, tracks: dict[str, Track], clock: FakeClock, tmp_path: object,
) -> None:  # fmt: skip
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    source.poll_once()
    sub = store.find_submission("evalai", str(pk))
    assert sub is not None
    backend = ScriptedBackend()
    d = _dispatcher(store, folder_artifacts(tmp_path / "artifacts"), tracks, backend, sink)  # type: ignore[operator]
    d.tick()
    d.tick()
    smoke = backend.launched[0]
    backend.finish(smoke, rc=50)
    _ticks(d, sink, clock, 1)
    others = backend.running()
    assert others, "the other routes started"
    if how == "platform_failure":
        # every other route loses its simulator for good: not the team's fault, the submission fails
        track = tracks[sub.track]
        for _ in range(track.max_simulator_retries + 1):
            for spec in backend.running():
                backend.fail(spec, Blame.SIMULATOR, "simulator crashed")
            _ticks(d, sink, clock, 1)
    else:
        cancel_submission(store, sub.id, "operator cancel")
        _ticks(d, sink, clock, 2)
    ended = store.get_submission(sub.id).status
    assert ended in (SubmissionStatus.FAILED, SubmissionStatus.CANCELLED)
    assert standin.submissions[pk].status == ended.value
    first_finals = standin.count("E8", pk)
    if how == "platform_failure":
        client.resume(pk)  # the host resumes it on EvalAI (only failed submissions can be)
        source.poll_once(force=True)
    else:
        resume_submission(store, sub.id, "operator resume")
    assert store.get_submission(sub.id).status is SubmissionStatus.RESUMING
    _ticks(d, sink, clock, 6, finish=backend)
    assert store.get_submission(sub.id).status is SubmissionStatus.FINISHED
    assert standin.count("E8", pk) == first_finals + 1, "exactly one more final PUT"
    assert standin.submissions[pk].status == "finished"
    merged = store.merged_result(sub.id)
    assert merged is not None and merged.final and merged.records == merged.total
    results = standin.submissions[pk].results["leaderboard"]
    assert results["Route completion"] == 50 and results["Driving score"] == 50, "the merged values, not zeros"
    final_put = json.loads(standin.submissions[pk].metadata)  # type: ignore[arg-type]
    assert final_put["status"] == "finished"
