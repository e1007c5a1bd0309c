"""Fault tests of the whole system on the local backend, with real SUMO simulators and evaluators.

Each test runs the dispatcher in-process over SQLite and an artifact folder and injects one fault:
a simulator killed mid-route, a hung agent, an attempt over budget, a cancel, bad submissions.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lbcloud.domain.artifact_keys import manifest_key, merged_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import Conflict, InputError
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import AttemptOutcome, AttemptStatus, RouteTaskStatus
from lbcloud.entrypoints.wiring import System
from lbcloud.services.control import cancel_submission
from tests.e2e.conftest import alive, attempt_pids, submit, sumo_dev_track, wait_for

pytestmark = [pytest.mark.sumo, pytest.mark.slow]
S = SubmissionStatus


def _records(system: System, sid: int) -> list[str]:
    merged = system.store.merged_result(sid)
    assert merged is not None
    return [r.route_id for r in parse_results(merged.document, "merged").records]


def test_competent_agent_finishes_sumo_dev_with_every_artifact(make_system: Callable[..., System]) -> None:
    system = make_system()
    sid = submit(system, "competent.py")
    assert system.dispatcher().run_until_idle(tick_s=0.1, timeout_s=240)
    sub = system.store.get_submission(sid)
    assert sub.status is S.FINISHED, sub.reason
    assert _records(system, sid) == [f"RouteScenario_{r}_rep0" for r in range(3)]
    merged = parse_results(system.artifacts.get(merged_key(sid)), "merged")
    assert merged.entry_status == "Finished" and merged.global_record is not None
    manifest = json.loads(system.artifacts.get(manifest_key(sid)))
    assert manifest["agent"]["digest"].startswith("sha256:")
    assert manifest["facts"]["eclipse-sumo_version"]
    history = [c.to_status for c in system.store.history(sid)]
    assert history[:3] == [S.SUBMITTED, S.QUEUED, S.RUNNING] and history[-1] is S.FINISHED


def test_simulator_killed_mid_route_is_retried_with_blame_simulator(make_system: Callable[..., System]) -> None:
    system = make_system(tracks=[sumo_dev_track(smoke_route=None)], local={"slots": 1})
    sid = submit(system, "slow.py")
    dispatcher = system.dispatcher()
    killed: list[int] = []

    def kill_first_simulator() -> None:
        dispatcher.tick()
        if killed:
            return
        for attempt in system.store.live_attempts():
            if attempt.status is AttemptStatus.RUNNING and attempt.handle:
                folder = Path(attempt.handle)
                if (folder / "agent.log").exists() and (folder / "agent.log").stat().st_size > 0:
                    simulator = attempt_pids(folder)[1]
                    time.sleep(0.5)  # well inside the route
                    import os

                    os.killpg(simulator, signal.SIGKILL)
                    killed.append(attempt.id)

    wait_for(lambda: bool(killed), 120, tick=kill_first_simulator)
    assert dispatcher.run_until_idle(tick_s=0.1, timeout_s=300)
    sub = system.store.get_submission(sid)
    assert sub.status is S.FINISHED, sub.reason
    crashed = system.store.get_attempt(killed[0])
    assert crashed.outcome is AttemptOutcome.FAILED and crashed.blame is Blame.SIMULATOR and crashed.counted
    assert crashed.reason and crashed.reason.count("the simulation crashed") <= 1, crashed.reason
    task = next(t for t in system.store.route_tasks(sid) if t.id == crashed.task_id)
    assert task.status is RouteTaskStatus.DONE and task.attempts == 2 and task.counted_retries == 1
    assert len(_records(system, sid)) == 3, "the final result is complete"


def test_hung_agent_ends_with_blame_agent_and_is_not_retried(make_system: Callable[..., System]) -> None:
    system = make_system(tracks=[sumo_dev_track(smoke_route=None)])
    sid = submit(system, "hangs.py")
    assert system.dispatcher().run_until_idle(tick_s=0.1, timeout_s=240)
    tasks = system.store.route_tasks(sid)
    assert all(t.attempts == 1 for t in tasks), "agent faults are never retried"
    assert all(t.blame is Blame.AGENT for t in tasks)
    assert all("hung" in (t.reason or "") for t in tasks), "the reason says what the agent did"
    merged = parse_results(system.store.merged_result(sid).document, "merged")  # type: ignore[union-attr]
    assert {r.status for r in merged.records} == {"Failed - Agent crashed"}


def test_an_attempt_over_its_wall_budget_is_stopped_and_blames_the_agent(make_system: Callable[..., System]) -> None:
    system = make_system(tracks=[sumo_dev_track(smoke_route=None, budget_base_s=0.5, budget_s_per_km=0.0)])
    sid = submit(system, "slow.py")
    assert system.dispatcher().run_until_idle(tick_s=0.1, timeout_s=180)
    attempts = system.store.attempts(submission_id=sid)
    assert len(attempts) == 3, "one attempt per route, none retried"
    for attempt in attempts:
        assert attempt.blame is Blame.AGENT
        assert attempt.reason is not None and "wall-clock budget" in attempt.reason
        for pid in attempt_pids(Path(attempt.handle or "")):
            assert not alive(pid)
    assert system.store.get_submission(sid).status is S.FINISHED


def test_smoke_route_failure_fails_fast_without_running_the_other_routes(make_system: Callable[..., System]) -> None:
    system = make_system(tracks=[sumo_dev_track(smoke_route="0")])
    sid = submit(system, "setup_fails.py")
    assert system.dispatcher().run_until_idle(tick_s=0.1, timeout_s=120)
    sub = system.store.get_submission(sid)
    assert sub.status is S.FAILED
    assert sub.reason is not None and "couldn't be set up" in sub.reason
    tasks = {t.id: t for t in system.store.route_tasks(sid)}
    smoke = [a for a in system.store.attempts(submission_id=sid) if tasks[a.task_id].smoke]
    assert len(smoke) == 1, "the smoke route ran once"
    # a free slot may have run another route speculatively: stopped when the smoke route failed, or,
    # on a slow machine, over first with the agent's own failure there; no retry was counted either way
    for task in tasks.values():
        if not task.smoke:
            assert task.status is RouteTaskStatus.CANCELLED or (
                task.status is RouteTaskStatus.DONE and task.blame is Blame.AGENT
            ), (task.route_id, task.status, task.reason)
    assert not any(a.counted for a in system.store.attempts(submission_id=sid))


def test_cancel_ends_every_process_within_two_seconds_and_keeps_partial_results(
    make_system: Callable[..., System],
) -> None:
    system = make_system(tracks=[sumo_dev_track(smoke_route=None)], local={"slots": 1})
    sid = submit(system, "slow.py")
    dispatcher = system.dispatcher()
    wait_for(lambda: system.store.merged_result(sid) is not None, 180, tick=dispatcher.tick)
    wait_for(
        lambda: any(a.status is AttemptStatus.RUNNING for a in system.store.live_attempts()), 60, tick=dispatcher.tick
    )
    live = system.store.live_attempts()
    pids = [pid for a in live for pid in attempt_pids(Path(a.handle or ""))]
    assert pids and all(alive(p) for p in pids)
    cancel_submission(system.store, sid, "operator cancel")
    started = time.monotonic()
    dispatcher.tick()
    wait_for(lambda: not any(alive(p) for p in pids), 2.0)
    assert time.monotonic() - started < 2.0
    wait_for(lambda: not system.store.live_attempts(), 10, tick=dispatcher.tick)
    assert system.store.get_submission(sid).status is S.CANCELLED
    merged = system.store.merged_result(sid)
    assert merged is not None and merged.records >= 1 and not merged.final


def test_malformed_submissions_are_rejected_with_clear_errors(
    make_system: Callable[..., System], tmp_path: Path
) -> None:
    system = make_system()
    good = AgentRef(AgentKind.LOCAL, str(Path(__file__).resolve().parents[2] / "examples/agents/competent.py"))
    cases = [
        (NewSubmission(team="bad;name", track="sumo-dev", agent=good), InputError, "team name"),
        (NewSubmission(team="alpha", track="nope", agent=good), InputError, "unknown track 'nope'"),
        (
            NewSubmission(team="alpha", track="sumo-dev", agent=AgentRef(AgentKind.LOCAL, str(tmp_path / "x.py"))),
            InputError,
            "does not exist",
        ),
        (  # the local backend runs agent files (a malformed image is refused by the API tests too)
            NewSubmission(team="alpha", track="sumo-dev", agent=AgentRef(AgentKind.IMAGE, "Not An Image!")),
            InputError,
            "local backend runs agent files, not images",
        ),
    ]
    for new, error, text in cases:
        with pytest.raises(error, match=text):
            system.intake.submit(new)
    system.intake.submit(NewSubmission(team="alpha", track="sumo-dev", agent=good))
    with pytest.raises(Conflict, match="duplicate submission"):
        system.intake.submit(NewSubmission(team="alpha", track="sumo-dev", agent=good))
    assert len(system.store.list_submissions()) == 1, "nothing recorded for rejected submissions"
