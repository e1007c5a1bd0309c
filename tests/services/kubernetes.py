"""pytest fixtures for a real Kubernetes API server started by the suite (``kube-test-cluster``).

``../shared/tools/kube-test-cluster`` runs etcd, kube-apiserver and kube-controller-manager
(Kubernetes v1.20) as local processes on 127.0.0.1. There is no scheduler and no kubelet: Pods stay
Pending until a test patches ``pods/status`` itself; the job, garbage-collector, namespace and
service-account controllers do run. Fields newer than 1.20 are dropped silently on create, so
validate such manifests offline (``kubernetes-validate``) and use this server for behaviour.

Fixtures (mark tests that use them ``@pytest.mark.k8s_real``):

``kube_test_cluster`` (session)
    Starts one cluster for the whole test session on free loopback ports (so it never collides with
    a developer's own cluster) and stops it at the end. Skips when the tool's binaries are not built
    (``kube-test-cluster available`` fails); never builds from inside a test run. Gives a
    :class:`KubeTestCluster`: ``kubeconfig`` path, ``api_client()`` for the official ``kubernetes``
    client, ``env()`` for subprocesses such as kubectl.

``kube_namespace`` (per test)
    A fresh namespace whose ``default`` ServiceAccount is ready (so Pods can be created at once),
    deleted after the test. Gives a :class:`KubeNamespace`: ``name`` and ``cluster``.

There is no kubelet: :func:`finish_pod` plays one and ends a Pod with given exit codes (the Job
controller then marks its Job Complete or Failed).

Example::

    @pytest.mark.k8s_real
    def test_job_appears(kube_namespace: KubeNamespace) -> None:
        batch = kubernetes.client.BatchV1Api(kube_namespace.cluster.api_client())
        batch.create_namespaced_job(kube_namespace.name, job_body)
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBE_TEST_CLUSTER = REPO_ROOT.parent / "shared" / "tools" / "kube-test-cluster"
UP_TIMEOUT_S = 180
NAMESPACE_READY_TIMEOUT_S = 30


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class KubeTestCluster:
    """A running kube-test-cluster: where its kubeconfig is and how to talk to it."""

    kubeconfig: Path
    api_port: int
    state_dir: Path

    def api_client(self):  # type: ignore[no-untyped-def]  # kubernetes.client.ApiClient (untyped package)
        """A new ``kubernetes.client.ApiClient`` for this cluster (admin rights)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def env(self) -> dict[str, str]:
        """The current environment with ``KUBECONFIG`` pointing at this cluster (for kubectl)."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}


@dataclass(frozen=True)
class KubeNamespace:
    """A namespace created for one test in the session's cluster."""

    name: str
    cluster: KubeTestCluster


def finish_pod(api_client, namespace: str, pod: str, exit_codes: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    """Play the kubelet: mark ``pod`` terminated, each container with its exit code.

    The phase is Succeeded when every code is 0, else Failed. ``api_client`` is a
    ``kubernetes.client.ApiClient`` (e.g. ``cluster.api_client()``).
    """
    from kubernetes import client

    statuses = [
        {
            "name": name,
            "image": "none",
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}},
        }
        for name, code in exit_codes.items()
    ]
    phase = "Succeeded" if all(code == 0 for code in exit_codes.values()) else "Failed"
    client.CoreV1Api(api_client).patch_namespaced_pod_status(
        pod, namespace, {"status": {"phase": phase, "containerStatuses": statuses}}
    )


def _tool(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KUBE_TEST_CLUSTER), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def kube_test_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestCluster]:
    """One real Kubernetes v1.20 control plane for the session (skips when the tool is not built)."""
    if not KUBE_TEST_CLUSTER.is_file():
        pytest.skip(f"kube-test-cluster not found at {KUBE_TEST_CLUSTER}")
    env = dict(os.environ)
    available = _tool("available", env=env, timeout=60)
    if available.returncode != 0:
        reason = (available.stdout + available.stderr).strip().splitlines()
        pytest.skip(f"kube-test-cluster is not available ({reason[-1] if reason else 'no output'})")
    api_port = _free_port()
    env.update(
        {
            "KUBE_TEST_CLUSTER_API_PORT": str(api_port),
            "KUBE_TEST_CLUSTER_ETCD_PORT": str(_free_port()),
            "KUBE_TEST_CLUSTER_ETCD_PEER_PORT": str(_free_port()),
        }
    )
    state_dir = tmp_path_factory.mktemp("kube-test-cluster") / "cluster"
    started = _tool("up", str(state_dir), env=env, timeout=UP_TIMEOUT_S)
    if started.returncode != 0:
        _tool("down", str(state_dir), env=env, timeout=60)
        pytest.fail(f"kube-test-cluster up failed (exit {started.returncode}):\n{started.stderr[-3000:]}")
    try:
        yield KubeTestCluster(kubeconfig=state_dir / "kubeconfig", api_port=api_port, state_dir=state_dir)
    finally:
        stopped = _tool("down", str(state_dir), env=env, timeout=60)
        if stopped.returncode != 0:
            print(f"kube-test-cluster down failed: {stopped.stderr[-2000:]}")


def _namespace_name(test_name: str) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{stem}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def kube_namespace(kube_test_cluster: KubeTestCluster, request: pytest.FixtureRequest) -> Iterator[KubeNamespace]:
    """A fresh namespace (default ServiceAccount ready), deleted after the test."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = kube_test_cluster.api_client()
    core = client.CoreV1Api(api)
    name = _namespace_name(request.node.name)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    deadline = time.monotonic() + NAMESPACE_READY_TIMEOUT_S
    while True:  # ServiceAccount admission rejects Pods until the token controller has done its work
        try:
            account = core.read_namespaced_service_account("default", name)
            if account.secrets:
                break
        except ApiException as err:
            if err.status != 404:
                raise
        if time.monotonic() > deadline:
            pytest.fail(f"namespace {name}: default ServiceAccount not ready after {NAMESPACE_READY_TIMEOUT_S} s")
        time.sleep(0.1)
    try:
        yield KubeNamespace(name=name, cluster=kube_test_cluster)
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise
        api.close()
