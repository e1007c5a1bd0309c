"""pytest fixtures for a real Kubernetes node started by the suite (``kube-test-cluster up --with-node``).

The node (``ktc-node``) runs real containers: its own ``dockerd``, kube-scheduler and a v1.20 kubelet
with dockershim. Pods live on the tool's bridge (``10.244.250.0/24``); the host is ``10.244.250.1``
and pods reach nothing else (no default route, no DNS, no Services, not the API server). Images are
never pulled: every pod must say ``imagePullPolicy: Never``, and images are loaded into the node's
Docker after ``up`` (each ``up`` starts with an empty Docker).

Fixtures (mark tests that use them ``@pytest.mark.k8s_node``):

``kube_node`` (session)
    Starts one cluster with a node for the session (control plane on free loopback ports; the node on
    the tool's default bridge) and stops it at the end. Skips when the tool is not built or installed
    (``kube-test-cluster available --with-node`` fails, e.g. not root); never builds from inside a
    test run. Gives a :class:`KubeNode`.

``kube_node_namespace`` (per test)
    A fresh namespace whose ``default`` ServiceAccount is ready, deleted after the test.

Images of lbcloud itself are built by ``scripts/build-images`` into the node's Docker: see
``tests/e2e/k8s_node/conftest.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services.kubernetes import KUBE_TEST_CLUSTER, _free_port, _tool

NODE_UP_TIMEOUT_S = 300
NAMESPACE_READY_TIMEOUT_S = 30
BRIDGE_ADDRESS = "10.244.250.1"
"""The host's address on the node's bridge: the only address pods can reach besides each other."""


@dataclass(frozen=True)
class KubeNode:
    """A running cluster with one real node: kubeconfig, the node's Docker and the bridge address."""

    kubeconfig: Path
    docker_host: str
    state_dir: Path
    bridge_address: str
    env_base: tuple[tuple[str, str], ...]

    def api_client(self) -> Any:
        """A new ``kubernetes.client.ApiClient`` for this cluster (admin rights)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def env(self) -> dict[str, str]:
        """The environment with ``KUBECONFIG`` and ``DOCKER_HOST`` (the node's dockerd) set."""
        return {
            **os.environ,
            **dict(self.env_base),
            "KUBECONFIG": str(self.kubeconfig),
            "DOCKER_HOST": self.docker_host,
        }

    def docker(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the docker client against the node's dockerd."""
        result = subprocess.run(
            ["docker", *args], env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result

    def has_image(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, check=False).returncode == 0

    def containers(self, label: str) -> list[str]:
        """Ids of the node's containers (running or not) carrying ``label`` (``key=value``)."""
        out = self.docker("ps", "-aq", "--filter", f"label={label}").stdout
        return [line for line in out.split() if line]


class NodeUnavailable(RuntimeError):
    """kube-test-cluster cannot start a node here (not built, not installed or not root)."""


def node_from_dir(state_dir: Path, env_base: tuple[tuple[str, str], ...] = ()) -> KubeNode:
    """The cluster kube-test-cluster runs from ``state_dir`` (started with ``up --with-node``)."""
    return KubeNode(
        kubeconfig=state_dir / "kubeconfig",
        docker_host=f"unix://{state_dir}/node/docker.sock",
        state_dir=state_dir,
        bridge_address=BRIDGE_ADDRESS,
        env_base=env_base,
    )


def start_node() -> KubeNode:
    """``up --with-node`` on free loopback ports for the control plane (the node uses the tool's
    default bridge). Raises :class:`NodeUnavailable` when the tool cannot, ``RuntimeError`` when ``up`` fails."""
    if not KUBE_TEST_CLUSTER.is_file():
        raise NodeUnavailable(f"kube-test-cluster not found at {KUBE_TEST_CLUSTER}")
    env = dict(os.environ)
    available = _tool("available", "--with-node", env=env, timeout=60)
    if available.returncode != 0:
        reason = (available.stdout + available.stderr).strip().splitlines()
        raise NodeUnavailable(f"kube-test-cluster --with-node is not available ({reason[-1] if reason else '?'})")
    ports = {
        "KUBE_TEST_CLUSTER_API_PORT": str(_free_port()),
        "KUBE_TEST_CLUSTER_ETCD_PORT": str(_free_port()),
        "KUBE_TEST_CLUSTER_ETCD_PEER_PORT": str(_free_port()),
    }
    env.update(ports)
    # the socket path under DIR must stay short (the tool allows at most 59 characters)
    state_dir = Path(f"/tmp/lbcloud-ktc-{uuid.uuid4().hex[:8]}")
    started = _tool("up", "--with-node", str(state_dir), env=env, timeout=NODE_UP_TIMEOUT_S)
    if started.returncode != 0:
        _tool("down", str(state_dir), env=env, timeout=180)
        raise RuntimeError(f"kube-test-cluster up --with-node failed ({started.returncode}):\n{started.stderr[-3000:]}")
    return node_from_dir(state_dir, tuple(ports.items()))


def stop_node(node: KubeNode) -> None:
    """``down``: stops the processes ``up`` started, removes containers, the bridge and the folder."""
    stopped = _tool("down", str(node.state_dir), env=node.env(), timeout=180)
    if stopped.returncode != 0:
        print(f"kube-test-cluster down failed: {stopped.stderr[-2000:]}")


def create_namespace(node: KubeNode, name: str) -> None:
    """Create ``name`` and wait until Pods can be admitted in it."""
    from kubernetes import client

    api = node.api_client()
    try:
        core = client.CoreV1Api(api)
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        wait_namespace_ready(core, name)
    finally:
        api.close()


def delete_namespace(node: KubeNode, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = node.api_client()
    try:
        client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")
    except ApiException as err:
        if err.status != 404:
            raise
    finally:
        api.close()


@pytest.fixture(scope="session")
def kube_node() -> Iterator[KubeNode]:
    """One real Kubernetes v1.20 cluster with a node for the session (skips when not available).

    ``LBCLOUD_TEST_KUBE_NODE_DIR`` names a cluster already started with ``up --with-node`` (its
    state folder): the session then uses it and leaves it running (quicker iterations)."""
    reuse = os.environ.get("LBCLOUD_TEST_KUBE_NODE_DIR")
    if reuse:
        yield node_from_dir(Path(reuse))
        return
    try:
        node = start_node()
    except NodeUnavailable as err:
        pytest.skip(str(err))
    except RuntimeError as err:
        pytest.fail(str(err))
    try:
        yield node
    finally:
        stop_node(node)


def _namespace_name(test_name: str) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"n-{stem}-{uuid.uuid4().hex[:6]}"


def wait_namespace_ready(core: Any, name: str) -> None:
    """Wait until the namespace's ``default`` ServiceAccount has its token (Pods are admitted then)."""
    from kubernetes.client.rest import ApiException

    deadline = time.monotonic() + NAMESPACE_READY_TIMEOUT_S
    while True:
        try:
            if core.read_namespaced_service_account("default", name).secrets:
                return
        except ApiException as err:
            if err.status != 404:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(
                f"namespace {name}: default ServiceAccount not ready after {NAMESPACE_READY_TIMEOUT_S} s"
            )
        time.sleep(0.1)


@pytest.fixture
def kube_node_namespace(kube_node: KubeNode, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace on the node's cluster (ServiceAccount ready), deleted after the test."""
    name = _namespace_name(request.node.name)
    try:
        create_namespace(kube_node, name)
        yield name
    finally:
        delete_namespace(kube_node, name)
