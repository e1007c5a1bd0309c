"""IAM policy documents: well-formed, scoped to this cluster, and without invented account ids."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from lbcloud.cluster.iam import all_policies, cluster_autoscaler_policy, dispatcher_policy, fluent_bit_policy
from lbcloud.cluster.render import render_all
from lbcloud.cluster.spec import ClusterSpec
from tests.cluster.conftest import spec_from

ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z*]+$")


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    assert policy["Version"] == "2012-10-17"
    return list(policy["Statement"])


@pytest.mark.parametrize("name", ["dispatcher", "cluster-autoscaler", "fluent-bit", "operator", "node-image-builder"])
def test_every_policy_is_a_well_formed_document(name: str, example_spec: ClusterSpec) -> None:
    policy = all_policies(example_spec)[name]
    sids = []
    for statement in _statements(policy):
        assert statement["Effect"] == "Allow"
        assert statement["Action"] and all(ACTION.match(a) for a in statement["Action"])
        assert statement["Resource"] and all(r == "*" or r.startswith("arn:aws:") for r in statement["Resource"])
        sids.append(statement["Sid"])
    assert len(sids) == len(set(sids))
    # the rendered file is the same document
    assert json.loads(render_all(example_spec)[f"iam/{name}-policy.json"]) == policy


def test_dispatcher_may_touch_only_its_prefix(example_spec: ClusterSpec) -> None:
    statements = _statements(dispatcher_policy(example_spec))
    resources = {r for s in statements for r in s["Resource"]}
    assert resources == {"arn:aws:s3:::my-leaderboard-artifacts", "arn:aws:s3:::my-leaderboard-artifacts/lbcloud/*"}
    listing = next(s for s in statements if s["Action"] == ["s3:ListBucket"])
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["lbcloud/*"]}}
    assert not any(a.endswith("*") for s in statements for a in s["Action"])


def test_dispatcher_consumes_the_evalai_queue_only_when_configured() -> None:
    arn = "arn:aws:sqs:us-east-1:123456789012:subs"
    spec = spec_from(
        evalai={"challenge_id": 1, "sqs_queue_arn": arn, "sqs_queue_url": "https://sqs.example/123456789012/subs"}
    )
    queue = next(s for s in _statements(dispatcher_policy(spec)) if s["Sid"] == "ConsumeSubmissionQueue")
    assert queue["Resource"] == [arn]
    assert set(queue["Action"]) >= {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
    assert "sqs:SendMessage" not in queue["Action"]


def test_autoscaler_resizes_only_groups_tagged_for_this_cluster(example_spec: ClusterSpec) -> None:
    resize = next(s for s in _statements(cluster_autoscaler_policy(example_spec)) if s["Sid"] == "ResizeOwnGroups")
    assert resize["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/leaderboard": "owned"}}


def test_log_shipping_writes_only_this_clusters_groups(example_spec: ClusterSpec) -> None:
    write = _statements(fluent_bit_policy(example_spec))[0]
    assert all(r.startswith("arn:aws:logs:us-east-1:*:log-group:/lbcloud/leaderboard/") for r in write["Resource"])


def test_policies_never_name_an_account(example_spec: ClusterSpec) -> None:
    for name, policy in all_policies(example_spec).items():
        assert not re.search(r"\b\d{12}\b", json.dumps(policy)), name
