"""`lbcloud k8s` commands: inspect what the Kubernetes backend creates, and the in-pod prepare step."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml

from lbcloud.adapters.backends.kubernetes.manifests import KubernetesConfig, render_attempt, render_network_policy
from lbcloud.domain.errors import InputError
from lbcloud.domain.results.routes import only_route, parse_route_file
from lbcloud.domain.submissions import AgentKind, AgentRef
from lbcloud.domain.tracks import Track
from lbcloud.entrypoints.cli.context import cli_state
from lbcloud.services.ports import AttemptSpec
from lbcloud.settings import load_settings

app = typer.Typer(
    help="Kubernetes backend: render an attempt's Job and NetworkPolicy for inspection.\n\n"
    "Example:  lbcloud k8s render-attempt --track sumo-test --route 0",
    no_args_is_help=True,
)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def manifests_yaml(objects: list[dict[str, Any]]) -> str:
    """Objects as one multi-document YAML stream (no anchors, keys in the order they were built)."""
    return yaml.dump_all(objects, Dumper=_NoAliases, sort_keys=False, default_flow_style=False)


def _route_budget(track: Track, route: str) -> float:
    """The attempt budget for ``route`` when the route file is readable here, else the base budget."""
    try:
        routes = parse_route_file(Path(track.routes_file).read_bytes(), track.routes_file)
    except (OSError, InputError):
        return track.attempt_budget_s(0.0)
    for definition in routes.routes:
        if definition.route_id == route:
            return track.attempt_budget_s(definition.length_3d)
    raise InputError(f"route {route!r} is not in {track.routes_file} (routes: {', '.join(routes.route_ids)})")


@app.command("render-attempt")
def render_attempt_command(
    ctx: typer.Context,
    track: Annotated[str, typer.Option("--track", help="Track name (see settings).")],
    route: Annotated[str, typer.Option("--route", help="Route id in the track's route file.")],
    submission: Annotated[int, typer.Option("--submission", help="Submission id for names and labels.")] = 1,
    attempt: Annotated[int, typer.Option("--attempt", help="Attempt id for names and labels.")] = 1,
    agent_image: Annotated[str, typer.Option("--agent-image", help="The participant's image.")] = (
        "registry.example.org/team/agent:latest"
    ),
    team: Annotated[str, typer.Option("--team", help="Team name (label value is sanitised).")] = "example-team",
    repetition: Annotated[int, typer.Option("--repetition", help="Repetition index.")] = 0,
    compat: Annotated[
        str, typer.Option("--compat", help="'current' (native sidecars, podFailurePolicy) or '1.20'.")
    ] = "current",
) -> None:
    """Print the Job (and DRA claim template) of one attempt and the namespace's NetworkPolicy as YAML."""
    if compat not in ("current", "1.20"):
        raise InputError(f"--compat must be 'current' or '1.20', not {compat!r}")
    settings = load_settings(cli_state(ctx).config_path)
    chosen = settings.track(track)
    mode: Literal["current", "1.20"] = "1.20" if compat == "1.20" else "current"
    config = KubernetesConfig.from_settings(settings.kubernetes, compat=mode)
    spec = AttemptSpec(
        attempt_id=attempt,
        attempt_number=1,
        submission_id=submission,
        task_id=0,
        team=team,
        track=chosen,
        agent=AgentRef(AgentKind.IMAGE, agent_image),
        route_id=route,
        repetition=repetition,
        budget_s=_route_budget(chosen, route),
        token="<attempt token>",
        seed=chosen.seed,
    )
    objects = [*render_attempt(spec, config).all(), render_network_policy(config)]
    typer.echo(manifests_yaml(objects), nl=False)


@app.command("prepare-contents")
def prepare_contents_command(
    staging: Annotated[Path, typer.Option("--staging", help="What the contents image copied.")],
    contents: Annotated[Path, typer.Option("--contents", help="The folder the agent container sees.")],
    routes_file: Annotated[str, typer.Option("--routes-file", help="Route file path inside the folders.")],
    only_route_id: Annotated[
        str | None, typer.Option("--only-route", help="Keep only this route in the route file.")
    ] = None,
) -> None:
    """In-pod init step: copy the track's contents, cutting the route file to the attempt's route."""
    if not staging.is_dir():
        raise InputError(f"{staging}: the contents image copied nothing (no such folder)")
    contents.mkdir(parents=True, exist_ok=True)
    # entry by entry: copying onto ``contents`` itself would also copy the staging folder's mode and
    # times onto it, which a non-root container may not do to the emptyDir (it belongs to root)
    for entry in staging.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, contents / entry.name, dirs_exist_ok=True, symlinks=True)
        else:
            shutil.copy2(entry, contents / entry.name, follow_symlinks=False)
    target = contents / routes_file
    if not target.is_file():
        raise InputError(f"{routes_file}: not found in the track's contents")
    if only_route_id is not None:
        target.write_bytes(only_route(target.read_bytes(), only_route_id, routes_file))
