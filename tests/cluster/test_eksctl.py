"""The eksctl ClusterConfig: valid against eksctl's JSON schema, and shaped as the operator needs."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
import yaml

from lbcloud.cluster.eksctl import has_image_placeholder, render_cluster_config
from lbcloud.cluster.render import render_eksctl_file
from lbcloud.cluster.spec import ClusterSpec
from tests.cluster.conftest import example_data, spec_from


def _variants() -> dict[str, ClusterSpec]:
    accelerated = example_data()
    del accelerated["gpu_image"]
    for pool in accelerated["gpu_pools"]:
        pool["image"] = "eks-accelerated"
    return {
        "example": spec_from(),
        "eks-accelerated, no logs, no admins, no EvalAI": spec_from(
            accelerated, logs={"enabled": False}, admins=[], evalai=None
        ),
        "prebuilt image, 1.33, custom labels and taints": spec_from(
            kubernetes_version="1.33",
            gpu_image={"kind": "custom", "ami_id": "ami-0123456789abcdef0", "nvidia_driver": "535.183.01"},
            gpu_pools=[
                {
                    "name": "l4",
                    "instance_type": "g6.xlarge",
                    "labels": {"team": "carla"},
                    "taints": [{"key": "lbcloud.io/dedicated", "value": "eval", "effect": "NoExecute"}],
                }
            ],
            tracks=[],
        ),
    }


VARIANTS = _variants()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cluster_config_is_valid_against_the_eksctl_schema(variant: str, eksctl_schema: dict[str, Any]) -> None:
    document = yaml.safe_load(render_eksctl_file(VARIANTS[variant]))
    jsonschema.validate(document, eksctl_schema)


def test_schema_validation_catches_a_misspelled_field(eksctl_schema: dict[str, Any]) -> None:
    document = render_cluster_config(spec_from())
    document["nodeGroups"][0]["instanceTyp"] = "t3.large"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, eksctl_schema)


def _group(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in config["nodeGroups"] if g["name"] == name)


def test_gpu_groups_scale_from_zero_with_autoscaler_discovery_tags(example_spec: ClusterSpec) -> None:
    config = render_cluster_config(example_spec)
    group = _group(config, "g5-12xlarge")
    assert (group["minSize"], group["desiredCapacity"], group["maxSize"]) == (0, 0, 2)
    tags = group["tags"]
    assert tags["k8s.io/cluster-autoscaler/enabled"] == "true"
    assert tags["k8s.io/cluster-autoscaler/leaderboard"] == "owned"
    # what a node of an empty group would offer, so the autoscaler can choose to start one
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "4"
    assert tags["k8s.io/cluster-autoscaler/node-template/label/lbcloud.io/pool"] == "g5-12xlarge"
    assert tags["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert group["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]


def test_spot_and_on_demand_pools(example_spec: ClusterSpec) -> None:
    config = render_cluster_config(example_spec)
    on_demand, spot = _group(config, "g5-xlarge"), _group(config, "g5-12xlarge")
    assert on_demand["instanceType"] == "g5.xlarge" and "instancesDistribution" not in on_demand
    assert "instanceType" not in spot
    assert spot["instancesDistribution"]["instanceTypes"] == ["g5.12xlarge"]
    assert spot["instancesDistribution"]["onDemandPercentageAboveBaseCapacity"] == 0


def test_no_pod_may_use_a_node_role(example_spec: ClusterSpec) -> None:
    config = render_cluster_config(example_spec)
    for group in config["nodeGroups"]:
        assert group["disablePodIMDS"] is True
        assert group["disableIMDSv1"] is True
        assert "iam" not in group  # no add-on policies on node roles (the seed's approach)


def test_only_the_dispatcher_gets_aws_rights_in_lbcloud_namespace(example_spec: ClusterSpec) -> None:
    identities = render_cluster_config(example_spec)["iam"]["podIdentityAssociations"]
    by_account = {(i["namespace"], i["serviceAccountName"]): i for i in identities}
    assert set(by_account) == {
        ("lbcloud", "lbcloud-dispatcher"),
        ("kube-system", "cluster-autoscaler"),
        ("amazon-cloudwatch", "fluent-bit"),
    }
    dispatcher = by_account[("lbcloud", "lbcloud-dispatcher")]
    assert dispatcher["roleName"] == "leaderboard-lbcloud-dispatcher"
    assert dispatcher["createServiceAccount"] is False
    actions = {a for s in dispatcher["permissionPolicy"]["Statement"] for a in s["Action"]}
    assert actions <= {
        "s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
        "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    }  # fmt: skip


def test_admins_get_access_entries_and_network_policies_are_enforced(example_spec: ClusterSpec) -> None:
    config = render_cluster_config(example_spec)
    entries = config["accessConfig"]["accessEntries"]
    assert [e["principalARN"] for e in entries] == ["arn:aws:iam::123456789012:role/leaderboard-admins"]
    vpc_cni = next(a for a in config["addons"] if a["name"] == "vpc-cni")
    assert "enableNetworkPolicy" in vpc_cni["configurationValues"]
    assert "eks-pod-identity-agent" in {a["name"] for a in config["addons"]}


def test_custom_image_is_named_until_built_then_its_id_is_used(example_spec: ClusterSpec) -> None:
    before = render_cluster_config(example_spec)
    assert has_image_placeholder(before)
    assert _group(before, "g5-xlarge")["ami"].endswith(
        "ubuntu-eks/k8s_1.29/ubuntu-22.04/nvidia-470.182.03/gpu-capabilities-enabled"
    )
    after = render_cluster_config(example_spec, ami_id="ami-0abc12345def67890")
    assert not has_image_placeholder(after)
    assert _group(after, "g5-xlarge")["ami"] == "ami-0abc12345def67890"
    assert _group(after, "g5-xlarge")["amiFamily"] == "Ubuntu2204"
    assert "ami" not in _group(after, "system")


def test_eks_accelerated_pools_use_amazons_gpu_image() -> None:
    spec = VARIANTS["eks-accelerated, no logs, no admins, no EvalAI"]
    config = render_cluster_config(spec)
    for group in config["nodeGroups"]:
        assert group["amiFamily"] == "AmazonLinux2023"
        assert "ami" not in group
    assert "cloudWatch" not in config
    assert len(config["iam"]["podIdentityAssociations"]) == 2


def test_no_account_id_or_ssh_key_is_invented(example_spec: ClusterSpec) -> None:
    text = render_eksctl_file(example_spec)
    account_ids = set(re.findall(r"\b\d{12}\b", text))
    assert account_ids == {"123456789012"}  # only the admin ARN the spec gave
    assert "ssh" not in yaml.safe_load(text)["nodeGroups"][0]
