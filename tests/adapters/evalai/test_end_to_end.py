"""End to end: EvalAI stand-in queue → dispatcher → local backend (SUMO) → the stand-in's leaderboard.

Participants `push` through the stand-in's participant API; lbcloud's dispatcher (wired from
settings, as in production) picks the submissions up from the queue, runs them on real SUMO
processes, reports running and partial updates, and puts the final results that the stand-in's
leaderboard (E14) then shows. Along the way: a malformed message, a duplicate delivery, a
cancellation made on EvalAI, and a check that every request was one the spec documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest

from lbcloud.adapters.evalai.integration import EvalAIIntegration
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.entrypoints import dispatch_wiring, wiring
from lbcloud.entrypoints.evalai_wiring import evalai_integrations
from lbcloud.entrypoints.wiring import System
from lbcloud.services.ports import Attempt, AttemptBackend, AttemptSpec, BackendEvent
from tests.adapters.evalai.standin import EvalAIStandIn, submit_as_participant
from tests.e2e import conftest as e2e
from tests.e2e.conftest import AGENTS, wait_for

pytestmark = [pytest.mark.sumo, pytest.mark.slow]

make_system = e2e.make_system

IMAGES = {
    "registry.local/team-alpha/agent:v1": "competent.py",
    "registry.local/team-beta/agent:v2": "reckless.py",
    "registry.local/team-gamma/agent:v1": "slow.py",
}


class ImagesAsLocalAgents:
    """The local backend runs files, not images: map the test images to the sample agents."""

    def __init__(self, inner: AttemptBackend) -> None:
        self.inner = inner
        self.name = inner.name

    def launch(self, spec: AttemptSpec) -> str:
        if spec.agent.kind is not AgentKind.IMAGE:
            return self.inner.launch(spec)
        local = AgentRef(AgentKind.LOCAL, str(AGENTS / IMAGES[spec.agent.ref]))
        return self.inner.launch(replace(spec, agent=local))

    def poll(self) -> list[BackendEvent]:
        return self.inner.poll()

    def cancel(self, attempt_id: int, handle: str) -> None:
        self.inner.cancel(attempt_id, handle)

    def adopt(self, attempts: Sequence[Attempt]) -> list[BackendEvent]:
        return self.inner.adopt(attempts)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def live_standin() -> Iterator[EvalAIStandIn]:
    with EvalAIStandIn(phases={1: True}, visibility_timeout_s=2.0) as server:
        yield server


@pytest.fixture
def evalai_system(
    live_standin: EvalAIStandIn, make_system: Callable[..., System], monkeypatch: pytest.MonkeyPatch
) -> System:
    real_build_backend = dispatch_wiring.build_backend
    monkeypatch.setattr(
        dispatch_wiring, "build_backend", lambda system: ImagesAsLocalAgents(real_build_backend(system))
    )
    # the local backend runs agent files and refuses images at intake; here it runs them as files
    monkeypatch.setattr(wiring, "images_refusal", lambda settings: None)
    system = make_system(
        evalai={
            "enabled": True,
            "base_url": live_standin.base_url,
            "token": live_standin.host_jwt,
            "challenge_id": live_standin.challenge_id,
            "queue_name": live_standin.queue_name,
            "phase_tracks": {1: "sumo-dev"},
            "poll_interval_s": 0.2,
            "max_poll_interval_s": 1.0,
            "partial_interval_s": 0.5,
            "cancel_poll_interval_s": 1.0,
            "allowed_registries": ["registry.local"],
            "timeout_s": 5.0,
            "requests_per_minute": 600,
        },
        local={"slots": 3},
        # a smoke route runs alone first, so at least one partial update falls between the first
        # record and the last, however the other routes' ends bunch up in a busy tick
        tracks=[e2e.sumo_dev_track(smoke_route="0")],
    )
    system.extras["integrations"] = evalai_integrations
    return system


def test_submissions_flow_from_the_evalai_queue_to_its_leaderboard(
    live_standin: EvalAIStandIn, evalai_system: System
) -> None:
    standin, store = live_standin, evalai_system.store
    alpha = standin.add_participant("alpha")
    beta = standin.add_participant("beta")
    gamma = standin.add_participant("gamma")
    good = submit_as_participant(standin, alpha, "registry.local/team-alpha/agent:v1", method="careful")
    bad = submit_as_participant(standin, beta, "registry.local/team-beta/agent:v2", method="reckless")
    standin.publish("this is not a submission message")
    standin.publish({"challenge_pk": 1, "phase_pk": 1, "submission_pk": good})  # duplicate delivery
    slow = submit_as_participant(standin, gamma, "registry.local/team-gamma/agent:v1")

    dispatcher = evalai_system.dispatcher()
    integration = evalai_system.extras["evalai"]
    assert isinstance(integration, EvalAIIntegration)

    def row(pk: int) -> Any:
        return store.find_submission("evalai", str(pk))

    # the slow team cancels on EvalAI once its run has started
    wait_for(lambda: row(slow) is not None and row(slow).status is SubmissionStatus.RUNNING, 120, dispatcher.tick)
    standin.cancel(slow)

    def done() -> bool:
        return (
            all(row(pk) is not None and row(pk).status.terminal for pk in (good, bad, slow))
            and not integration.sink.pending_finals()
            and standin.submissions[good].status == "finished"
            and standin.submissions[bad].status == "finished"
        )

    wait_for(done, 300, dispatcher.tick)

    assert row(good).status is SubmissionStatus.FINISHED and row(bad).status is SubmissionStatus.FINISHED
    assert row(slow).status is SubmissionStatus.CANCELLED and standin.submissions[slow].status == "cancelled"
    assert len(store.list_submissions()) == 3  # the duplicate was not evaluated twice
    assert [p.reason.split(":")[0] for p in integration.parked.entries()] == ["malformed message"]

    # EvalAI saw running, partial updates on the way, then the final result
    history = standin.status_history(good)
    assert ("E7", "running") in history and history[-1] == ("E8", "finished")
    assert ("E9", "partially_evaluated") in history
    assert standin.count("E9", good) >= 1

    # the stand-in's leaderboard shows both finished teams, the careful one first
    page = integration.client.leaderboard(101)
    teams = [r.team_name for r in page.results]
    assert teams == ["alpha", "beta"]
    scores = {r.team_name: r.values() for r in page.results}
    merged = store.merged_result(row(good).id)
    assert merged is not None and merged.final
    assert scores["alpha"]["Driving score"] == pytest.approx(merged.driving_score)
    assert scores["alpha"]["Driving score"] > scores["beta"]["Driving score"]
    final = standin.submissions[good]
    assert "Here is a summary of the submission's results" in final.stdout
    assert json.loads(final.metadata or "{}")["lbcloud_submission"] == row(good).id

    assert standin.unknown_requests == []
    per_submission = {pk: sum(1 for r in standin.requests if r.submission == pk) for pk in (good, bad, slow)}
    print(f"EvalAI requests per submission (3 routes): {per_submission}; total {len(standin.requests)}")


def test_an_expired_token_backs_off_while_other_work_finishes(
    live_standin: EvalAIStandIn, evalai_system: System
) -> None:
    standin = live_standin
    standin.expire_token(standin.host_jwt)
    queued = submit_as_participant(standin, standin.add_participant("alpha"), "registry.local/team-alpha/agent:v1")
    local, _ = evalai_system.intake.submit(
        NewSubmission(
            team="local-team", track="sumo-dev", agent=AgentRef(AgentKind.LOCAL, str(AGENTS / "competent.py"))
        )
    )
    dispatcher = evalai_system.dispatcher()
    integration = evalai_system.extras["evalai"]
    assert isinstance(integration, EvalAIIntegration) and integration.source is not None

    wait_for(lambda: evalai_system.store.get_submission(local.id).status.terminal, 180, dispatcher.tick)

    assert evalai_system.store.get_submission(local.id).status is SubmissionStatus.FINISHED
    assert integration.source.last_error is not None and "expired" in integration.source.last_error
    assert standin.count("E4") == 1  # one refused poll, then a pause: no crash loop
    assert standin.queued_messages() == 1 and standin.submissions[queued].status == "submitted"  # nothing lost
    assert standin.unknown_requests == []
