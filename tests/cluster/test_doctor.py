"""`cluster doctor`: each check reads kubectl's JSON and says ok / warn / fail in one sentence."""

from __future__ import annotations

import json
from typing import Any

from lbcloud.cluster.doctor import SMOKE_POD, Finding, Status, run_doctor, smoke_pod_manifest
from lbcloud.cluster.spec import ClusterSpec
from tests.cluster.fakes import FakeRunner


def _node(name: str, pool: str, *, ready: bool = True, gpus: int | None = None) -> dict[str, Any]:
    labels = {"lbcloud.io/pool": pool}
    allocatable = {"cpu": "4"}
    if gpus is not None:
        labels["lbcloud.io/gpu"] = "true"
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "allocatable": allocatable,
        },
    }


def _deployment(replicas: int, available: int) -> str:
    return json.dumps({"spec": {"replicas": replicas}, "status": {"availableReplicas": available}})


def _healthy(nodes: list[dict[str, Any]]) -> FakeRunner:
    fake = FakeRunner()
    fake.on("get", "--raw", "/readyz", stdout="ok")
    fake.on("get", "nodes", stdout=json.dumps({"items": nodes}))
    gpu_nodes = sum(1 for n in nodes if "lbcloud.io/gpu" in n["metadata"]["labels"])
    fake.on(
        "get",
        "daemonset",
        stdout=json.dumps({"status": {"desiredNumberScheduled": gpu_nodes, "numberReady": gpu_nodes}}),
    )
    fake.on("get", "deployment", "cluster-autoscaler", stdout=_deployment(1, 1))
    fake.on("get", "deployment", "lbcloud-dispatcher", stdout=_deployment(1, 1))
    fake.on("get", "deployment", "lbcloud-web", stdout=_deployment(2, 2))
    return fake


def _statuses(findings: list[Finding]) -> dict[str, Status]:
    return {f.check: f.status for f in findings}


def test_a_healthy_idle_cluster_passes_with_gpu_pools_at_zero(example_spec: ClusterSpec) -> None:
    fake = _healthy([_node("sys-1", "system")])
    findings = run_doctor(example_spec, fake)
    assert set(_statuses(findings).values()) == {Status.OK}
    assert [f.check for f in findings] == [
        "context", "api server", "nodes", "gpus", "device plugin", "autoscaler", "dispatcher", "web", "web health",
    ]  # fmt: skip
    gpus = next(f for f in findings if f.check == "gpus")
    assert "scaled to zero" in gpus.detail
    assert all(c.argv[:3] == ("kubectl", "--context", "lbcloud-leaderboard") for c in fake.calls[1:])


def test_gpu_nodes_without_allocatable_gpus_fail(example_spec: ClusterSpec) -> None:
    fake = _healthy(
        [_node("sys-1", "system"), _node("gpu-1", "g5-xlarge", gpus=1), _node("gpu-2", "g5-xlarge", gpus=0)]
    )
    findings = {f.check: f for f in run_doctor(example_spec, fake)}
    assert findings["gpus"].status is Status.FAIL
    assert "gpu-2" in findings["gpus"].detail and "gpu-1" not in findings["gpus"].detail


def test_allocatable_gpus_are_counted(example_spec: ClusterSpec) -> None:
    fake = _healthy(
        [_node("sys-1", "system"), _node("gpu-1", "g5-12xlarge", gpus=4), _node("gpu-2", "g5-xlarge", gpus=1)]
    )
    gpus = next(f for f in run_doctor(example_spec, fake) if f.check == "gpus")
    assert gpus.status is Status.OK
    assert gpus.detail == "5 allocatable GPU(s) on 2 GPU node(s)"


def test_missing_context_stops_early_with_advice(example_spec: ClusterSpec) -> None:
    fake = FakeRunner()
    fake.on("kubectl", "config", "get-contexts", returncode=1)
    findings = run_doctor(example_spec, fake)
    assert len(findings) == 1 and findings[0].status is Status.FAIL
    assert "run `lbcloud cluster up` first" in findings[0].detail
    assert len(fake.calls) == 1


def test_unreachable_api_server_stops_early(example_spec: ClusterSpec) -> None:
    fake = FakeRunner()
    fake.on("get", "--raw", returncode=1, stderr="Unable to connect to the server: dial tcp: i/o timeout")
    findings = run_doctor(example_spec, fake)
    assert findings[-1].check == "api server" and findings[-1].status is Status.FAIL
    assert "i/o timeout" in findings[-1].detail


def test_unhealthy_parts_are_named(example_spec: ClusterSpec) -> None:
    fake = _healthy([_node("sys-1", "system", ready=False), _node("gpu-1", "g5-xlarge", gpus=1)])
    fake.on("get", "daemonset", stdout=json.dumps({"status": {"desiredNumberScheduled": 1, "numberReady": 0}}))
    fake.on("get", "deployment", "lbcloud-dispatcher", stdout=_deployment(1, 0))
    fake.on("get", "deployment", "lbcloud-web", stdout=_deployment(2, 1))
    fake.on("get", "deployment", "cluster-autoscaler", returncode=1, stderr="NotFound")
    fake.on(
        "get",
        "--raw",
        "/api/v1/namespaces/lbcloud/services/http:lbcloud-web:http/proxy/healthz",
        returncode=1,
        stderr="Error from server (ServiceUnavailable): the server is currently unable to handle the request",
    )
    statuses = _statuses(run_doctor(example_spec, fake))
    assert statuses["nodes"] is Status.FAIL  # no Ready system node
    assert statuses["device plugin"] is Status.FAIL
    assert statuses["autoscaler"] is Status.FAIL
    assert statuses["dispatcher"] is Status.FAIL
    assert statuses["web"] is Status.WARN
    assert statuses["web health"] is Status.FAIL


def test_gpu_smoke_pod_runs_nvidia_smi_and_is_cleaned_up(example_spec: ClusterSpec) -> None:
    fake = _healthy([_node("sys-1", "system")])
    fake.on("logs", stdout="GPU 0: NVIDIA A10G (UUID: GPU-1234)\n")
    findings = run_doctor(example_spec, fake, gpu_smoke_pool="g5-xlarge")
    smoke = findings[-1]
    assert smoke.check == "gpu smoke (g5-xlarge)" and smoke.status is Status.OK
    assert "NVIDIA A10G" in smoke.detail
    created = fake.ran("kubectl", "apply", "-f", "-")[0]
    pod = json.loads(created.stdin or "{}")
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert pod["spec"]["nodeSelector"] == {"lbcloud.io/pool": "g5-xlarge"}
    assert fake.calls[-1].argv[-4:] == ("delete", f"pod/{SMOKE_POD}", "--ignore-not-found", "--wait=false")


def test_gpu_smoke_failure_says_why(example_spec: ClusterSpec) -> None:
    fake = _healthy([_node("sys-1", "system")])
    fake.on("wait", returncode=1, stderr="error: timed out waiting for the condition on pods/lbcloud-gpu-smoke")
    smoke = run_doctor(example_spec, fake, gpu_smoke_pool="g5-xlarge")[-1]
    assert smoke.status is Status.FAIL
    assert "timed out waiting" in smoke.detail
    assert fake.ran("delete", f"pod/{SMOKE_POD}", "--wait=false")  # cleaned up even on failure


def test_gpu_smoke_on_an_unknown_pool(example_spec: ClusterSpec) -> None:
    smoke = run_doctor(example_spec, _healthy([_node("sys-1", "system")]), gpu_smoke_pool="p5")[-1]
    assert smoke.status is Status.FAIL and "no GPU pool named 'p5'" in smoke.detail


def test_smoke_pod_tolerates_the_pools_taints(example_spec: ClusterSpec) -> None:
    pod = smoke_pod_manifest(example_spec, example_spec.gpu_pools[0])
    assert pod["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["spec"]["automountServiceAccountToken"] is False
