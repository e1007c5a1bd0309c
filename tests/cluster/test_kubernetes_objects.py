"""Rendered Kubernetes objects: strict-valid for Kubernetes 1.29-1.33, and secure in the ways promised."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from lbcloud.cluster.addons import render_addons
from lbcloud.cluster.doctor import smoke_pod_manifest
from lbcloud.cluster.lbcloud_objects import (
    SECRET_ENV,
    lbcloud_settings,
    render_lbcloud_objects,
    secret_manifest,
)
from lbcloud.cluster.render import render_all
from lbcloud.cluster.spec import ClusterSpec
from lbcloud.settings import Settings
from tests.cluster.conftest import spec_from

KUBERNETES_VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0")


def _objects(spec: ClusterSpec) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for rel, text in render_all(spec).items():
        if rel.endswith(".yaml") and not rel.startswith("eksctl/"):
            found.extend((rel, doc) for doc in yaml.safe_load_all(text))
    return found


def _by_kind(spec: ClusterSpec, kind: str, name: str) -> dict[str, Any]:
    return next(doc for _, doc in _objects(spec) if doc["kind"] == kind and doc["metadata"]["name"] == name)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_is_strict_valid(version: str, example_spec: ClusterSpec) -> None:
    objects = _objects(example_spec)
    extras = [
        ("secret", secret_manifest(example_spec, {"database-url": "postgresql://x"})),
        ("smoke pod", smoke_pod_manifest(example_spec, example_spec.gpu_pools[0])),
    ]
    assert len(objects) > 20
    for rel, doc in [*objects, *extras]:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:  # pragma: no cover - the failure message
            pytest.fail(f"{rel}: {doc['kind']}/{doc['metadata']['name']} invalid for {version}: {err}")


def test_strict_validation_rejects_an_unknown_field(example_spec: ClusterSpec) -> None:
    deployment = _by_kind(example_spec, "Deployment", "lbcloud-web")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.29.0", strict=True)


def test_evaluation_pods_may_reach_only_the_dispatcher_and_dns(example_spec: ClusterSpec) -> None:
    policy = _by_kind(example_spec, "NetworkPolicy", "evaluation-isolation")["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/component": "evaluation"}}
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in policy  # Ingress in policyTypes without rules: no connection is accepted
    to_dispatcher, to_dns = policy["egress"]
    assert to_dispatcher["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "dispatcher"}}}]
    assert to_dispatcher["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert {p["port"] for p in to_dns["ports"]} == {53}
    assert to_dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}


def test_ingress_is_denied_by_default_and_open_on_web(example_spec: ClusterSpec) -> None:
    deny = _by_kind(example_spec, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    web = _by_kind(example_spec, "NetworkPolicy", "web-ingress")["spec"]
    assert web["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    reporter = _by_kind(example_spec, "NetworkPolicy", "dispatcher-reporter-ingress")["spec"]
    sources = [f["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for f in reporter["ingress"][0]["from"]]
    assert sources == ["evaluation", "web"]


def test_dispatcher_rbac_is_limited_to_jobs_pods_and_logs(example_spec: ClusterSpec) -> None:
    role = _by_kind(example_spec, "Role", "lbcloud-dispatcher")
    assert role["metadata"]["namespace"] == "lbcloud"
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert rules == {
        (("batch",), ("jobs",)): {"create", "get", "list", "watch", "delete"},
        (("",), ("pods",)): {"get", "list", "watch"},
        (("",), ("pods/log",)): {"get"},
    }
    kinds = {doc["kind"] for rel, doc in _objects(example_spec) if rel.startswith("lbcloud/")}
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds


def test_deployments_run_lbcloud_serve_with_config_and_secret_references(example_spec: ClusterSpec) -> None:
    for role, replicas in (("dispatcher", 1), ("web", 2)):
        deployment = _by_kind(example_spec, "Deployment", f"lbcloud-{role}")
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert deployment["spec"]["replicas"] == replicas
        assert container["image"] == example_spec.image
        assert container["args"] == ["serve", "--role", role]
        assert container["ports"][0]["containerPort"] == 8080
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        env = {e["name"]: e for e in container["env"]}
        assert env["LBCLOUD_CONFIG"]["value"] == "/etc/lbcloud/lbcloud.yaml"
        for key, name in SECRET_ENV.items():
            assert env[name]["valueFrom"]["secretKeyRef"] == {
                "name": "lbcloud-secrets",
                "key": key,
                "optional": key != "database-url",
            }
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["nodeSelector"] == {"lbcloud.io/pool": "system"}
        assert pod["automountServiceAccountToken"] is (role == "dispatcher")
    dispatcher = _by_kind(example_spec, "Deployment", "lbcloud-dispatcher")
    assert dispatcher["spec"]["strategy"] == {"type": "Recreate"}  # never two dispatchers at once
    assert dispatcher["spec"]["template"]["spec"]["serviceAccountName"] == "lbcloud-dispatcher"


def test_no_secret_value_is_ever_rendered(example_spec: ClusterSpec) -> None:
    kinds = {doc["kind"] for _, doc in _objects(example_spec)}
    assert "Secret" not in kinds


def test_settings_file_is_accepted_by_lbclouds_settings_model(example_spec: ClusterSpec) -> None:
    config_map = _by_kind(example_spec, "ConfigMap", "lbcloud-config")
    settings = Settings(**yaml.safe_load(config_map["data"]["lbcloud.yaml"]))
    assert settings.backend == "kubernetes"
    assert settings.kubernetes.namespace == "lbcloud"
    assert settings.kubernetes.dispatcher_url == "http://lbcloud-dispatcher.lbcloud.svc:8080"
    assert settings.artifacts.url == "s3://my-leaderboard-artifacts/lbcloud"
    assert settings.evalai.enabled and settings.evalai.phase_tracks == {4321: "SENSORS"}
    track = settings.track("SENSORS")
    assert track.pool.name == "g5-xlarge"
    assert dict(track.pool.node_selector)["lbcloud.io/pool"] == "g5-xlarge"
    assert track.pool.slots == 4 and track.pool.gpus_per_attempt == 1
    assert track.pool.tolerations[0].key == "nvidia.com/gpu"


def test_sqs_queue_and_system_pool_tracks_reach_the_settings() -> None:
    spec = spec_from(
        evalai={
            "challenge_id": 7,
            "sqs_queue_arn": "arn:aws:sqs:us-east-1:123456789012:subs",
            "sqs_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/subs",
        },
        tracks=[{"name": "sumo-test", "pool": "system", "gpus_per_attempt": 0}],
        settings={
            "tracks": [
                {"name": "sumo-test", "routes_file": "routes.xml", "local": {"simulator": ["s"], "evaluator": ["e"]}}
            ]
        },
    )
    settings = Settings(**lbcloud_settings(spec))
    assert settings.sqs.enabled and settings.sqs.queue_url.endswith("/subs")  # type: ignore[union-attr]
    pool = settings.track("sumo-test").pool
    assert pool.gpus_per_attempt == 0 and dict(pool.node_selector) == {"lbcloud.io/pool": "system"}


def test_add_ons_target_the_right_nodes(example_spec: ClusterSpec) -> None:
    addons = render_addons(example_spec)
    plugin = addons["nvidia-device-plugin.yaml"][0]["spec"]["template"]["spec"]
    assert plugin["nodeSelector"] == {"lbcloud.io/gpu": "true"}
    autoscaler = next(o for o in addons["cluster-autoscaler.yaml"] if o["kind"] == "Deployment")
    container = autoscaler["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(":v1.29.5")  # minor version matches the cluster's
    assert (
        "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/leaderboard"
        in container["command"]
    )
    fluent = next(o for o in addons["fluent-bit.yaml"] if o["kind"] == "ConfigMap")["data"]["fluent-bit.conf"]
    assert "log_group_name      /lbcloud/leaderboard/containers" in fluent
    assert "log_retention_days  30" in fluent


def test_namespace_follows_the_spec() -> None:
    spec = spec_from(namespace="leaderboard-prod")
    for rel, doc in _objects(spec):
        if rel.startswith("lbcloud/") and doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "leaderboard-prod", rel
    assert render_lbcloud_objects(spec)["00-namespace.yaml"][0]["metadata"]["name"] == "leaderboard-prod"


def test_a_settings_change_restarts_lbcloud_and_nothing_else_does() -> None:
    def hashes(spec: ClusterSpec) -> set[str]:
        return {
            _by_kind(spec, "Deployment", f"lbcloud-{role}")["spec"]["template"]["metadata"]["annotations"][
                "lbcloud.io/settings-sha256"
            ]
            for role in ("dispatcher", "web")
        }

    base = hashes(spec_from())
    assert len(base) == 1
    assert hashes(spec_from(web_replicas=3)) == base
    assert hashes(spec_from(storage={"bucket": "other-bucket"})) != base
