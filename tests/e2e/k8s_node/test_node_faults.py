"""Faults on a real node, judged from what the kubelet reports: the blame and whether lbcloud retries.

Each test runs one route (sumo-dev route 0, or route 2 for the kill mid-route) through `lbcloud serve`
with the Kubernetes backend and injects one fault: the agent's process dies, freezes or runs out of
memory, the simulator's container is killed, the image does not exist, the submission is cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from lbcloud.domain.artifact_keys import attempt_log_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.domain.tasks import Attempt, AttemptOutcome
from tests.e2e.k8s_node.node_support import AgentImages, NodeDispatcher, single_route_track

# the first test of a session may build lbcloud's images (cold cache: a few minutes) in its setup
pytestmark = [pytest.mark.k8s_node, pytest.mark.slow, pytest.mark.timeout(1800)]
S = SubmissionStatus


def _attempts(dispatcher: NodeDispatcher, sid: int) -> list[Attempt]:
    return sorted(dispatcher.system.store.attempts(submission_id=sid), key=lambda a: a.id)


def _agent_log(dispatcher: NodeDispatcher, sid: int, attempt: Attempt) -> str:
    key = attempt_log_key(sid, attempt.id, "agent")
    artifacts = dispatcher.system.artifacts
    return artifacts.get(key).decode("utf-8", "replace") if artifacts.exists(key) else ""


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str, dispatcher: NodeDispatcher) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout_s} s\n{dispatcher.tail()}")


def _pods(dispatcher: NodeDispatcher, sid: int) -> list[client.V1Pod]:
    api = dispatcher.node.api_client()
    try:
        selector = f"lbcloud.io/submission={sid}"
        return list(client.CoreV1Api(api).list_namespaced_pod(dispatcher.namespace, label_selector=selector).items)
    finally:
        api.close()


def _one_failed_attempt(dispatcher: NodeDispatcher, sid: int) -> Attempt:
    attempts = _attempts(dispatcher, sid)
    assert len(attempts) == 1, [(a.outcome, a.blame, a.reason) for a in attempts]  # no retry
    return attempts[0]


def test_agent_process_killing_itself_is_the_agents_fault_and_not_retried(
    node_dispatcher: Callable[..., NodeDispatcher], agent_images: AgentImages, tmp_path: Path
) -> None:
    dispatcher = node_dispatcher([single_route_track(tmp_path)])
    dispatcher.start()
    sid = dispatcher.submit(agent_images.hostile("exit_hard.py"), track="node-one")
    dispatcher.wait_settled(sid, 300)
    attempt = _one_failed_attempt(dispatcher, sid)
    assert attempt.blame is Blame.AGENT, (attempt.outcome, attempt.reason)
    assert attempt.node == "ktc-node"


def test_frozen_agent_is_stopped_by_the_silence_watchdog_and_blamed(
    node_dispatcher: Callable[..., NodeDispatcher], agent_images: AgentImages, tmp_path: Path
) -> None:
    dispatcher = node_dispatcher([single_route_track(tmp_path, silence_timeout_s=8.0)])
    dispatcher.start()
    sid = dispatcher.submit(agent_images.hostile("freeze.py"), track="node-one")
    dispatcher.wait_settled(sid, 300)
    attempt = _one_failed_attempt(dispatcher, sid)
    assert attempt.blame is Blame.AGENT, (attempt.outcome, attempt.reason)
    log = _agent_log(dispatcher, sid, attempt)
    assert "freezing now" in log
    if attempt.outcome is AttemptOutcome.FAILED:  # the whole evaluator froze: the wrapper's watchdog
        assert attempt.exit_code == 124 and "hung" in (attempt.reason or ""), attempt.reason
        assert "printed nothing for 8 s" in log


def test_agent_over_its_memory_limit_is_oom_killed_and_blamed(
    node_dispatcher: Callable[..., NodeDispatcher], agent_images: AgentImages, tmp_path: Path
) -> None:
    track = single_route_track(tmp_path)
    track["pool"]["memory"] = "400Mi"
    dispatcher = node_dispatcher([track])
    dispatcher.start()
    sid = dispatcher.submit(agent_images.hostile("memory_hog.py"), track="node-one")
    dispatcher.wait_settled(sid, 300)
    attempt = _one_failed_attempt(dispatcher, sid)
    assert attempt.blame is Blame.AGENT, (attempt.outcome, attempt.reason)
    assert "holding 64 MiB" in _agent_log(dispatcher, sid, attempt)
    if attempt.outcome is AttemptOutcome.FAILED:
        assert "out of memory" in (attempt.reason or "") and "400Mi" in (attempt.reason or ""), attempt.reason


def test_simulator_container_killed_mid_route_is_retried_with_simulator_blame(
    node_dispatcher: Callable[..., NodeDispatcher], agent_images: AgentImages, tmp_path: Path
) -> None:
    # the longest route of sumo-test, so the kill lands while it is being driven
    dispatcher = node_dispatcher([single_route_track(tmp_path, route_set="sumo-test", route="9")])
    dispatcher.start()
    sid = dispatcher.submit(agent_images.sample("slow.py"), track="node-one")
    node = dispatcher.node

    def simulator_running_and_agent_driving() -> bool:
        attempts = _attempts(dispatcher, sid)
        if not attempts or "[1/1] RouteScenario_9" not in _agent_log(dispatcher, sid, attempts[0]):
            return False
        return bool(_simulator_containers(dispatcher, sid))

    _wait(simulator_running_and_agent_driving, 240, "the first attempt did not start driving", dispatcher)
    (container,) = _simulator_containers(dispatcher, sid)
    node.docker("kill", container)

    assert dispatcher.wait_settled(sid, 400) is S.FINISHED, dispatcher.tail()
    first, *rest = _attempts(dispatcher, sid)
    assert (first.outcome, first.blame) == (AttemptOutcome.FAILED, Blame.SIMULATOR), first.reason
    assert [a.outcome for a in rest] == [AttemptOutcome.RECORD]


def _simulator_containers(dispatcher: NodeDispatcher, sid: int) -> list[str]:
    pods = [p for p in _pods(dispatcher, sid) if p.status.phase == "Running"]
    if not pods:
        return []
    labels = (f"label=io.kubernetes.pod.name={pods[0].metadata.name}", "label=io.kubernetes.container.name=simulator")
    return dispatcher.node.docker("ps", "-q", "--filter", labels[0], "--filter", labels[1]).stdout.split()


def test_missing_agent_image_is_the_agents_fault_without_a_retry_storm(
    node_dispatcher: Callable[..., NodeDispatcher], tmp_path: Path
) -> None:
    dispatcher = node_dispatcher([single_route_track(tmp_path)])
    dispatcher.start()
    sid = dispatcher.submit("team/no-such-image:1", track="node-one")
    dispatcher.wait_settled(sid, 180)
    attempt = _one_failed_attempt(dispatcher, sid)
    assert (attempt.outcome, attempt.blame) == (AttemptOutcome.FAILED, Blame.AGENT)
    assert "team/no-such-image:1" in (attempt.reason or "") and "cannot be pulled" in (attempt.reason or "")
    time.sleep(3)  # nothing is launched again afterwards
    assert len(_attempts(dispatcher, sid)) == 1
    _wait(lambda: not _pods(dispatcher, sid), 60, "the failed attempt's pod was not removed", dispatcher)


def test_cancel_removes_the_pods_and_their_containers(
    node_dispatcher: Callable[..., NodeDispatcher], agent_images: AgentImages, tmp_path: Path
) -> None:
    dispatcher = node_dispatcher([single_route_track(tmp_path, route="2")])
    dispatcher.start()
    sid = dispatcher.submit(agent_images.sample("slow.py"), track="node-one")
    _wait(lambda: any(p.status.phase == "Running" for p in _pods(dispatcher, sid)), 180, "no pod ran", dispatcher)
    pod = _pods(dispatcher, sid)[0].metadata.name
    done = dispatcher.cli("cancel", str(sid), "--reason", "withdrawn by the team")
    assert done.returncode == 0, done.stdout + done.stderr
    assert dispatcher.wait_settled(sid, 120) is S.CANCELLED
    _wait(lambda: not _pods(dispatcher, sid), 90, "the cancelled attempt's pod is still there", dispatcher)
    node = dispatcher.node
    _wait(
        lambda: not node.docker("ps", "-q", "--filter", f"label=io.kubernetes.pod.name={pod}").stdout.split(),
        90,
        "containers of the cancelled pod still run",
        dispatcher,
    )
    _wait(lambda: _attempts(dispatcher, sid)[0].outcome is not None, 60, "the attempt did not end", dispatcher)
    attempt = _one_failed_attempt(dispatcher, sid)
    assert attempt.outcome is AttemptOutcome.CANCELLED, (attempt.outcome, attempt.reason)
