"""The rendered Kubernetes objects against a real API server (kube-test-cluster, Kubernetes 1.20).

What 1.20 proves here: every object is accepted and nothing we send is silently dropped (read back,
every field is still there), the dispatcher's RBAC grants exactly what it should (asked of the
server's own authorizer), and ``cluster up``'s kubectl steps, run for real through the subprocess
runner, apply the files and on a second run find them done (``kubectl diff`` as the check).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbcloud.cluster.plan import execute, up_steps
from lbcloud.cluster.render import render_all, write_files
from lbcloud.cluster.runner import EchoingRunner, SubprocessRunner
from lbcloud.cluster.spec import ClusterSpec
from tests.cluster.conftest import spec_from
from tests.services.kubernetes import KubeNamespace

pytestmark = pytest.mark.k8s_real
SECRETS = {"LBCLOUD_DATABASE_URL": "postgresql://lb:pw@db/lb", "LBCLOUD_OPERATOR_TOKEN": "op", "EVALAI_TOKEN": "ev"}


def _spec(namespace: str) -> ClusterSpec:
    return spec_from(namespace=namespace)


def _objects(spec: ClusterSpec) -> list[dict[str, Any]]:
    objects = []
    for rel, text in render_all(spec).items():
        if rel.startswith(("lbcloud/", "addons/")):
            objects.extend(yaml.safe_load_all(text))
    return objects


def _missing(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Paths of values we sent that the server did not keep (extra server-side defaults are fine)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [path or "/"]
        return [p for key, value in sent.items() for p in _missing(value, stored.get(key), f"{path}.{key}")]
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) != len(sent):
            return [path]
        return [p for i, (a, b) in enumerate(zip(sent, stored, strict=True)) for p in _missing(a, b, f"{path}[{i}]")]
    return [] if sent == stored else [f"{path}: sent {sent!r}, stored {stored!r}"]


def test_rendered_objects_are_accepted_and_kept_whole(kube_namespace: KubeNamespace) -> None:
    from kubernetes.dynamic import DynamicClient

    spec = _spec(kube_namespace.name)
    client = DynamicClient(kube_namespace.cluster.api_client())
    objects = _objects(spec)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "NetworkPolicy", "Role", "RoleBinding", "ConfigMap", "DaemonSet"} <= kinds
    for obj in objects:
        resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        meta = obj["metadata"]
        client.server_side_apply(
            resource,
            body=obj,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager="lbcloud-test",
            force_conflicts=True,
        )
    for obj in objects:
        resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        meta = obj["metadata"]
        stored = client.get(resource, name=meta["name"], namespace=meta.get("namespace")).to_dict()
        sent = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        assert _missing(sent, stored) == [], f"{obj['kind']}/{meta['name']}"


def _allowed(
    kube_namespace: KubeNamespace, account: str, verb: str, resource: str, namespace: str, **extra: str
) -> bool:
    from kubernetes import client

    review = client.AuthorizationV1Api(kube_namespace.cluster.api_client()).create_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"system:serviceaccount:{kube_namespace.name}:{account}",
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{kube_namespace.name}"],
                "resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace, **extra},
            },
        }
    )
    return bool(review.status.allowed)


def test_dispatcher_rbac_grants_jobs_pods_and_logs_in_its_namespace_only(kube_namespace: KubeNamespace) -> None:
    from kubernetes import client, utils

    spec = _spec(kube_namespace.name)
    api = kube_namespace.cluster.api_client()
    for name in ("10-rbac.yaml",):
        for obj in yaml.safe_load_all(render_all(spec)[f"lbcloud/{name}"]):
            utils.create_from_dict(api, obj)
    ns = kube_namespace.name
    dispatcher = "lbcloud-dispatcher"
    for verb in ("create", "get", "list", "watch", "delete"):
        assert _allowed(kube_namespace, dispatcher, verb, "jobs", ns, group="batch"), verb
    assert _allowed(kube_namespace, dispatcher, "get", "pods", ns, subresource="log")
    assert _allowed(kube_namespace, dispatcher, "watch", "pods", ns)
    assert not _allowed(kube_namespace, dispatcher, "create", "jobs", "default", group="batch")
    assert not _allowed(kube_namespace, dispatcher, "get", "secrets", ns)
    assert not _allowed(kube_namespace, dispatcher, "create", "pods", ns)
    assert not _allowed(kube_namespace, dispatcher, "patch", "jobs", ns, group="batch")
    for account in ("lbcloud-web", "lbcloud-evaluation"):
        assert not _allowed(kube_namespace, account, "list", "pods", ns)
        assert not _allowed(kube_namespace, account, "create", "jobs", ns, group="batch")
    accounts = client.CoreV1Api(api).list_namespaced_service_account(ns).items
    automount = {a.metadata.name: a.automount_service_account_token for a in accounts}
    assert automount["lbcloud-web"] is False and automount["lbcloud-evaluation"] is False


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_up_kubectl_steps_apply_for_real_and_a_rerun_skips_them(kube_namespace: KubeNamespace, tmp_path: Path) -> None:
    spec = _spec(kube_namespace.name)
    kubeconfig = tmp_path / "kubeconfig"
    shutil.copy(kube_namespace.cluster.kubeconfig, kubeconfig)
    env = {**kube_namespace.cluster.env(), "KUBECONFIG": str(kubeconfig)}
    subprocess.run(
        ["kubectl", "config", "rename-context", "kube-test-cluster", spec.kube_context],
        env=env,
        check=True,
        capture_output=True,
    )
    out_dir = tmp_path / "rendered"
    write_files(render_all(spec), out_dir)
    applies = {
        "addon-nvidia-device-plugin",
        "addon-cluster-autoscaler",
        "addon-fluent-bit",
        "namespace",
        "secret",
        "lbcloud",
    }
    steps = [s for s in up_steps(spec, out_dir, SECRETS) if s.key in applies]
    printed: list[str] = []
    runner = EchoingRunner(SubprocessRunner(env=env), printed.append)
    first = {o.key: o.status for o in execute(steps, runner, printed.append)}
    assert first["lbcloud"] == "ran" and first["secret"] == "ran", "\n".join(printed)
    second = {o.key: o.status for o in execute(steps, runner, printed.append)}
    assert set(second.values()) == {"skipped"}, "\n".join(printed)
    assert not any("pw@db" in line for line in printed)
    from kubernetes import client

    secret = client.CoreV1Api(kube_namespace.cluster.api_client()).read_namespaced_secret(
        "lbcloud-secrets", spec.namespace
    )
    assert set(secret.data) == {"database-url", "operator-token", "evalai-token"}
