"""lbcloud's own Kubernetes objects: namespace, service accounts, RBAC, settings, Deployments,
Services and NetworkPolicies.

Security shape (what a reviewer should check):

- only the dispatcher's ServiceAccount has Kubernetes rights (Jobs; Pods and pods/log read) and only
  in lbcloud's namespace; it is also the only one with AWS rights (its Pod Identity, see ``eksctl``);
- web pods and evaluation pods get no ServiceAccount token at all;
- evaluation pods (``app.kubernetes.io/component: evaluation``) may talk to nothing but the
  dispatcher's port 8080 and DNS, and accept no connections;
- everything else in the namespace is deny-by-default for ingress; web pods accept port 8080.

Secrets are referenced, never rendered: the Secret ``lbcloud-secrets`` is created by ``cluster up``
from environment variables the spec names.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import yaml

from lbcloud.cluster.node_pools import GPU_LABEL, POOL_LABEL, SYSTEM_POOL
from lbcloud.cluster.prices import hourly_price
from lbcloud.cluster.spec import ClusterSpec, TrackPlacement

Manifest = dict[str, Any]

DISPATCHER_SA = "lbcloud-dispatcher"
WEB_SA = "lbcloud-web"
EVALUATION_SA = "lbcloud-evaluation"
SECRET_NAME = "lbcloud-secrets"
CONFIG_NAME = "lbcloud-config"
CONFIG_DIR = "/etc/lbcloud"
CONFIG_FILE = "lbcloud.yaml"
PORT = 8080
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
RUN_AS = 10001
CONFIG_HASH_ANNOTATION = "lbcloud.io/settings-sha256"
# Secret key -> environment variable the settings model reads.
SECRET_ENV = {
    "database-url": "LBCLOUD_DATABASE_URL",
    "evalai-token": "LBCLOUD_EVALAI__TOKEN",
    "operator-token": "LBCLOUD_WEB__OPERATOR_TOKEN",
}


def _labels(component: str) -> dict[str, str]:
    return {NAME_LABEL: "lbcloud", COMPONENT_LABEL: component, "app.kubernetes.io/part-of": "lbcloud"}


def _meta(name: str, namespace: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": _labels(component)}


def namespace(spec: ClusterSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": spec.namespace,
            "labels": {
                "app.kubernetes.io/part-of": "lbcloud",
                # warn (not enforce): simulator pods may need host features a future track requires
                "pod-security.kubernetes.io/warn": "baseline",
                "pod-security.kubernetes.io/audit": "baseline",
            },
        },
    }


def service_accounts(spec: ClusterSpec) -> list[Manifest]:
    """The dispatcher's (token mounted: it talks to the API), web's and evaluation pods' (no token)."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(DISPATCHER_SA, spec.namespace, "dispatcher")},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(WEB_SA, spec.namespace, "web"),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(EVALUATION_SA, spec.namespace, "evaluation"),
            "automountServiceAccountToken": False,
        },
    ]


def dispatcher_rbac(spec: ClusterSpec) -> list[Manifest]:
    """Jobs (create/watch/delete) and Pods + pods/log (read) in lbcloud's namespace only."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(DISPATCHER_SA, spec.namespace, "dispatcher"),
        "rules": [
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(DISPATCHER_SA, spec.namespace, "dispatcher"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": DISPATCHER_SA},
        "subjects": [{"kind": "ServiceAccount", "name": DISPATCHER_SA, "namespace": spec.namespace}],
    }
    return [role, binding]


def _placed_pool(spec: ClusterSpec, placement: TrackPlacement, given: dict[str, Any]) -> dict[str, Any]:
    pool = dict(given)
    pool["name"] = placement.pool
    pool["node_selector"] = {**pool.get("node_selector", {}), POOL_LABEL: placement.pool}
    gpu_pool = spec.pool(placement.pool)
    if gpu_pool is None:  # the system pool: GPU-free tracks such as SUMO
        pool["gpus_per_attempt"] = 0
        pool.setdefault("slots", spec.system_pool.max)
        return pool
    per_node = max(gpu_pool.gpus_per_node // max(placement.gpus_per_attempt, 1), 1)
    pool["gpus_per_attempt"] = placement.gpus_per_attempt
    pool["node_selector"][GPU_LABEL] = "true"
    pool["tolerations"] = [
        *pool.get("tolerations", []),
        *({"key": t.key, "operator": "Exists", "effect": t.effect} for t in gpu_pool.taints),
    ]
    pool.setdefault("slots", gpu_pool.max * per_node)
    price = hourly_price(gpu_pool.instance_type, spec.prices)
    if price is not None:
        pool.setdefault("price_per_hour", round(price / per_node, 4))
    return pool


def lbcloud_settings(spec: ClusterSpec) -> dict[str, Any]:
    """The settings file the dispatcher and web read (``lbcloud.yaml``; secrets come from env)."""
    settings = copy.deepcopy(spec.settings)
    settings["backend"] = "kubernetes"
    settings["kubernetes"] = {
        **settings.get("kubernetes", {}),
        "namespace": spec.namespace,
        "in_cluster": True,
        "image": spec.image,
        "dispatcher_url": f"http://{DISPATCHER_SA}.{spec.namespace}.svc:{PORT}",
    }
    settings["artifacts"] = {
        **settings.get("artifacts", {}),
        "url": f"s3://{spec.storage.bucket}/{spec.storage.prefix}".rstrip("/"),
        "s3_region": spec.region,
    }
    settings["web"] = {**settings.get("web", {}), "host": "0.0.0.0", "port": PORT}
    if spec.evalai is not None:
        settings["evalai"] = {
            **settings.get("evalai", {}),
            "enabled": True,
            "base_url": spec.evalai.base_url,
            "challenge_id": spec.evalai.challenge_id,
            "phase_tracks": dict(spec.evalai.phase_tracks),
        }
        if spec.evalai.sqs_queue_url is not None:
            settings["sqs"] = {
                **settings.get("sqs", {}),
                "enabled": True,
                "queue_url": spec.evalai.sqs_queue_url,
                "region": spec.region,
            }
    placements = {t.name: t for t in spec.tracks}
    tracks = settings.get("tracks")
    if isinstance(tracks, list):
        for track in tracks:
            if isinstance(track, dict) and track.get("name") in placements:
                track["pool"] = _placed_pool(spec, placements[track["name"]], track.get("pool", {}))
    return settings


def settings_text(spec: ClusterSpec) -> str:
    return yaml.safe_dump(lbcloud_settings(spec), sort_keys=False, default_flow_style=False)


def config_map(spec: ClusterSpec) -> Manifest:
    text = settings_text(spec)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(CONFIG_NAME, spec.namespace, "config"),
        "data": {CONFIG_FILE: text},
    }


def _secret_env() -> list[dict[str, Any]]:
    return [
        {
            "name": env,
            "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": key, "optional": key != "database-url"}},
        }
        for key, env in SECRET_ENV.items()
    ]


def _pod_spec(spec: ClusterSpec, role: str, service_account: str, automount: bool) -> dict[str, Any]:
    timing = {"periodSeconds": 10, "timeoutSeconds": 3}
    # ready when the state store answers (/readyz); restarted only when the process hangs (/healthz)
    ready = {"httpGet": {"path": "/readyz", "port": "http"}, **timing}
    alive = {
        "httpGet": {"path": "/healthz", "port": "http"},
        **timing,
        "initialDelaySeconds": 15,
        "failureThreshold": 6,
    }
    return {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": automount,
        "nodeSelector": {POOL_LABEL: SYSTEM_POOL},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": role,
                "image": spec.image,
                "command": ["lbcloud"],
                "args": ["serve", "--role", role],
                "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                "env": [{"name": "LBCLOUD_CONFIG", "value": f"{CONFIG_DIR}/{CONFIG_FILE}"}, *_secret_env()],
                "readinessProbe": ready,
                "livenessProbe": alive,
                "resources": {
                    "requests": {"cpu": "250m", "memory": "512Mi"},
                    "limits": {"memory": "1Gi" if role == "dispatcher" else "768Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": CONFIG_NAME}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }


def _settings_hash(spec: ClusterSpec) -> str:
    return hashlib.sha256(settings_text(spec).encode("utf-8")).hexdigest()[:16]


def deployment(spec: ClusterSpec, role: str) -> Manifest:
    """``lbcloud-dispatcher`` (one replica, replaced not rolled) or ``lbcloud-web``."""
    dispatcher = role == "dispatcher"
    selector = {NAME_LABEL: "lbcloud", COMPONENT_LABEL: role}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(f"lbcloud-{role}", spec.namespace, role),
        "spec": {
            "replicas": 1 if dispatcher else spec.web_replicas,
            # two dispatchers must never run at once: stop the old one before starting the new
            "strategy": {"type": "Recreate"} if dispatcher else {"type": "RollingUpdate"},
            "selector": {"matchLabels": selector},
            "template": {
                # a settings change changes the pod template, so `apply` restarts the pods to load it
                "metadata": {"labels": _labels(role), "annotations": {CONFIG_HASH_ANNOTATION: _settings_hash(spec)}},
                "spec": _pod_spec(spec, role, DISPATCHER_SA if dispatcher else WEB_SA, automount=dispatcher),
            },
        },
    }


def service(spec: ClusterSpec, role: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(f"lbcloud-{role}", spec.namespace, role),
        "spec": {
            "type": "ClusterIP",
            "selector": {NAME_LABEL: "lbcloud", COMPONENT_LABEL: role},
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _policy(spec: ClusterSpec, name: str, body: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name, spec.namespace, "network-policy"),
        "spec": body,
    }


def _component(name: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {COMPONENT_LABEL: name}}}


def network_policies(spec: ClusterSpec) -> list[Manifest]:
    """Deny-by-default ingress; evaluation pods reach only the dispatcher and DNS; web is reachable."""
    dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    http = [{"protocol": "TCP", "port": PORT}]
    return [
        _policy(spec, "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        _policy(
            spec,
            "evaluation-isolation",
            {
                **_component("evaluation"),
                "policyTypes": ["Ingress", "Egress"],  # Ingress listed without rules: accepts nothing
                "egress": [{"to": [_component("dispatcher")], "ports": http}, dns],
            },
        ),
        _policy(
            spec,
            "dispatcher-reporter-ingress",
            {
                **_component("dispatcher"),
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [_component("evaluation"), _component("web")], "ports": http}],
            },
        ),
        _policy(
            spec,
            "web-ingress",
            {**_component("web"), "policyTypes": ["Ingress"], "ingress": [{"ports": http}]},
        ),
    ]


def render_lbcloud_objects(spec: ClusterSpec) -> dict[str, list[Manifest]]:
    """File name -> objects, in the order ``kubectl apply -f <dir>`` applies them (by name)."""
    return {
        "00-namespace.yaml": [namespace(spec)],
        "10-rbac.yaml": [*service_accounts(spec), *dispatcher_rbac(spec)],
        "20-config.yaml": [config_map(spec)],
        "30-dispatcher.yaml": [deployment(spec, "dispatcher"), service(spec, "dispatcher")],
        "40-web.yaml": [deployment(spec, "web"), service(spec, "web")],
        "50-network-policies.yaml": network_policies(spec),
    }


def secret_manifest(spec: ClusterSpec, values: dict[str, str]) -> Manifest:
    """The Secret ``cluster up`` pipes to kubectl (values from the environment; never written to disk)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(SECRET_NAME, spec.namespace, "secrets"),
        "type": "Opaque",
        "stringData": dict(values),
    }
