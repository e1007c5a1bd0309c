"""`lbcloud cluster` as an operator runs it: init, render, plan, up, down, doctor (external commands faked)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from lbcloud.entrypoints.cli import cluster as cluster_cli
from lbcloud.entrypoints.cli.main import main
from tests.cluster.conftest import example_data, write_spec
from tests.cluster.fakes import FakeRunner

SECRETS = {"LBCLOUD_DATABASE_URL": "postgresql://lb:pw@db/lb", "LBCLOUD_OPERATOR_TOKEN": "op", "EVALAI_TOKEN": "ev"}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    runner = FakeRunner()
    monkeypatch.setattr(cluster_cli, "runner_factory", lambda echo: runner)
    return runner


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    write_spec(tmp_path / "cluster.yaml", example_data())
    return tmp_path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_init_writes_the_example_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "my-cluster.yaml"
    code, out, _ = _run(["cluster", "init", "--spec", str(target)], capsys)
    assert code == 0 and "wrote" in out
    assert yaml.safe_load(target.read_text(encoding="utf-8"))["name"] == "leaderboard"
    target.write_text("name: mine\n", encoding="utf-8")
    code, _, err = _run(["cluster", "init", "--spec", str(target)], capsys)
    assert code == 5
    assert err == f"error: {target}: already exists; not overwriting it (use --force, or another --spec path)\n"
    assert target.read_text(encoding="utf-8") == "name: mine\n"


def test_render_writes_every_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["cluster", "render", "-o", "out"], capsys)
    assert code == 0
    assert (workdir / "out" / "eksctl" / "cluster.yaml").is_file()
    assert (workdir / "out" / "lbcloud" / "30-dispatcher.yaml").is_file()
    assert "wrote out/node-image/gpu-node.pkr.hcl" in out
    assert "`lbcloud cluster up` builds it and writes its id there" in out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["gpu_pools"][0].update(instance_type="g5-xlarge"),
            "gpu_pools[0].instance_type: 'g5-xlarge' is not",
        ),
        (lambda d: d["gpu_pools"][0].update(min=5, max=2), "gpu_pools[0]: min (5) is greater than max (2)"),
        (lambda d: d.pop("region"), "region: required field is missing"),
        (lambda d: d.pop("gpu_image"), "gpu_pools[0] (g5-xlarge): no GPU node image chosen"),
    ],
)
def test_bad_specs_give_one_error_line_and_exit_5(
    edit: object, message: str, workdir: Path, fake: FakeRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    data = example_data()
    edit(data)  # type: ignore[operator]
    write_spec(workdir / "cluster.yaml", data)
    for command in (["render"], ["plan"], ["up", "--dry-run"]):
        code, _, err = _run(["cluster", *command], capsys)
        assert code == 5
        assert err.startswith("error: cluster.yaml: ") and message in err
        assert err.count("\n") == 1
    assert fake.calls == []
    assert not (workdir / "rendered").exists()


def test_plan_prints_numbered_commands_and_costs(
    workdir: Path, fake: FakeRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["cluster", "plan"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "`lbcloud cluster up` for leaderboard in us-east-1 (files rendered into rendered/leaderboard):"
    numbered = [line for line in lines if line[:3].strip().rstrip(".").isdigit()]
    assert len(numbered) == 16
    assert " 5. create the EKS cluster leaderboard with its system and GPU node groups (about 20 min)" in lines
    assert "    $ eksctl create cluster -f rendered/leaderboard/eksctl/cluster.yaml" in lines
    assert any(line.startswith("Cost per hour (us-east-1 on-demand list prices") for line in lines)
    assert any("g5-xlarge" in line and "$1.006/node" in line for line in lines)
    assert fake.calls == []


def test_up_dry_run_prints_and_runs_nothing(
    workdir: Path, fake: FakeRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["cluster", "up", "--dry-run"], capsys)
    assert code == 0
    assert "$ packer build rendered/leaderboard/node-image" in out
    assert fake.calls == []
    assert not (workdir / "rendered").exists()


def test_up_without_secrets_names_them_and_runs_nothing(
    workdir: Path, fake: FakeRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["cluster", "up"], capsys)
    assert code == 5
    assert err == (
        "error: set LBCLOUD_DATABASE_URL, LBCLOUD_OPERATOR_TOKEN, EVALAI_TOKEN in the environment "
        "(secrets for lbcloud-secrets); nothing was run\n"
    )
    assert fake.calls == []


def test_up_on_a_finished_cluster_only_reads(
    workdir: Path, fake: FakeRunner, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    fake.on("aws", "ec2", "describe-images", stdout="ami-0abc12345def67890\n")
    fake.on("eksctl", "get", "nodegroup", stdout="system g5-xlarge g5-12xlarge")
    fake.on("eksctl", "get", "podidentityassociation", stdout="lbcloud-dispatcher cluster-autoscaler fluent-bit")
    code, out, _ = _run(["cluster", "up"], capsys)
    assert code == 0, out
    assert not fake.ran("eksctl", "create") and not fake.ran("packer") and not fake.ran("kubectl", "apply")
    assert out.count("already done") == 12
    assert "[16/16] wait until lbcloud-web is running and healthy" in out
    # each command is printed right before it runs
    printed = [line.removeprefix("    $ ") for line in out.splitlines() if line.startswith("    $ ")]
    assert len(printed) == len(fake.calls)
    cluster_yaml = yaml.safe_load((workdir / "rendered/leaderboard/eksctl/cluster.yaml").read_text(encoding="utf-8"))
    assert cluster_yaml["nodeGroups"][1]["ami"] == "ami-0abc12345def67890"


def test_down_asks_first_and_stops_on_no(
    workdir: Path, fake: FakeRunner, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, _, _ = _run(["cluster", "down"], capsys)
    assert code == 130
    assert fake.calls == []


def test_down_with_yes_deletes(workdir: Path, fake: FakeRunner, capsys: pytest.CaptureFixture[str]) -> None:
    fake.on(
        "kubectl",
        "get",
        "namespace",
        returncode=1,
        stderr='Error from server (NotFound): namespaces "lbcloud" not found',
    )
    fake.on("eksctl", "get", "cluster", returncode=1, stderr="ResourceNotFoundException: No cluster found")
    fake.on("eksctl", "get", "cluster", returncode=0, times=1)
    fake.on("kubectl", "config", "get-contexts", returncode=1)
    code, out, _ = _run(["cluster", "down", "--yes"], capsys)
    assert code == 0, out
    assert [c.line for c in fake.ran("eksctl", "delete")] == [
        "eksctl delete cluster --name leaderboard --region us-east-1 --wait"
    ]
    assert "cluster leaderboard deleted" in out


def test_down_dry_run_runs_nothing(workdir: Path, fake: FakeRunner, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["cluster", "down", "--dry-run"], capsys)
    assert code == 0
    assert "$ eksctl delete cluster --name leaderboard --region us-east-1 --wait" in out
    assert fake.calls == []


def test_doctor_reports_and_exits_1_on_failure(
    workdir: Path, fake: FakeRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.on("get", "nodes", stdout=json.dumps({"items": []}))
    code, out, err = _run(["cluster", "doctor"], capsys)
    assert code == 1
    assert "  [ok  ] context: lbcloud-leaderboard" in out
    assert "  [FAIL] nodes: no Ready node in the system pool: lbcloud cannot run" in out
    assert err.startswith("error: cluster doctor found ") and "problem(s): nodes" in err
    assert "    $ kubectl --context lbcloud-leaderboard get nodes -o json" in out


def test_doctor_dry_run_lists_the_commands_only(
    workdir: Path, fake: FakeRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["cluster", "doctor", "--dry-run", "--gpu-smoke", "g5-xlarge"], capsys)
    assert code == 0
    assert "$ kubectl --context lbcloud-leaderboard get nodes -o json" in out
    assert "wait '--for=jsonpath={.status.phase}=Succeeded' pod/lbcloud-gpu-smoke" in out
    assert "[FAIL]" not in out and "[ok" not in out
    assert fake.calls == []


@pytest.mark.parametrize("command", ["init", "render", "plan", "up", "down", "doctor"])
def test_every_command_has_help_with_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["cluster", command, "--help"], capsys)
    assert code == 0
    assert "Example:" in out and "lbcloud cluster" in out
