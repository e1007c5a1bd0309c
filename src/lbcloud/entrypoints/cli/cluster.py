"""`lbcloud cluster`: stand up the whole evaluation cloud on AWS from one short spec file.

Every external command (packer, aws, eksctl, kubectl) goes through one runner and is printed before
it runs; ``--dry-run`` only prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from lbcloud.cluster.costs import cost_lines
from lbcloud.cluster.doctor import Finding, Status, run_doctor
from lbcloud.cluster.eksctl import has_image_placeholder, render_cluster_config
from lbcloud.cluster.plan import PlanPrinter, down_steps, execute, secret_values, up_steps
from lbcloud.cluster.render import render_all, write_files
from lbcloud.cluster.runner import CommandRunner, EchoingRunner, PrintOnlyRunner, SubprocessRunner
from lbcloud.cluster.spec import ClusterSpec, example_spec_text, load_spec
from lbcloud.domain.errors import ConfigError, LbcloudError

app = typer.Typer(
    help="Stand up, check and tear down the evaluation cloud (EKS, GPU pools, add-ons, lbcloud) from one spec.\n\n"
    "Example:  lbcloud cluster init && lbcloud cluster plan && lbcloud cluster up",
    no_args_is_help=True,
)

DEFAULT_SPEC = Path("cluster.yaml")


class DoctorFoundProblems(LbcloudError):
    """At least one doctor check failed (exit code 1; the checks say what is wrong)."""

    exit_code = 1


SpecOption = Annotated[Path, typer.Option("--spec", "-s", help="The cluster spec (YAML).")]
OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Folder for rendered files (default: rendered/<cluster name>).")
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Only print what would be run; run nothing.")]


def _subprocess_runner(echo: Callable[[str], None]) -> CommandRunner:
    return SubprocessRunner(on_output=lambda line: echo(f"    | {line}"))


# Tests replace this with a recording fake; everything external goes through the runner it returns.
runner_factory: Callable[[Callable[[str], None]], CommandRunner] = _subprocess_runner


def _echo(line: str) -> None:
    typer.echo(line)


def _runner(dry_run: bool) -> CommandRunner:
    if dry_run:
        return PrintOnlyRunner(_echo)
    return EchoingRunner(runner_factory(_echo), _echo)


def _out_dir(spec: ClusterSpec, out: Path | None) -> Path:
    return out if out is not None else Path("rendered") / spec.name


@app.command()
def init(
    spec: SpecOption = DEFAULT_SPEC,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    dry_run: DryRunOption = False,
) -> None:
    """Write a commented example cluster spec to edit (--dry-run prints it instead).

    Example:  lbcloud cluster init --spec cluster.yaml
    """
    if dry_run:
        typer.echo(example_spec_text(), nl=False)
        return
    if spec.exists() and not force:
        raise ConfigError(f"{spec}: already exists; not overwriting it (use --force, or another --spec path)")
    try:
        spec.write_text(example_spec_text(), encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{spec}: cannot write the example spec ({err.strerror or err})") from None
    typer.echo(f"wrote {spec}: edit it, then run `lbcloud cluster plan --spec {spec}`")


@app.command()
def render(spec: SpecOption = DEFAULT_SPEC, out: OutOption = None, dry_run: DryRunOption = False) -> None:
    """Write every file the spec implies (eksctl config, add-ons, lbcloud objects, IAM policies, GPU image).

    Nothing is run (--dry-run lists the files without writing them).
    Example:  lbcloud cluster render --spec cluster.yaml -o rendered/leaderboard
    """
    cluster = load_spec(spec)
    out_dir = _out_dir(cluster, out)
    files = render_all(cluster)
    if dry_run:
        for rel in files:
            typer.echo(f"would write {out_dir / rel}")
        return
    written = write_files(files, out_dir)
    for path in written:
        typer.echo(f"wrote {path}")
    if has_image_placeholder(render_cluster_config(cluster)):
        typer.echo(
            "note: the GPU image is not built yet, so eksctl/cluster.yaml names it by image name; "
            "`lbcloud cluster up` builds it and writes its id there"
        )


@app.command()
def plan(spec: SpecOption = DEFAULT_SPEC, out: OutOption = None) -> None:
    """Print the commands `cluster up` runs, in order, one line each on what it does, and the cost.

    Example:  lbcloud cluster plan --spec cluster.yaml
    """
    cluster = load_spec(spec)
    out_dir = _out_dir(cluster, out)
    typer.echo(f"`lbcloud cluster up` for {cluster.name} in {cluster.region} (files rendered into {out_dir}):")
    PlanPrinter(_echo).print(up_steps(cluster, out_dir))
    typer.echo("")
    for line in cost_lines(cluster):
        typer.echo(line)


@app.command()
def up(spec: SpecOption = DEFAULT_SPEC, out: OutOption = None, dry_run: DryRunOption = False) -> None:
    """Create or update everything: GPU image, cluster, add-ons, lbcloud. Safe to re-run after a failure.

    Steps already done are skipped. Example:  lbcloud cluster up --spec cluster.yaml
    """
    cluster = load_spec(spec)
    out_dir = _out_dir(cluster, out)
    steps = up_steps(cluster, out_dir)
    if not dry_run:
        secret_values(cluster, os.environ)  # fail before anything runs when a secret is missing
        # the image-id step writes the GPU image's id into eksctl/cluster.yaml before eksctl reads it
        write_files(render_all(cluster), out_dir)
        typer.echo(f"rendered files into {out_dir}")
    execute(steps, _runner(dry_run), _echo, dry_run=dry_run)
    if not dry_run:
        typer.echo(f"cluster {cluster.name} is up; check it with: lbcloud cluster doctor --spec {spec}")


@app.command()
def down(
    spec: SpecOption = DEFAULT_SPEC,
    dry_run: DryRunOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete lbcloud, every evaluation and the EKS cluster (the GPU image and S3 data are kept).

    Example:  lbcloud cluster down --spec cluster.yaml
    """
    cluster = load_spec(spec)
    steps = down_steps(cluster)
    question = f"Delete the cluster {cluster.name} in {cluster.region} and everything on it?"
    if not dry_run and not yes and not typer.confirm(question):
        raise typer.Abort()
    execute(steps, _runner(dry_run), _echo, dry_run=dry_run)
    if not dry_run:
        typer.echo(f"cluster {cluster.name} deleted")


_MARK = {Status.OK: "ok  ", Status.WARN: "warn", Status.FAIL: "FAIL"}


def _report(finding: Finding) -> None:
    typer.echo(f"  [{_MARK[finding.status]}] {finding.check}: {finding.detail}")


@app.command()
def doctor(
    spec: SpecOption = DEFAULT_SPEC,
    gpu_smoke: Annotated[
        str | None, typer.Option("--gpu-smoke", metavar="POOL", help="Also run a pod with one GPU of POOL.")
    ] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Check the kubectl context, nodes, GPUs, device plugin, autoscaler and lbcloud's health.

    Exits 1 when a check fails. Example:  lbcloud cluster doctor --gpu-smoke g5-xlarge
    """
    cluster = load_spec(spec)
    if dry_run:
        typer.echo("`lbcloud cluster doctor` would run:")
        run_doctor(cluster, PrintOnlyRunner(_echo), gpu_smoke_pool=gpu_smoke)
        return
    findings = run_doctor(cluster, _runner(False), gpu_smoke_pool=gpu_smoke, report=_report)
    failed = [f for f in findings if f.status is Status.FAIL]
    if failed:
        raise DoctorFoundProblems(
            f"cluster doctor found {len(failed)} problem(s): {', '.join(f.check for f in failed)} (see above)"
        )
    typer.echo("doctor: all checks passed")
