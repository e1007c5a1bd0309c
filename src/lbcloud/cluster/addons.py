"""Cluster add-ons: NVIDIA device plugin, cluster-autoscaler, and optional log shipping.

- The NVIDIA device plugin runs on GPU nodes only and advertises ``nvidia.com/gpu`` so Kubernetes can
  schedule one evaluation per GPU.
- cluster-autoscaler finds the node groups by their auto-discovery tags and scales them between
  their min and max, down to zero when no evaluation waits; its AWS rights come from its own
  Pod Identity (see ``iam.cluster_autoscaler_policy``).
- Fluent Bit (a DaemonSet on every node) ships container logs to CloudWatch Logs under
  ``/lbcloud/<cluster>/``.
"""

from __future__ import annotations

from typing import Any

from lbcloud.cluster.eksctl import AUTOSCALER_SA, FLUENT_BIT_SA
from lbcloud.cluster.iam import log_group_prefix
from lbcloud.cluster.node_pools import GPU_LABEL, POOL_LABEL, SYSTEM_POOL
from lbcloud.cluster.spec import ClusterSpec

Manifest = dict[str, Any]

DEVICE_PLUGIN_NAME = "nvidia-device-plugin-daemonset"
DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"
AUTOSCALER_NAME = "cluster-autoscaler"
FLUENT_BIT_IMAGE = "cr.fluentbit.io/fluent/fluent-bit:3.2.2"
# cluster-autoscaler's minor version must match the cluster's.
AUTOSCALER_VERSIONS = {"1.29": "v1.29.5", "1.30": "v1.30.3", "1.31": "v1.31.1", "1.32": "v1.32.0", "1.33": "v1.33.0"}


def _labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "lbcloud"}


def _tolerate_everything() -> list[dict[str, str]]:
    return [{"operator": "Exists"}]


def nvidia_device_plugin(spec: ClusterSpec) -> list[Manifest]:
    """The device plugin DaemonSet, on nodes labelled as lbcloud GPU nodes."""
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {
                "name": DEVICE_PLUGIN_NAME,
                "namespace": "kube-system",
                "labels": _labels("nvidia-device-plugin"),
            },
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "nvidia-device-plugin"}},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": _labels("nvidia-device-plugin")},
                    "spec": {
                        "priorityClassName": "system-node-critical",
                        "nodeSelector": {GPU_LABEL: "true"},
                        "tolerations": _tolerate_everything(),
                        "containers": [
                            {
                                "name": "nvidia-device-plugin",
                                "image": DEVICE_PLUGIN_IMAGE,
                                "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                                "volumeMounts": [
                                    {"name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins"}
                                ],
                            }
                        ],
                        "volumes": [{"name": "device-plugin", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}],
                    },
                },
            },
        }
    ]


def _rbac_rule(
    groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None
) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def cluster_autoscaler(spec: ClusterSpec) -> list[Manifest]:
    """ServiceAccount, RBAC and Deployment of cluster-autoscaler with auto-discovery and scale to zero."""
    ns, name = AUTOSCALER_SA
    read = ["get", "list", "watch"]
    meta = {"name": name, "namespace": ns, "labels": _labels(name)}
    cluster_meta = {"name": name, "labels": _labels(name)}
    cluster_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": cluster_meta,
        "rules": [
            _rbac_rule([""], ["events", "endpoints"], ["create", "patch"]),
            _rbac_rule([""], ["pods/eviction"], ["create"]),
            _rbac_rule([""], ["pods/status"], ["update"]),
            _rbac_rule([""], ["endpoints"], ["get", "update"], [name]),
            _rbac_rule([""], ["nodes"], ["get", "list", "watch", "update"]),
            _rbac_rule(
                [""],
                [
                    "namespaces",
                    "pods",
                    "services",
                    "replicationcontrollers",
                    "persistentvolumeclaims",
                    "persistentvolumes",
                ],
                read,
            ),
            _rbac_rule(["apps"], ["statefulsets", "replicasets", "daemonsets"], read),
            _rbac_rule(["policy"], ["poddisruptionbudgets"], ["list", "watch"]),
            _rbac_rule(["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities"], read),
            _rbac_rule(["batch"], ["jobs", "cronjobs"], read),
            _rbac_rule(["coordination.k8s.io"], ["leases"], ["create"]),
            _rbac_rule(["coordination.k8s.io"], ["leases"], ["get", "update"], [name]),
        ],
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": [
            _rbac_rule([""], ["configmaps"], ["create", "list", "watch"]),
            _rbac_rule(
                [""],
                ["configmaps"],
                ["delete", "get", "update", "watch"],
                ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"],
            ),
        ],
    }
    subject = [{"kind": "ServiceAccount", "name": name, "namespace": ns}]
    bindings = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": cluster_meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": subject,
        },
    ]
    version = AUTOSCALER_VERSIONS[spec.kubernetes_version]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": _labels(name)},
                "spec": {
                    "serviceAccountName": name,
                    "priorityClassName": "system-cluster-critical",
                    "nodeSelector": {POOL_LABEL: SYSTEM_POOL},
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "fsGroup": 65534},
                    "containers": [
                        {
                            "name": name,
                            "image": f"registry.k8s.io/autoscaling/cluster-autoscaler:{version}",
                            "command": [
                                "./cluster-autoscaler",
                                "--cloud-provider=aws",
                                "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
                                f"k8s.io/cluster-autoscaler/{spec.name}",
                                "--balance-similar-node-groups",
                                "--expander=least-waste",
                                "--skip-nodes-with-system-pods=false",
                                "--scale-down-unneeded-time=10m",
                                "--scale-down-delay-after-add=5m",
                                "--v=2",
                            ],
                            "env": [{"name": "AWS_REGION", "value": spec.region}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "300Mi"},
                                "limits": {"memory": "600Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }
    service_account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}
    return [service_account, cluster_role, role, *bindings, deployment]


FLUENT_BIT_CONFIG = """\
[SERVICE]
    Flush         5
    Log_Level     info
    Parsers_File  /fluent-bit/etc/parsers.conf
    HTTP_Server   On
    HTTP_Listen   0.0.0.0
    HTTP_Port     2020

[INPUT]
    Name              tail
    Tag               kube.*
    Path              /var/log/containers/*.log
    multiline.parser  cri
    DB                /var/fluent-bit/state/containers.db
    Mem_Buf_Limit     50MB
    Skip_Long_Lines   On

[FILTER]
    Name                kubernetes
    Match               kube.*
    Merge_Log           On
    Keep_Log            Off
    K8S-Logging.Exclude On

[OUTPUT]
    Name                cloudwatch_logs
    Match               kube.*
    region              {region}
    log_group_name      {group}/containers
    log_stream_prefix   ${{HOSTNAME}}.
    auto_create_group   On
    log_retention_days  {retention}
"""


def fluent_bit(spec: ClusterSpec) -> list[Manifest]:
    """Namespace, ServiceAccount, read-only RBAC, config and DaemonSet shipping logs to CloudWatch."""
    ns, name = FLUENT_BIT_SA
    meta = {"name": name, "namespace": ns, "labels": _labels(name)}
    config = FLUENT_BIT_CONFIG.format(
        region=spec.region, group=log_group_prefix(spec), retention=spec.logs.retention_days
    )
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": _labels(name)}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": _labels(name)},
            "rules": [_rbac_rule([""], ["namespaces", "pods", "nodes"], ["get", "list", "watch"])],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": _labels(name)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"fluent-bit.conf": config}},
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta,
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {
                    "metadata": {"labels": _labels(name)},
                    "spec": {
                        "serviceAccountName": name,
                        "priorityClassName": "system-node-critical",
                        "tolerations": _tolerate_everything(),
                        "containers": [
                            {
                                "name": name,
                                "image": FLUENT_BIT_IMAGE,
                                "env": [
                                    {"name": "HOSTNAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                                ],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "100Mi"},
                                    "limits": {"memory": "300Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {
                                        "name": "config",
                                        "mountPath": "/fluent-bit/etc/fluent-bit.conf",
                                        "subPath": "fluent-bit.conf",
                                    },
                                    {"name": "varlog", "mountPath": "/var/log", "readOnly": True},
                                    {"name": "state", "mountPath": "/var/fluent-bit/state"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "config", "configMap": {"name": name}},
                            {"name": "varlog", "hostPath": {"path": "/var/log"}},
                            {
                                "name": "state",
                                "hostPath": {"path": "/var/fluent-bit/state", "type": "DirectoryOrCreate"},
                            },
                        ],
                    },
                },
            },
        },
    ]


def render_addons(spec: ClusterSpec) -> dict[str, list[Manifest]]:
    """File name -> objects for the add-ons the spec asks for."""
    files = {
        "nvidia-device-plugin.yaml": nvidia_device_plugin(spec),
        "cluster-autoscaler.yaml": cluster_autoscaler(spec),
    }
    if spec.logs.enabled:
        files["fluent-bit.yaml"] = fluent_bit(spec)
    return files
