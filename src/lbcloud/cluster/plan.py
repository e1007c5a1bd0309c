"""The ordered steps of ``cluster up`` and ``cluster down``, each with the check that tells whether
it is already done, and the executor that runs them.

A step is one external command plus one line saying what it does. Before running a step the
executor runs its check; a step whose check passes is skipped, so ``up`` can simply be re-run after
a failure. After a step runs, the check must pass, otherwise ``up`` stops with one clear line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lbcloud.cluster.addons import render_addons
from lbcloud.cluster.eksctl import AUTOSCALER_SA, FLUENT_BIT_SA
from lbcloud.cluster.lbcloud_objects import DISPATCHER_SA, SECRET_NAME, secret_manifest
from lbcloud.cluster.node_image import NODE_IMAGE_DIR, spec_image_name
from lbcloud.cluster.render import ADDONS_DIR, EKSCTL_FILE, LBCLOUD_DIR, render_eksctl_file
from lbcloud.cluster.runner import CommandResult, CommandRunner, format_command
from lbcloud.cluster.spec import ClusterSpec
from lbcloud.domain.errors import ConfigError, LbcloudError

ROLLOUT_TIMEOUT = "300s"


class StepFailed(LbcloudError):
    """An external command of ``cluster up``/``down`` failed; re-running continues where it stopped."""

    exit_code = 9


@dataclass(frozen=True, slots=True)
class Check:
    """A read-only command whose result says whether a step is already done."""

    argv: tuple[str, ...]
    done_when: Callable[[CommandResult], bool]
    meaning: str


@dataclass(frozen=True, slots=True)
class Step:
    """One external command and what it does.

    ``stdin`` builds what is fed to the command at run time (e.g. the Secret from environment
    variables), ``stdin_note`` says what that is without showing it; ``after`` consumes the output
    (e.g. records the GPU image id); ``stream`` shows a long command's output live; ``verify`` re-runs
    the check after the step (off when the check really tells whether a later step is done).
    """

    key: str
    title: str
    argv: tuple[str, ...]
    check: Check | None = None
    stdin: Callable[[], str] | None = None
    stdin_note: str = ""
    after: Callable[[CommandResult], None] | None = None
    stream: bool = False
    verify: bool = True  # run the check again afterwards; False when the check is about a later step


@dataclass(frozen=True, slots=True)
class StepOutcome:
    key: str
    title: str
    status: str  # "skipped" (already done), "ran", "planned" (dry run)


def _ok(result: CommandResult) -> bool:
    return result.ok


def _absent(result: CommandResult) -> bool:
    text = (result.stdout + result.stderr).lower()
    return not result.ok and ("not found" in text or "notfound" in text or "no cluster found" in text)


def _lists_all(names: Sequence[str]) -> Callable[[CommandResult], bool]:
    def done(result: CommandResult) -> bool:
        return result.ok and all(name in result.stdout for name in names)

    return done


def _is_ami(result: CommandResult) -> bool:
    return result.ok and result.stdout.strip().startswith("ami-")


def kubectl(spec: ClusterSpec, *args: str) -> tuple[str, ...]:
    """kubectl pinned to the cluster's own context (never whatever context happens to be current)."""
    return ("kubectl", "--context", spec.kube_context, *args)


def _apply(spec: ClusterSpec, key: str, title: str, path: Path) -> Step:
    return Step(
        key,
        title,
        kubectl(spec, "apply", "-f", str(path)),
        Check(kubectl(spec, "diff", "-f", str(path)), _ok, "the cluster already matches the file"),
    )


def secret_values(spec: ClusterSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """Secret key -> value from the environment variables the spec names; ConfigError lists missing ones."""
    wanted = {"database-url": spec.database.url_env, "operator-token": spec.operator_token_env}
    if spec.evalai is not None:
        wanted["evalai-token"] = spec.evalai.token_env
    missing = [env for env in wanted.values() if not environ.get(env)]
    if missing:
        raise ConfigError(f"set {', '.join(missing)} in the environment (secrets for {SECRET_NAME}); nothing was run")
    return {key: environ[env] for key, env in wanted.items()}


def _image_lookup(spec: ClusterSpec, name: str) -> tuple[str, ...]:
    return (
        "aws", "ec2", "describe-images", "--region", spec.region, "--owners", "self",
        "--filters", f"Name=name,Values={name}", "--query", "Images[0].ImageId", "--output", "text",
    )  # fmt: skip


def _node_image_steps(spec: ClusterSpec, out_dir: Path) -> list[Step]:
    name = spec_image_name(spec)
    if name is None or (spec.gpu_image is not None and spec.gpu_image.ami_id is not None):
        return []
    builder = spec.gpu_image.builder_instance_type if spec.gpu_image else "GPU"
    lookup = _image_lookup(spec, name)
    image_dir = str(out_dir / NODE_IMAGE_DIR)
    exists = Check(lookup, _is_ami, f"an image named {name} exists")

    def record_ami(result: CommandResult) -> None:
        ami = result.stdout.strip()
        if not ami.startswith("ami-"):
            raise StepFailed(
                f"GPU image {name} not found in {spec.region} after the build; run `lbcloud cluster up` again"
            )
        (out_dir / EKSCTL_FILE).write_text(render_eksctl_file(spec, ami), encoding="utf-8")

    return [
        Step(
            "packer-init",
            "install Packer's Amazon plugin (needed to build the GPU image)",
            ("packer", "init", image_dir),
            exists,
            verify=False,
        ),
        Step(
            "node-image",
            f"build the GPU node image {name} (on a temporary {builder} instance, about 20 min)",
            ("packer", "build", image_dir),
            exists,
            stream=True,
        ),
        Step("image-id", "look up the GPU image id and write it into eksctl/cluster.yaml", lookup, after=record_ami),
    ]


def up_steps(spec: ClusterSpec, out_dir: Path, environ: Mapping[str, str] | None = None) -> list[Step]:
    """Every step of ``cluster up`` in order. ``out_dir`` holds the rendered files."""
    env = os.environ if environ is None else environ
    eksctl_file = str(out_dir / EKSCTL_FILE)
    where = ("--cluster", spec.name, "--region", spec.region)
    identities = [DISPATCHER_SA, AUTOSCALER_SA[1]] + ([FLUENT_BIT_SA[1]] if spec.logs.enabled else [])
    steps = [
        Step(
            "aws-identity",
            "check the AWS credentials and show which identity is used",
            ("aws", "sts", "get-caller-identity"),
        ),
        *_node_image_steps(spec, out_dir),
        Step(
            "cluster",
            f"create the EKS cluster {spec.name} with its system and GPU node groups (about 20 min)",
            ("eksctl", "create", "cluster", "-f", eksctl_file),
            Check(
                ("eksctl", "get", "cluster", "--name", spec.name, "--region", spec.region), _ok, "the cluster exists"
            ),
            stream=True,
        ),
        Step(
            "nodegroups",
            "create node groups missing after an interrupted run (existing ones are left alone)",
            ("eksctl", "create", "nodegroup", "-f", eksctl_file),
            Check(
                ("eksctl", "get", "nodegroup", *where, "-o", "json"),
                _lists_all(["system", *(p.name for p in spec.gpu_pools)]),
                "every node group exists",
            ),
            stream=True,
        ),
        Step(
            "pod-identities",
            "give the dispatcher, autoscaler and log shipper their own AWS roles (EKS Pod Identity)",
            ("eksctl", "create", "podidentityassociation", "-f", eksctl_file),
            Check(
                ("eksctl", "get", "podidentityassociation", *where, "-o", "json"),
                _lists_all(identities),
                "every association exists",
            ),
        ),
        Step(
            "kubeconfig",
            f"add the kubectl context {spec.kube_context} for this cluster",
            (
                "aws",
                "eks",
                "update-kubeconfig",
                "--name",
                spec.name,
                "--region",
                spec.region,
                "--alias",
                spec.kube_context,
            ),
            Check(("kubectl", "config", "get-contexts", spec.kube_context), _ok, "the context exists"),
        ),
    ]
    titles = {
        "nvidia-device-plugin.yaml": "install the NVIDIA device plugin (lets Kubernetes hand out GPUs)",
        "cluster-autoscaler.yaml": "install the cluster autoscaler (adds GPU nodes when work waits, removes idle ones)",
        "fluent-bit.yaml": "install Fluent Bit (ships container logs to CloudWatch Logs)",
    }
    for name in render_addons(spec):
        steps.append(_apply(spec, f"addon-{name.removesuffix('.yaml')}", titles[name], out_dir / ADDONS_DIR / name))
    lbcloud_dir = out_dir / LBCLOUD_DIR
    steps.append(
        _apply(spec, "namespace", f"create lbcloud's namespace {spec.namespace}", lbcloud_dir / "00-namespace.yaml")
    )
    steps.append(
        Step(
            "secret",
            f"store the database URL and tokens in the Secret {SECRET_NAME}",
            kubectl(spec, "create", "-f", "-"),  # not apply: that keeps a plain copy in an annotation
            Check(kubectl(spec, "-n", spec.namespace, "get", "secret", SECRET_NAME), _ok, "the Secret exists"),
            stdin=lambda: json.dumps(secret_manifest(spec, secret_values(spec, env))),
            stdin_note=f"Secret {SECRET_NAME} built from ${spec.database.url_env}, ${spec.operator_token_env}"
            + (f", ${spec.evalai.token_env}" if spec.evalai else "")
            + " (values not shown)",
        )
    )
    steps.append(
        _apply(spec, "lbcloud", "deploy lbcloud: RBAC, settings, dispatcher, web, network policies", lbcloud_dir)
    )
    for role in ("dispatcher", "web"):
        steps.append(
            Step(
                f"rollout-{role}",
                f"wait until lbcloud-{role} is running and healthy",
                kubectl(
                    spec,
                    "-n",
                    spec.namespace,
                    "rollout",
                    "status",
                    f"deployment/lbcloud-{role}",
                    f"--timeout={ROLLOUT_TIMEOUT}",
                ),
            )
        )
    return steps


def down_steps(spec: ClusterSpec) -> list[Step]:
    """Every step of ``cluster down`` in order (the GPU image is kept; see the operator guide)."""
    return [
        Step(
            "namespace",
            f"stop lbcloud and every evaluation: delete the namespace {spec.namespace}",
            kubectl(spec, "delete", "namespace", spec.namespace, "--ignore-not-found", "--wait=true"),
            Check(kubectl(spec, "get", "namespace", spec.namespace), lambda r: not r.ok, "the namespace is gone"),
        ),
        Step(
            "cluster",
            f"delete the EKS cluster {spec.name}, its node groups, roles and network (about 15 min)",
            # by name, not -f: deleting must not depend on rendered files (or on the GPU image id in them)
            ("eksctl", "delete", "cluster", "--name", spec.name, "--region", spec.region, "--wait"),
            Check(
                ("eksctl", "get", "cluster", "--name", spec.name, "--region", spec.region), _absent, "no such cluster"
            ),
            stream=True,
        ),
        Step(
            "kubeconfig",
            f"remove the kubectl context {spec.kube_context}",
            ("kubectl", "config", "delete-context", spec.kube_context),
            Check(("kubectl", "config", "get-contexts", spec.kube_context), lambda r: not r.ok, "the context is gone"),
        ),
    ]


@dataclass
class PlanPrinter:
    """Writes a plan as numbered steps: what it does, the command, and when it is skipped."""

    echo: Callable[[str], None]
    lines: list[str] = field(default_factory=list)

    def print(self, steps: Sequence[Step]) -> None:
        for number, step in enumerate(steps, 1):
            self.echo(f"{number:2d}. {step.title}")
            note = f"   # stdin: {step.stdin_note}" if step.stdin_note else ""
            self.echo(f"    $ {format_command(step.argv)}{note}")
            if step.check is not None:
                self.echo(f"    skipped when {step.check.meaning}: $ {format_command(step.check.argv)}")


def execute(
    steps: Sequence[Step], runner: CommandRunner, echo: Callable[[str], None], *, dry_run: bool = False
) -> list[StepOutcome]:
    """Run the steps in order, skipping those already done; raises :class:`StepFailed` on the first failure.

    ``runner`` should print each command before running it (``EchoingRunner``). With ``dry_run`` nothing
    runs at all: the plan is printed.
    """
    if dry_run:
        PlanPrinter(echo).print(steps)
        return [StepOutcome(s.key, s.title, "planned") for s in steps]
    outcomes = []
    total = len(steps)
    for number, step in enumerate(steps, 1):
        echo(f"[{number}/{total}] {step.title}")
        if step.check is not None and step.check.done_when(runner.run(step.check.argv)):
            echo(f"    already done ({step.check.meaning}); skipped")
            outcomes.append(StepOutcome(step.key, step.title, "skipped"))
            continue
        stdin = step.stdin() if step.stdin is not None else None
        if step.stdin_note:
            echo(f"    (stdin: {step.stdin_note})")
        result = runner.run(step.argv, stdin=stdin, stream=step.stream)
        if not result.ok:
            raise StepFailed(
                f"step {number}/{total} ({step.title}) failed: `{format_command(step.argv)}` exited "
                f"{result.returncode}: {result.last_error_line()} — fix it and re-run; finished steps are skipped"
            )
        if step.after is not None:
            step.after(result)
        if step.verify and step.check is not None and not step.check.done_when(runner.run(step.check.argv)):
            raise StepFailed(
                f"step {number}/{total} ({step.title}) ran, but its check still fails "
                f"(`{format_command(step.check.argv)}`: expected {step.check.meaning})"
            )
        outcomes.append(StepOutcome(step.key, step.title, "ran"))
    return outcomes
