"""A team's image evaluated on sumo-test by `lbcloud serve` with the Kubernetes backend on a real node.

Every attempt is a Job whose pod runs real containers (contents, prepare, agent, simulator, reporter)
on kube-test-cluster's node; the reporter reaches the dispatcher at the bridge address with its
per-attempt token. The scores must equal the local backend's on the same routes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lbcloud.domain.artifact_keys import attempt_log_key, route_record_key
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import AttemptOutcome, RouteTaskStatus
from lbcloud.entrypoints.wiring import build_system
from lbcloud.settings import load_settings
from tests.e2e.k8s_node.node_support import AGENTS, AgentImages, NodeDispatcher, node_track
from tests.services.kube_node import KubeNode

# the first test of a session may build lbcloud's images (cold cache: a few minutes) in its setup
pytestmark = [pytest.mark.k8s_node, pytest.mark.slow, pytest.mark.timeout(1800)]
NODE_NAME = "ktc-node"


def _records(document: str) -> dict[str, Any]:
    return {r.route_id: r for r in parse_results(document, "merged").records}


def _local_run(tmp_path: Path, track: dict[str, Any]) -> dict[str, Any]:
    """The same track and agent on the local backend (processes on this machine)."""
    settings = load_settings(None, data_dir=str(tmp_path / "local"), local={"slots": 2}, tracks=[track])
    system = build_system(settings)
    try:
        sub, _ = system.intake.submit(
            NewSubmission(
                team="alpha", track=track["name"], agent=AgentRef(AgentKind.LOCAL, str(AGENTS / "competent.py"))
            )
        )
        assert system.dispatcher().run_until_idle(tick_s=0.2, timeout_s=900)
        assert system.store.get_submission(sub.id).status is SubmissionStatus.FINISHED
        merged = system.store.merged_result(sub.id)
        assert merged is not None
        return _records(merged.document)
    finally:
        system.close()


def _follow_agent_log(node: KubeNode, namespace: str, pod: str, into: list[str]) -> None:
    """Follow the agent container's log through the API server (pods/log, proxied to the kubelet)."""
    from kubernetes import client

    api = node.api_client()
    try:
        stream = client.CoreV1Api(api).read_namespaced_pod_log(
            pod, namespace, container="agent", follow=True, _preload_content=False, _request_timeout=600
        )
        for chunk in stream.stream(1024):
            into.append(chunk.decode("utf-8", "replace"))
    finally:
        api.close()


def test_sumo_test_on_the_node_collects_every_record_with_the_local_backends_scores(
    node_dispatcher: Callable[..., NodeDispatcher], agent_images: AgentImages, kube_node_namespace: str, tmp_path: Path
) -> None:
    image = agent_images.sample("competent.py")
    dispatcher = node_dispatcher()
    dispatcher.start()
    sid = dispatcher.submit(image)

    # follow the first pod's agent log live, as `kubectl logs -f` would
    node = dispatcher.node
    api = node.api_client()
    core = client.CoreV1Api(api)
    followed: list[str] = []
    follower: threading.Thread | None = None
    deadline = time.monotonic() + 180
    while follower is None and time.monotonic() < deadline:
        pods = core.list_namespaced_pod(kube_node_namespace, label_selector=f"lbcloud.io/submission={sid}").items
        running = [p for p in pods if p.status.phase == "Running"]
        if running:
            pod = running[0].metadata.name
            follower = threading.Thread(target=_follow_agent_log, args=(node, kube_node_namespace, pod, followed))
            follower.start()
        time.sleep(0.2)
    api.close()
    assert follower is not None, "no attempt pod ran within 180 s"

    assert dispatcher.wait_settled(sid, 900) is SubmissionStatus.FINISHED, dispatcher.tail()
    follower.join(timeout=60)
    store = dispatcher.system.store
    tasks = store.route_tasks(sid)
    assert len(tasks) == 10 and all(t.status is RouteTaskStatus.DONE for t in tasks)
    for task in tasks:
        attempts = store.attempts(task_id=task.id)
        assert [a.outcome for a in attempts] == [AttemptOutcome.RECORD], (task.route_id, [a.reason for a in attempts])
        assert attempts[0].node == NODE_NAME and attempts[0].handle
        assert dispatcher.system.artifacts.exists(route_record_key(sid, task.route_id, task.repetition))
        agent_log = dispatcher.system.artifacts.get(attempt_log_key(sid, attempts[0].id, "agent")).decode()
        assert "lbcloud: simulator ready at" in agent_log and f"RouteScenario_{task.route_id}_rep0" in agent_log
    followed_text = "".join(followed)
    assert "lbcloud: simulator ready at" in followed_text and "RouteScenario_" in followed_text, followed_text[-2000:]

    merged = store.merged_result(sid)
    assert merged is not None and merged.final
    on_node = _records(merged.document)
    local = _local_run(tmp_path, node_track())
    assert sorted(on_node) == sorted(local)
    for route_id, record in on_node.items():
        other = local[route_id]
        assert (record.status, record.scores, dict(record.infractions)) == (
            other.status,
            other.scores,
            dict(other.infractions),
        ), route_id
