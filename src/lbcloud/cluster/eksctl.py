"""The eksctl ``ClusterConfig`` for a cluster spec.

What it sets up, and why:

- a small on-demand ``system`` node group for lbcloud, the autoscaler and the add-ons;
- one node group per GPU pool (min 0, so idle pools cost nothing), tainted so only GPU work lands
  there, with the cluster-autoscaler auto-discovery tags and the ``node-template`` tags it needs to
  scale a group up from zero (labels, taints, GPU count);
- every node blocks the instance metadata service for pods (``disablePodIMDS``): no pod, least of all
  an evaluation pod, may borrow the node's AWS role;
- EKS Pod Identity associations: the dispatcher (its S3 prefix, the EvalAI queue), the autoscaler and
  Fluent Bit each get their own role with an inline least-privilege policy; no other pod gets AWS rights;
- the VPC CNI with network policy enforcement on (lbcloud's NetworkPolicies need it);
- access entries for the admins (no ``aws-auth`` editing, no hard-coded account ids).
"""

from __future__ import annotations

from typing import Any

from lbcloud.cluster import iam
from lbcloud.cluster.lbcloud_objects import DISPATCHER_SA
from lbcloud.cluster.node_image import image_name
from lbcloud.cluster.node_pools import GPU_LABEL, POOL_LABEL, SYSTEM_POOL, Capacity, GpuPool, ImageKind
from lbcloud.cluster.spec import ClusterSpec

API_VERSION = "eksctl.io/v1alpha5"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
AUTOSCALER_SA = ("kube-system", "cluster-autoscaler")
FLUENT_BIT_SA = ("amazon-cloudwatch", "fluent-bit")
IMAGE_PLACEHOLDER_PREFIX = "resolve-by-name:"
# The tsc clock source, as the seed's preboot commands did (the custom image also sets it at boot).
TSC_COMMAND = (
    "grep -q tsc /sys/devices/system/clocksource/clocksource0/available_clocksource && "
    "echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource || true"
)


def autoscaler_tags(spec: ClusterSpec) -> dict[str, str]:
    """The tags cluster-autoscaler's ``--node-group-auto-discovery`` looks for."""
    return {"k8s.io/cluster-autoscaler/enabled": "true", f"k8s.io/cluster-autoscaler/{spec.name}": "owned"}


def pool_labels(pool: GpuPool) -> dict[str, str]:
    return {**pool.labels, POOL_LABEL: pool.name, GPU_LABEL: "true"}


def _node_template_tags(pool: GpuPool) -> dict[str, str]:
    # Without these the autoscaler cannot know what a node of an empty (size 0) group would offer.
    tags = {f"k8s.io/cluster-autoscaler/node-template/label/{k}": v for k, v in pool_labels(pool).items()}
    for taint in pool.taints:
        tags[f"k8s.io/cluster-autoscaler/node-template/taint/{taint.key}"] = f"{taint.value}:{taint.effect}"
    tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] = str(pool.gpus_per_node)
    return tags


def _market(capacity: Capacity, instance_type: str) -> dict[str, Any]:
    if capacity is Capacity.ON_DEMAND:
        return {"instanceType": instance_type}
    return {
        "instancesDistribution": {
            "instanceTypes": [instance_type],
            "onDemandBaseCapacity": 0,
            "onDemandPercentageAboveBaseCapacity": 0,
            "spotAllocationStrategy": "price-capacity-optimized",
            "capacityRebalance": True,
        }
    }


def system_node_group(spec: ClusterSpec) -> dict[str, Any]:
    pool = spec.system_pool
    return {
        "name": SYSTEM_POOL,
        **_market(pool.capacity, pool.instance_type),
        "amiFamily": "AmazonLinux2023",
        "minSize": pool.min,
        "maxSize": pool.max,
        "desiredCapacity": pool.min,
        "volumeSize": pool.disk_gb,
        "volumeType": "gp3",
        "privateNetworking": True,
        "disableIMDSv1": True,
        "disablePodIMDS": True,
        "labels": {POOL_LABEL: SYSTEM_POOL},
        "tags": autoscaler_tags(spec),
        "propagateASGTags": True,
    }


def gpu_node_group(spec: ClusterSpec, pool: GpuPool, ami_id: str | None) -> dict[str, Any]:
    """One GPU pool's node group. ``ami_id`` is the custom image's id once it is known."""
    group: dict[str, Any] = {"name": pool.name, **_market(pool.capacity, pool.instance_type)}
    if spec.image_kind(pool) is ImageKind.CUSTOM:
        assert spec.gpu_image is not None  # validated by the spec
        name = image_name(spec.kubernetes_version, spec.gpu_image)
        group["amiFamily"] = "Ubuntu" + spec.gpu_image.ubuntu_version.replace(".", "")
        group["ami"] = ami_id or spec.gpu_image.ami_id or f"{IMAGE_PLACEHOLDER_PREFIX}{name}"
        group["preBootstrapCommands"] = [TSC_COMMAND]
    else:
        group["amiFamily"] = "AmazonLinux2023"  # eksctl picks the EKS accelerated (NVIDIA) variant for GPU types
    group.update(
        {
            "minSize": pool.min,
            "maxSize": pool.max,
            "desiredCapacity": pool.min,
            "volumeSize": pool.disk_gb,
            "volumeType": "gp3",
            "privateNetworking": True,
            "disableIMDSv1": True,
            "disablePodIMDS": True,
            "labels": pool_labels(pool),
            "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints],
            "tags": {**autoscaler_tags(spec), **_node_template_tags(pool)},
            "propagateASGTags": True,
        }
    )
    return group


def _pod_identity(
    spec: ClusterSpec, namespace: str, account: str, role: str, policy: iam.PolicyDocument
) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "serviceAccountName": account,
        "roleName": f"{spec.name}-{role}",
        "createServiceAccount": False,
        "permissionPolicy": policy,
    }


def pod_identities(spec: ClusterSpec) -> list[dict[str, Any]]:
    """The dispatcher's, the autoscaler's and (with logs on) Fluent Bit's Pod Identity associations."""
    identities = [
        _pod_identity(spec, spec.namespace, DISPATCHER_SA, "lbcloud-dispatcher", iam.dispatcher_policy(spec)),
        _pod_identity(spec, *AUTOSCALER_SA, "cluster-autoscaler", iam.cluster_autoscaler_policy(spec)),
    ]
    if spec.logs.enabled:
        identities.append(_pod_identity(spec, *FLUENT_BIT_SA, "fluent-bit", iam.fluent_bit_policy(spec)))
    return identities


def render_cluster_config(spec: ClusterSpec, ami_id: str | None = None) -> dict[str, Any]:
    """The eksctl ClusterConfig document (``eksctl create cluster -f``)."""
    config: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "ClusterConfig",
        "metadata": {
            "name": spec.name,
            "region": spec.region,
            "version": spec.kubernetes_version,
            "tags": {"app.kubernetes.io/managed-by": "lbcloud", "lbcloud/cluster": spec.name},
        },
        "accessConfig": {
            "authenticationMode": "API_AND_CONFIG_MAP",
            "accessEntries": [
                {
                    "principalARN": arn,
                    "accessPolicies": [{"policyARN": ADMIN_POLICY, "accessScope": {"type": "cluster"}}],
                }
                for arn in spec.admins
            ],
        },
        "iam": {"podIdentityAssociations": pod_identities(spec)},
        "addons": [
            {"name": "eks-pod-identity-agent"},
            {"name": "vpc-cni", "configurationValues": '{"enableNetworkPolicy": "true"}'},
            {"name": "coredns"},
            {"name": "kube-proxy"},
        ],
        "nodeGroups": [system_node_group(spec), *(gpu_node_group(spec, p, ami_id) for p in spec.gpu_pools)],
    }
    if spec.logs.enabled:
        config["cloudWatch"] = {"clusterLogging": {"enableTypes": ["api", "audit", "authenticator"]}}
    return config


def has_image_placeholder(config: dict[str, Any]) -> bool:
    """True while a custom-image node group still waits for the image id (before ``cluster up`` builds it)."""
    return any(str(g.get("ami", "")).startswith(IMAGE_PLACEHOLDER_PREFIX) for g in config.get("nodeGroups", []))
