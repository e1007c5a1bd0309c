"""On a real node: the dispatcher SIGKILLed mid-run and restarted (attempts adopted by label), and a
hostile agent's view of its sandbox (tokens, file system, capabilities, network)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from lbcloud.domain.artifact_keys import attempt_log_key
from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.domain.tasks import AttemptOutcome, RouteTaskStatus
from tests.e2e.k8s_node.node_support import AgentImages, NodeDispatcher, node_track, single_route_track

# the first test of a session may build lbcloud's images (cold cache: a few minutes) in its setup
pytestmark = [pytest.mark.k8s_node, pytest.mark.slow, pytest.mark.timeout(1800)]


def test_dispatcher_sigkill_then_restart_adopts_the_running_pods_by_label(
    node_dispatcher: Callable[..., NodeDispatcher], agent_images: AgentImages
) -> None:
    track = node_track(name="node-dev", routes_file=node_track()["routes_file"].replace("sumo-test", "sumo-dev"))
    track.update({"smoke_route": None, "public_routes": []})
    dispatcher = node_dispatcher([track])
    dispatcher.start()
    sid = dispatcher.submit(agent_images.sample("slow.py"), track="node-dev")
    store = dispatcher.system.store
    api = dispatcher.node.api_client()
    core = client.CoreV1Api(api)

    def running_pods() -> list[str]:
        pods = core.list_namespaced_pod(dispatcher.namespace, label_selector=f"lbcloud.io/submission={sid}").items
        return [p.metadata.labels["lbcloud.io/attempt"] for p in pods if p.status.phase == "Running"]

    deadline = time.monotonic() + 240
    while not running_pods() and time.monotonic() < deadline:
        time.sleep(0.2)
    in_flight = {int(a) for a in running_pods()}
    assert in_flight, "no attempt pod ran"
    dispatcher.kill()
    # the pods do not depend on the dispatcher: they keep running while it is away
    time.sleep(2)
    assert in_flight & {int(a) for a in running_pods()}
    dispatcher.start()
    try:
        assert dispatcher.wait_settled(sid, 600) is SubmissionStatus.FINISHED, dispatcher.tail()
    finally:
        api.close()
    tasks = store.route_tasks(sid)
    assert all(t.status is RouteTaskStatus.DONE for t in tasks)
    for task in tasks:
        records = [a for a in store.attempts(task_id=task.id) if a.outcome is AttemptOutcome.RECORD]
        assert len(records) == 1, task.route_id
    for attempt_id in in_flight:  # collected from the same pod, not run again
        assert store.get_attempt(attempt_id).outcome is AttemptOutcome.RECORD


def test_hostile_agent_finds_no_token_no_way_out_and_a_read_only_system(
    node_dispatcher: Callable[..., NodeDispatcher], agent_images: AgentImages, tmp_path: Path
) -> None:
    dispatcher = node_dispatcher([single_route_track(tmp_path, read_only_root=True)])
    node = dispatcher.node
    api_port = int(dict(node.env_base).get("KUBE_TEST_CLUSTER_API_PORT") or _api_port(node.kubeconfig))
    targets = tmp_path / "targets.json"
    targets.write_text(
        json.dumps(
            {
                "bridge": node.bridge_address,
                "api_port": api_port,
                "dispatcher": f"http://{node.bridge_address}:{dispatcher.port}",
            }
        )
    )
    image = agent_images.hostile("probe.py", extra_files=(targets,), tag=f"-{dispatcher.port}")
    dispatcher.start()
    sid = dispatcher.submit(image, track="node-one")
    assert dispatcher.wait_settled(sid, 300) is SubmissionStatus.FINISHED, dispatcher.tail()
    (attempt,) = dispatcher.system.store.attempts(submission_id=sid)
    assert attempt.outcome is AttemptOutcome.RECORD, attempt.reason  # it drove, so the probe ran in full
    log = dispatcher.system.artifacts.get(attempt_log_key(sid, attempt.id, "agent")).decode()
    found = json.loads(log.split("PROBE ", 1)[1].splitlines()[0])
    assert found["uid"] != 0
    assert found["service_account_token"] is False
    assert found["tokens_in_env"] == []
    assert found["write_root"] == "Read-only file system"
    assert found["write_contents"] == "Read-only file system"
    assert found["write_tmp"] == "written"
    assert found["cap_eff"] == "0000000000000000" and found["no_new_privs"] == "1"
    # one route, to the pod network (10.244.250.0/24 in /proc's little-endian hex): no default route
    assert found["route_destinations"] == ["00FAF40A"], found["route_destinations"]
    assert found["api_server"] == "ConnectionRefusedError"  # it listens on the host's loopback only
    assert found["reporter_visible"] is False
    assert found["dispatcher_without_token"] == 401


def _api_port(kubeconfig: Path) -> int:
    match = re.search(r"server: https://127\.0\.0\.1:(\d+)", kubeconfig.read_text())
    assert match, "no API server address in the kubeconfig"
    return int(match.group(1))
