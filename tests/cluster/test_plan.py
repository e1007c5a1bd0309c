"""`cluster up`/`down` steps: order, checks, re-runs after failure, secrets, the recorded image id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lbcloud.cluster.plan import PlanPrinter, StepFailed, down_steps, execute, secret_values, up_steps
from lbcloud.cluster.render import render_all, write_files
from lbcloud.cluster.runner import EchoingRunner
from lbcloud.cluster.spec import ClusterSpec
from lbcloud.domain.errors import ConfigError
from tests.cluster.conftest import example_data, spec_from
from tests.cluster.fakes import FakeRunner

ENV = {"LBCLOUD_DATABASE_URL": "postgresql://lb:pw@db/lb", "LBCLOUD_OPERATOR_TOKEN": "op-tok", "EVALAI_TOKEN": "ev-tok"}
AMI = "ami-0abc12345def67890"


def _fresh_account(fake: FakeRunner) -> None:
    """A brand-new AWS account: every check says "not done" until the step that does it has run."""
    fake.on("aws", "ec2", "describe-images", stdout="None\n")
    fake.on("eksctl", "get", returncode=1, stderr="Error: not found")
    fake.on("kubectl", "config", "get-contexts", returncode=1)
    fake.on("kubectl", "diff", returncode=1)
    fake.on("kubectl", "get", "secret", returncode=1, stderr="NotFound")
    fake.on("packer", "build", then=lambda _: fake.on("aws", "ec2", "describe-images", stdout=f"{AMI}\n"))
    fake.on("eksctl", "create", "cluster", then=lambda _: fake.on("eksctl", "get", "cluster"))
    fake.on(
        "eksctl",
        "create",
        "nodegroup",
        then=lambda _: fake.on(
            "eksctl", "get", "nodegroup", stdout='[{"Name": "system"}, {"Name": "g5-xlarge"}, {"Name": "g5-12xlarge"}]'
        ),
    )
    fake.on(
        "eksctl",
        "create",
        "podidentityassociation",
        then=lambda _: fake.on(
            "eksctl", "get", "podidentityassociation", stdout="lbcloud-dispatcher cluster-autoscaler fluent-bit"
        ),
    )
    fake.on("aws", "eks", "update-kubeconfig", then=lambda _: fake.on("kubectl", "config", "get-contexts"))
    fake.on("kubectl", "apply", then=lambda argv: fake.on("kubectl", "diff", *argv[-2:]))
    fake.on("kubectl", "create", "-", then=lambda _: fake.on("kubectl", "get", "secret"))


def test_up_steps_are_in_dependency_order(example_spec: ClusterSpec, tmp_path: Path) -> None:
    keys = [s.key for s in up_steps(example_spec, tmp_path, ENV)]
    assert keys == [
        "aws-identity", "packer-init", "node-image", "image-id", "cluster", "nodegroups", "pod-identities",
        "kubeconfig", "addon-nvidia-device-plugin", "addon-cluster-autoscaler", "addon-fluent-bit",
        "namespace", "secret", "lbcloud", "rollout-dispatcher", "rollout-web",
    ]  # fmt: skip


def test_eks_image_or_prebuilt_image_skips_packer(tmp_path: Path) -> None:
    data = example_data()
    data["gpu_image"]["kind"] = "eks-accelerated"
    assert not any(s.argv[0] == "packer" for s in up_steps(spec_from(data), tmp_path, ENV))
    prebuilt = example_data()
    prebuilt["gpu_image"]["ami_id"] = AMI
    keys = [s.key for s in up_steps(spec_from(prebuilt), tmp_path, ENV)]
    assert "node-image" not in keys and "image-id" not in keys


def test_every_step_but_read_only_ones_has_a_check(example_spec: ClusterSpec, tmp_path: Path) -> None:
    unchecked = {s.key for s in up_steps(example_spec, tmp_path, ENV) if s.check is None}
    assert unchecked == {"aws-identity", "image-id", "rollout-dispatcher", "rollout-web"}
    assert all(s.check is not None for s in down_steps(example_spec))


def test_plan_printer_gives_one_line_per_step_then_the_command(example_spec: ClusterSpec, tmp_path: Path) -> None:
    printed: list[str] = []
    PlanPrinter(printed.append).print(up_steps(example_spec, tmp_path, ENV))
    assert printed[0] == " 1. check the AWS credentials and show which identity is used"
    assert printed[1] == "    $ aws sts get-caller-identity"
    text = "\n".join(printed)
    assert f"$ eksctl create cluster -f {tmp_path}/eksctl/cluster.yaml" in text
    assert "skipped when the cluster exists: $ eksctl get cluster --name leaderboard --region us-east-1" in text
    assert "16. wait until lbcloud-web is running and healthy" in text
    assert "ev-tok" not in text and "postgresql://" not in text


def test_first_up_runs_every_step_and_records_the_image_id(example_spec: ClusterSpec, tmp_path: Path) -> None:
    write_files(render_all(example_spec), tmp_path)
    fake = FakeRunner()
    _fresh_account(fake)
    steps = up_steps(example_spec, tmp_path, ENV)
    printed: list[str] = []
    outcomes = execute(steps, EchoingRunner(fake, printed.append), printed.append)
    assert [o.status for o in outcomes] == ["ran"] * len(steps)
    commands = [
        c.line for c in fake.calls if c.argv[1:2] not in (("diff",), ("get",)) and "describe-images" not in c.argv
    ]
    assert commands[0] == "aws sts get-caller-identity"
    assert commands[1:3] == [f"packer init {tmp_path}/node-image", f"packer build {tmp_path}/node-image"]
    assert commands[3] == f"eksctl create cluster -f {tmp_path}/eksctl/cluster.yaml"
    cluster_yaml = yaml.safe_load((tmp_path / "eksctl" / "cluster.yaml").read_text(encoding="utf-8"))
    assert {g["ami"] for g in cluster_yaml["nodeGroups"] if "ami" in g} == {AMI}
    secret_call = fake.ran("kubectl", "create", "-f", "-")[0]
    secret = json.loads(secret_call.stdin or "{}")
    assert secret["kind"] == "Secret" and secret["stringData"]["evalai-token"] == "ev-tok"
    assert not any("ev-tok" in line or "pw@db" in line for line in printed)
    assert fake.ran("packer", "build")[0].stream
    # every command was printed before it ran
    assert sum(1 for line in printed if line.startswith("    $ ")) == len(fake.calls)


def test_a_rerun_skips_what_is_done(example_spec: ClusterSpec, tmp_path: Path) -> None:
    write_files(render_all(example_spec), tmp_path)
    fake = FakeRunner()
    fake.on("aws", "ec2", "describe-images", stdout=f"{AMI}\n")
    fake.on("eksctl", "get", "nodegroup", stdout="system g5-xlarge g5-12xlarge")
    fake.on("eksctl", "get", "podidentityassociation", stdout="lbcloud-dispatcher cluster-autoscaler fluent-bit")
    printed: list[str] = []
    outcomes = execute(up_steps(example_spec, tmp_path, ENV), fake, printed.append)
    ran = [o.key for o in outcomes if o.status == "ran"]
    assert ran == ["aws-identity", "image-id", "rollout-dispatcher", "rollout-web"]
    assert not fake.ran("packer") and not fake.ran("eksctl", "create")
    assert "    already done (the cluster exists); skipped" in printed


def test_a_failed_step_stops_with_one_line_and_a_rerun_continues(example_spec: ClusterSpec, tmp_path: Path) -> None:
    write_files(render_all(example_spec), tmp_path)
    fake = FakeRunner()
    fake.on("aws", "ec2", "describe-images", stdout=f"{AMI}\n")
    fake.on("eksctl", "get", "cluster", returncode=1, stderr="not found")
    fake.on("eksctl", "create", "cluster", returncode=1, stderr="info\nError: VPC limit exceeded\n", times=1)
    steps = up_steps(example_spec, tmp_path, ENV)
    with pytest.raises(StepFailed) as failed:
        execute(steps, fake, lambda _: None)
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith("step 5/16 (create the EKS cluster leaderboard")
    assert "exited 1: Error: VPC limit exceeded" in message
    assert "re-run" in message
    assert not fake.ran("eksctl", "create", "nodegroup")  # nothing after the failure ran
    # the cause is fixed: the re-run creates the cluster and carries on
    fake.on("eksctl", "create", "cluster", returncode=0)
    fake.on("eksctl", "get", "cluster", returncode=0, times=None)
    fake.on("eksctl", "get", "nodegroup", stdout="system g5-xlarge g5-12xlarge")
    fake.on("eksctl", "get", "podidentityassociation", stdout="lbcloud-dispatcher cluster-autoscaler fluent-bit")
    outcomes = execute(steps, fake, lambda _: None)
    assert {o.key: o.status for o in outcomes}["cluster"] == "skipped"  # it exists now (created before the check)


def test_a_step_whose_check_still_fails_afterwards_is_an_error(example_spec: ClusterSpec, tmp_path: Path) -> None:
    fake = FakeRunner()
    fake.on("kubectl", "diff", returncode=1)
    steps = [s for s in up_steps(example_spec, tmp_path, ENV) if s.key == "addon-nvidia-device-plugin"]
    with pytest.raises(StepFailed, match="ran, but its check still fails"):
        execute(steps, fake, lambda _: None)


def test_image_lookup_that_finds_nothing_after_the_build_fails_clearly(
    example_spec: ClusterSpec, tmp_path: Path
) -> None:
    fake = FakeRunner()
    fake.on("aws", "ec2", "describe-images", stdout="None\n")
    steps = [s for s in up_steps(example_spec, tmp_path, ENV) if s.key == "image-id"]
    with pytest.raises(StepFailed, match=r"GPU image ubuntu-eks/k8s_1\.29/.* not found in us-east-1"):
        execute(steps, fake, lambda _: None)


def test_missing_secrets_are_named_before_anything_runs(example_spec: ClusterSpec) -> None:
    with pytest.raises(ConfigError) as missing:
        secret_values(example_spec, {"LBCLOUD_DATABASE_URL": "x"})
    assert str(missing.value) == (
        "set LBCLOUD_OPERATOR_TOKEN, EVALAI_TOKEN in the environment (secrets for lbcloud-secrets); nothing was run"
    )
    assert secret_values(example_spec, ENV) == {
        "database-url": ENV["LBCLOUD_DATABASE_URL"],
        "operator-token": "op-tok",
        "evalai-token": "ev-tok",
    }


def test_dry_run_prints_the_plan_and_runs_nothing(example_spec: ClusterSpec, tmp_path: Path) -> None:
    fake = FakeRunner()
    printed: list[str] = []
    outcomes = execute(up_steps(example_spec, tmp_path, {}), fake, printed.append, dry_run=True)
    assert fake.calls == []
    assert {o.status for o in outcomes} == {"planned"}
    assert printed[0].startswith(" 1. ")


def test_down_deletes_lbcloud_then_the_cluster_then_the_context(example_spec: ClusterSpec, tmp_path: Path) -> None:
    fake = FakeRunner()
    fake.on("kubectl", "get", "namespace", returncode=1, stderr="NotFound")
    fake.on("kubectl", "get", "namespace", returncode=0, times=1)  # exists before, gone after (latest rule first)
    fake.on("eksctl", "get", "cluster", returncode=1, stderr="ResourceNotFoundException: No cluster found for name")
    fake.on("eksctl", "get", "cluster", returncode=0, times=1)
    fake.on("kubectl", "config", "get-contexts", returncode=1)
    fake.on("kubectl", "config", "get-contexts", returncode=0, times=1)
    outcomes = execute(down_steps(example_spec), fake, lambda _: None)
    assert [o.status for o in outcomes] == ["ran", "ran", "ran"]
    runs = [c.line for c in fake.calls if any(a.startswith("delete") for a in c.argv)]
    assert runs == [
        "kubectl --context lbcloud-leaderboard delete namespace lbcloud --ignore-not-found --wait=true",
        "eksctl delete cluster --name leaderboard --region us-east-1 --wait",
        "kubectl config delete-context lbcloud-leaderboard",
    ]


def test_down_does_not_treat_an_auth_error_as_already_deleted(example_spec: ClusterSpec, tmp_path: Path) -> None:
    fake = FakeRunner()
    fake.on("kubectl", "get", "namespace", returncode=1, stderr="NotFound")
    fake.on("eksctl", "get", "cluster", returncode=1, stderr="Error: ExpiredToken: the security token has expired")
    fake.on("eksctl", "delete", "cluster", returncode=1, stderr="Error: ExpiredToken")
    with pytest.raises(StepFailed, match="ExpiredToken"):
        execute(down_steps(example_spec), fake, lambda _: None)
