"""Least-privilege IAM policy documents.

Each function returns one policy document (a plain mapping, ready for JSON). ARNs use the
cluster's names and ``*`` for the account, so no account id is ever written into a file.

- the dispatcher (pod identity): its S3 prefix, optionally the EvalAI SQS queue; nothing else;
- the cluster autoscaler (pod identity): resize only the Auto Scaling groups tagged for this cluster;
- Fluent Bit (pod identity): write to this cluster's CloudWatch log groups;
- the operator who runs ``lbcloud cluster up``/``down`` (attach to a role or user);
- the Packer build of the GPU node image (part of the operator's rights, kept separate for review).
"""

from __future__ import annotations

from typing import Any

from lbcloud.cluster.spec import ClusterSpec

PolicyDocument = dict[str, Any]
VERSION = "2012-10-17"


def _doc(*statements: dict[str, Any]) -> PolicyDocument:
    return {"Version": VERSION, "Statement": list(statements)}


def log_group_prefix(spec: ClusterSpec) -> str:
    return f"/lbcloud/{spec.name}"


def dispatcher_policy(spec: ClusterSpec) -> PolicyDocument:
    """Read/write objects under the storage prefix; receive/delete the EvalAI queue's messages."""
    bucket, prefix = spec.storage.bucket, spec.storage.prefix
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListOwnPrefix",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
            "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        },
        {
            "Sid": "ReadWriteOwnPrefix",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
        },
    ]
    if spec.evalai is not None and spec.evalai.sqs_queue_arn is not None:
        statements.append(
            {
                "Sid": "ConsumeSubmissionQueue",
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                ],
                "Resource": [spec.evalai.sqs_queue_arn],
            }
        )
    return _doc(*statements)


def cluster_autoscaler_policy(spec: ClusterSpec) -> PolicyDocument:
    """Describe everything it needs; change only this cluster's tagged Auto Scaling groups."""
    return _doc(
        {
            "Sid": "Describe",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
                "eks:DescribeNodegroup",
            ],
            "Resource": ["*"],
        },
        {
            "Sid": "ResizeOwnGroups",
            "Effect": "Allow",
            "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{spec.name}": "owned"}},
        },
    )


def fluent_bit_policy(spec: ClusterSpec) -> PolicyDocument:
    """Create and write this cluster's log groups and streams only."""
    group = log_group_prefix(spec)
    return _doc(
        {
            "Sid": "WriteClusterLogs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
                "logs:PutRetentionPolicy",
            ],
            "Resource": [
                f"arn:aws:logs:{spec.region}:*:log-group:{group}/*",
                f"arn:aws:logs:{spec.region}:*:log-group:{group}/*:log-stream:*",
            ],
        },
        {"Sid": "FindLogGroups", "Effect": "Allow", "Action": ["logs:DescribeLogGroups"], "Resource": ["*"]},
    )


def node_image_builder_policy(spec: ClusterSpec) -> PolicyDocument:
    """What Packer's amazon-ebs builder needs: a temporary instance, key pair and security group."""
    return _doc(
        {
            "Sid": "BuildImage",
            "Effect": "Allow",
            "Action": [
                "ec2:AttachVolume",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:CopyImage",
                "ec2:CreateImage",
                "ec2:CreateKeyPair",
                "ec2:CreateSecurityGroup",
                "ec2:CreateSnapshot",
                "ec2:CreateTags",
                "ec2:CreateVolume",
                "ec2:DeleteKeyPair",
                "ec2:DeleteSecurityGroup",
                "ec2:DeleteSnapshot",
                "ec2:DeleteVolume",
                "ec2:DeregisterImage",
                "ec2:DescribeImageAttribute",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeRegions",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSnapshots",
                "ec2:DescribeSubnets",
                "ec2:DescribeTags",
                "ec2:DescribeVolumes",
                "ec2:DescribeVpcs",
                "ec2:DetachVolume",
                "ec2:GetPasswordData",
                "ec2:ModifyImageAttribute",
                "ec2:ModifyInstanceAttribute",
                "ec2:ModifySnapshotAttribute",
                "ec2:RegisterImage",
                "ec2:RunInstances",
                "ec2:StopInstances",
                "ec2:TerminateInstances",
            ],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"aws:RequestedRegion": spec.region}},
        },
    )


def operator_policy(spec: ClusterSpec) -> PolicyDocument:
    """What ``lbcloud cluster up``/``down`` needs: eksctl's stacks, roles and cluster for this name only."""
    name = spec.name
    return _doc(
        {
            "Sid": "EksctlStacks",
            "Effect": "Allow",
            "Action": ["cloudformation:*"],
            "Resource": [f"arn:aws:cloudformation:{spec.region}:*:stack/eksctl-{name}-*/*"],
        },
        {
            "Sid": "ReadCloudFormation",
            "Effect": "Allow",
            "Action": ["cloudformation:ListStacks", "cloudformation:DescribeStacks", "cloudformation:GetTemplate"],
            "Resource": ["*"],
        },
        {
            "Sid": "Cluster",
            "Effect": "Allow",
            "Action": ["eks:*"],
            "Resource": [
                f"arn:aws:eks:{spec.region}:*:cluster/{name}",
                f"arn:aws:eks:{spec.region}:*:nodegroup/{name}/*/*",
                f"arn:aws:eks:{spec.region}:*:addon/{name}/*/*",
                f"arn:aws:eks:{spec.region}:*:access-entry/{name}/*",
                f"arn:aws:eks:{spec.region}:*:podidentityassociation/{name}/*",
                "arn:aws:eks::aws:cluster-access-policy/*",
            ],
        },
        {
            "Sid": "EksRead",
            "Effect": "Allow",
            "Action": ["eks:DescribeAddonVersions", "eks:DescribeAddonConfiguration", "eks:ListClusters"],
            "Resource": ["*"],
        },
        {
            "Sid": "NetworkAndNodes",
            "Effect": "Allow",
            "Action": ["ec2:*", "autoscaling:*", "elasticloadbalancing:Describe*"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"aws:RequestedRegion": spec.region}},
        },
        {
            "Sid": "ClusterRoles",
            "Effect": "Allow",
            "Action": [
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:AttachRolePolicy",
                "iam:DetachRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListRolePolicies",
                "iam:PassRole",
                "iam:CreateInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:GetInstanceProfile",
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:ListInstanceProfilesForRole",
            ],
            "Resource": [
                f"arn:aws:iam::*:role/eksctl-{name}-*",
                f"arn:aws:iam::*:role/{name}-*",
                f"arn:aws:iam::*:instance-profile/eksctl-{name}-*",
            ],
        },
        {
            "Sid": "ServiceLinkedRoles",
            "Effect": "Allow",
            "Action": ["iam:CreateServiceLinkedRole", "iam:GetOpenIDConnectProvider", "iam:ListOpenIDConnectProviders"],
            "Resource": ["*"],
        },
        {
            "Sid": "PublicImageLookup",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters"],
            "Resource": [f"arn:aws:ssm:{spec.region}::parameter/aws/service/*"],
        },
        {
            "Sid": "ClusterLogGroups",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DescribeLogGroups",
            ],
            "Resource": ["*"],
        },
        {"Sid": "WhoAmI", "Effect": "Allow", "Action": ["sts:GetCallerIdentity"], "Resource": ["*"]},
    )


def all_policies(spec: ClusterSpec) -> dict[str, PolicyDocument]:
    """File stem -> policy document, for ``cluster render``."""
    policies = {
        "dispatcher": dispatcher_policy(spec),
        "cluster-autoscaler": cluster_autoscaler_policy(spec),
        "operator": operator_policy(spec),
    }
    if spec.logs.enabled:
        policies["fluent-bit"] = fluent_bit_policy(spec)
    if spec.needs_custom_image():
        policies["node-image-builder"] = node_image_builder_policy(spec)
    return policies
