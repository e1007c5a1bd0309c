"""``lbcloud cluster doctor``: is the cluster healthy, and can it run GPU work?

Each check runs one read-only kubectl command (through the runner, so it is printed first) and
yields ok / warn / fail with one sentence. The optional GPU smoke test starts a pod that asks for
one GPU and runs ``nvidia-smi -L`` on it, which also proves the autoscaler can add a GPU node.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lbcloud.cluster.addons import AUTOSCALER_NAME, DEVICE_PLUGIN_NAME
from lbcloud.cluster.node_pools import GPU_LABEL, POOL_LABEL, SYSTEM_POOL, GpuPool
from lbcloud.cluster.plan import kubectl
from lbcloud.cluster.runner import CommandResult, CommandRunner
from lbcloud.cluster.spec import ClusterSpec

GPU_RESOURCE = "nvidia.com/gpu"
SMOKE_POD = "lbcloud-gpu-smoke"
# CUDA 11.4 base image: runs on the 470 driver series as well as on newer drivers.
SMOKE_IMAGE = "docker.io/nvidia/cuda:11.4.3-base-ubuntu20.04"
SMOKE_TIMEOUT = "900s"  # a pool at zero needs a few minutes to get a node


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    """The result of one doctor check."""

    check: str
    status: Status
    detail: str


def _json(result: CommandResult) -> dict[str, Any] | None:
    if not result.ok:
        return None
    try:
        loaded = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None
    return loaded if isinstance(loaded, dict) else None


def _ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _nodes(spec: ClusterSpec, runner: CommandRunner) -> Iterator[Finding]:
    data = _json(runner.run(kubectl(spec, "get", "nodes", "-o", "json")))
    if data is None:
        yield Finding("nodes", Status.FAIL, "cannot list nodes")
        return
    nodes = data.get("items", [])
    labels = [n.get("metadata", {}).get("labels", {}) for n in nodes]
    system_ready = sum(
        1 for n, lab in zip(nodes, labels, strict=True) if lab.get(POOL_LABEL) == SYSTEM_POOL and _ready(n)
    )
    not_ready = [n["metadata"]["name"] for n in nodes if not _ready(n)]
    if system_ready == 0:
        yield Finding("nodes", Status.FAIL, "no Ready node in the system pool: lbcloud cannot run")
    elif not_ready:
        yield Finding("nodes", Status.WARN, f"{len(nodes)} node(s), not Ready: {', '.join(not_ready)}")
    else:
        yield Finding("nodes", Status.OK, f"{len(nodes)} node(s) Ready ({system_ready} in the system pool)")
    gpu_nodes = [n for n, lab in zip(nodes, labels, strict=True) if lab.get(GPU_LABEL) == "true"]
    if not gpu_nodes:
        yield Finding(
            "gpus",
            Status.OK,
            "no GPU node running: the GPU pools are scaled to zero (the autoscaler adds nodes when evaluations wait)",
        )
        return
    missing = [
        n["metadata"]["name"]
        for n in gpu_nodes
        if int(n.get("status", {}).get("allocatable", {}).get(GPU_RESOURCE, "0")) < 1
    ]
    total = sum(int(n.get("status", {}).get("allocatable", {}).get(GPU_RESOURCE, "0")) for n in gpu_nodes)
    if missing:
        yield Finding(
            "gpus",
            Status.FAIL,
            f"GPU node(s) without allocatable {GPU_RESOURCE}: {', '.join(missing)} (driver or device plugin problem)",
        )
    else:
        yield Finding("gpus", Status.OK, f"{total} allocatable GPU(s) on {len(gpu_nodes)} GPU node(s)")


def _daemonset(spec: ClusterSpec, runner: CommandRunner) -> Finding:
    data = _json(runner.run(kubectl(spec, "-n", "kube-system", "get", "daemonset", DEVICE_PLUGIN_NAME, "-o", "json")))
    if data is None:
        return Finding("device plugin", Status.FAIL, f"DaemonSet kube-system/{DEVICE_PLUGIN_NAME} not found")
    status = data.get("status", {})
    desired, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
    if ready < desired:
        return Finding("device plugin", Status.FAIL, f"{ready} of {desired} device plugin pod(s) ready")
    return Finding("device plugin", Status.OK, f"running on {ready} GPU node(s)")


def _deployment(spec: ClusterSpec, runner: CommandRunner, check: str, namespace: str, name: str) -> Finding:
    data = _json(runner.run(kubectl(spec, "-n", namespace, "get", "deployment", name, "-o", "json")))
    if data is None:
        return Finding(check, Status.FAIL, f"Deployment {namespace}/{name} not found")
    wanted = data.get("spec", {}).get("replicas", 1)
    available = data.get("status", {}).get("availableReplicas", 0) or 0
    if available < 1:
        return Finding(
            check,
            Status.FAIL,
            f"{namespace}/{name}: no replica available (see: kubectl -n {namespace} describe deployment {name})",
        )
    if available < wanted:
        return Finding(check, Status.WARN, f"{namespace}/{name}: {available} of {wanted} replica(s) available")
    return Finding(check, Status.OK, f"{namespace}/{name}: {available} replica(s) available and healthy")


def _web_health(spec: ClusterSpec, runner: CommandRunner) -> Finding:
    # through the API server's service proxy: the same path a load balancer would take to the pods
    path = f"/api/v1/namespaces/{spec.namespace}/services/http:lbcloud-web:http/proxy/healthz"
    result = runner.run(kubectl(spec, "get", "--raw", path))
    if not result.ok:
        return Finding("web health", Status.FAIL, f"/healthz did not answer: {result.last_error_line()}")
    return Finding("web health", Status.OK, "/healthz answers")


def smoke_pod_manifest(spec: ClusterSpec, pool: GpuPool) -> dict[str, Any]:
    """A pod that needs one GPU of ``pool`` and prints the GPUs it sees."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": SMOKE_POD,
            "namespace": spec.namespace,
            "labels": {"app.kubernetes.io/name": "lbcloud", "app.kubernetes.io/component": "gpu-smoke"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "nodeSelector": {POOL_LABEL: pool.name},
            "tolerations": [{"key": t.key, "operator": "Exists", "effect": t.effect} for t in pool.taints],
            "containers": [
                {
                    "name": "nvidia-smi",
                    "image": SMOKE_IMAGE,
                    "command": ["nvidia-smi", "-L"],
                    "resources": {"limits": {GPU_RESOURCE: 1}},
                    "securityContext": {"allowPrivilegeEscalation": False},
                }
            ],
        },
    }


def _gpu_smoke(spec: ClusterSpec, runner: CommandRunner, pool: GpuPool) -> Finding:
    check = f"gpu smoke ({pool.name})"
    pod = f"pod/{SMOKE_POD}"
    ns = ("-n", spec.namespace)
    runner.run(kubectl(spec, *ns, "delete", pod, "--ignore-not-found", "--wait=true"))
    created = runner.run(kubectl(spec, "apply", "-f", "-"), stdin=json.dumps(smoke_pod_manifest(spec, pool)))
    if not created.ok:
        return Finding(check, Status.FAIL, f"cannot create the smoke pod: {created.last_error_line()}")
    try:
        waited = runner.run(
            kubectl(spec, *ns, "wait", "--for=jsonpath={.status.phase}=Succeeded", pod, f"--timeout={SMOKE_TIMEOUT}")
        )
        logs = runner.run(kubectl(spec, *ns, "logs", pod))
    finally:
        runner.run(kubectl(spec, *ns, "delete", pod, "--ignore-not-found", "--wait=false"))
    if waited.ok and "GPU 0" in logs.stdout:
        return Finding(
            check, Status.OK, f"a pod got a GPU on {pool.instance_type}: {logs.stdout.strip().splitlines()[0]}"
        )
    reason = logs.stdout.strip() or waited.last_error_line()
    return Finding(check, Status.FAIL, f"the smoke pod did not run nvidia-smi: {reason}")


def run_doctor(
    spec: ClusterSpec,
    runner: CommandRunner,
    *,
    gpu_smoke_pool: str | None = None,
    report: Callable[[Finding], None] | None = None,
) -> list[Finding]:
    """Run every check in order (stopping early when the cluster is unreachable); returns the findings."""
    findings: list[Finding] = []

    def add(finding: Finding) -> None:
        findings.append(finding)
        if report is not None:
            report(finding)

    context = runner.run(("kubectl", "config", "get-contexts", spec.kube_context))
    if not context.ok:
        add(Finding("context", Status.FAIL, f"no kubectl context {spec.kube_context}: run `lbcloud cluster up` first"))
        return findings
    add(Finding("context", Status.OK, spec.kube_context))
    ready = runner.run(kubectl(spec, "get", "--raw", "/readyz"))
    if not ready.ok:
        add(Finding("api server", Status.FAIL, f"not reachable: {ready.last_error_line()}"))
        return findings
    add(Finding("api server", Status.OK, "ready"))
    for finding in _nodes(spec, runner):
        add(finding)
    add(_daemonset(spec, runner))
    add(_deployment(spec, runner, "autoscaler", "kube-system", AUTOSCALER_NAME))
    add(_deployment(spec, runner, "dispatcher", spec.namespace, "lbcloud-dispatcher"))
    add(_deployment(spec, runner, "web", spec.namespace, "lbcloud-web"))
    add(_web_health(spec, runner))
    if gpu_smoke_pool is not None:
        pool = spec.pool(gpu_smoke_pool)
        if pool is None:
            add(Finding("gpu smoke", Status.FAIL, f"no GPU pool named {gpu_smoke_pool!r}"))
        else:
            add(_gpu_smoke(spec, runner, pool))
    return findings
