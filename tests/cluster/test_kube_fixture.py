"""The suite's Kubernetes fixtures (``tests/services/kubernetes.py``) do what their users rely on."""

from __future__ import annotations

import time

import pytest

from tests.services.kubernetes import KubeNamespace, KubeTestCluster, finish_pod

pytestmark = pytest.mark.k8s_real


def test_cluster_listens_on_loopback_with_its_own_kubeconfig(kube_test_cluster: KubeTestCluster) -> None:
    text = kube_test_cluster.kubeconfig.read_text(encoding="utf-8")
    assert f"server: https://127.0.0.1:{kube_test_cluster.api_port}" in text
    assert kube_test_cluster.env()["KUBECONFIG"] == str(kube_test_cluster.kubeconfig)


def test_a_fresh_namespace_takes_pods_at_once_and_jobs_make_pods(kube_namespace: KubeNamespace) -> None:
    from kubernetes import client

    api = kube_namespace.cluster.api_client()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    container = {"name": "main", "image": "never-pulled.invalid/none:0", "command": ["true"]}
    # no retry needed: the fixture waited for the default ServiceAccount's token
    core.create_namespaced_pod(
        kube_namespace.name,
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare"}, "spec": {"containers": [container]}},
    )
    batch.create_namespaced_job(
        kube_namespace.name,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "job"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
        },
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(kube_namespace.name, label_selector="job-name=job").items
        if pods:
            break
        time.sleep(0.1)
    assert pods and pods[0].status.phase == "Pending"  # no kubelet: the test plays it when it needs to
    finish_pod(api, kube_namespace.name, pods[0].metadata.name, {"main": 0})
    while time.monotonic() < deadline:
        conditions = batch.read_namespaced_job_status("job", kube_namespace.name).status.conditions or []
        if any(c.type == "Complete" and c.status == "True" for c in conditions):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the Job did not become Complete after its Pod succeeded")


def test_each_test_gets_its_own_namespace(kube_namespace: KubeNamespace) -> None:
    assert kube_namespace.name.startswith("t-test-each-test-gets-its-own-namespace-")
    assert len(kube_namespace.name) <= 63
