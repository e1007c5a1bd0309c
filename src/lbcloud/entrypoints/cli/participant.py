"""The commands that read and change submissions: login, logout, tracks, submit, status, cancel,
resume, rerun, logs and leaderboard. Each works on this machine's settings, or through a server's
HTTP API after ``lbcloud login`` (see :mod:`lbcloud.entrypoints.cli.control_plane`)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live

from lbcloud.domain.artifact_keys import LogStream
from lbcloud.domain.errors import InputError, NotFound
from lbcloud.domain.submissions import AgentKind
from lbcloud.entrypoints.cli.context import cli_state
from lbcloud.entrypoints.cli.control_plane import (
    ControlPlane,
    LocalControlPlane,
    RemoteControlPlane,
    SubmitRequest,
)
from lbcloud.entrypoints.cli.output import Output, OutputOption, console_for, print_json
from lbcloud.entrypoints.cli.remote import (
    RemoteClient,
    RemoteLogin,
    forget_login,
    load_login,
    normalise_url,
    save_login,
)
from lbcloud.entrypoints.cli.views import (
    leaderboard_table,
    progress_view,
    route_view,
    submissions_table,
    tracks_table,
)
from lbcloud.entrypoints.web.route_detail import RouteDetailOut
from lbcloud.entrypoints.web.views import ProgressOut, SubmissionOut
from lbcloud.entrypoints.wiring import build_system
from lbcloud.settings import Settings, load_settings

console = Console()


def _settings(ctx: typer.Context) -> Settings:
    return load_settings(cli_state(ctx).config_path)


def _plane(ctx: typer.Context) -> ControlPlane:
    """The server of ``lbcloud login`` (or ``LBCLOUD_URL``) unless ``--local``; else this machine."""
    if not cli_state(ctx).local:
        login = load_login()
        if login is not None:
            return RemoteControlPlane(RemoteClient(login))
    return LocalControlPlane(build_system(_settings(ctx)))


def login(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The server, e.g. https://leaderboard.example.org")],
    token: Annotated[
        str | None, typer.Option(help="Your team's (or the operator's) token. Default: $LBCLOUD_TOKEN, else asked.")
    ] = None,
) -> None:
    """Use a server from now on: every read, submit, cancel, resume and logs command goes through its API.

    The URL and token are saved in your config folder (~/.config/lbcloud/login.json, readable only by
    you). `lbcloud logout` forgets them; `lbcloud --local ...` ignores them for one command.

    Example:  lbcloud login https://leaderboard.example.org --token "$TEAM_TOKEN"
    """
    import os

    base = normalise_url(url)
    secret = token or os.environ.get("LBCLOUD_TOKEN") or typer.prompt("token", hide_input=True, default="")
    client = RemoteClient(RemoteLogin(base, secret or None))
    try:
        client.get("/tracks")
        who = client.get("/whoami")
    finally:
        client.close()
    path = save_login(RemoteLogin(base, secret or None))
    console.print(f"logged in to {base} as {who.get('label', 'anonymous')}; saved in {path}")


def logout(ctx: typer.Context) -> None:
    """Forget the saved server and token (commands work on the local settings again).

    Example:  lbcloud logout
    """
    console.print("logged out" if forget_login() else "not logged in")


def tracks(ctx: typer.Context, output: OutputOption = Output.TABLE) -> None:
    """List the tracks you can submit to (scorer, simulator, repetitions, pool).

    Example:  lbcloud tracks --output json
    """
    plane = _plane(ctx)
    try:
        rows = plane.tracks()
    finally:
        plane.close()
    if output is Output.JSON:
        print_json(rows)
        return
    console_for(output).print(tracks_table(rows, wide=output is Output.WIDE))


def submit(
    ctx: typer.Context,
    track: Annotated[str, typer.Option(help="Track name, e.g. sumo-test (see: lbcloud tracks).")],
    team: Annotated[
        str | None, typer.Option(help="Team name (letters, digits, space, . _ -). With a team token: your team.")
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Local agent: path/to/agent.py[:Class].")] = None,
    image: Annotated[str | None, typer.Option(help="Agent container image (Docker or Kubernetes backend).")] = None,
    agent_config: Annotated[str | None, typer.Option(help="File passed to the agent's setup().")] = None,
    method: Annotated[str | None, typer.Option(help="Method name shown on the leaderboard.")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Submit an agent to a track (a running `lbcloud serve` or `lbcloud dispatch` evaluates it).

    Example:  lbcloud submit --track sumo-test --team alpha --agent examples/agents/competent.py
    """
    if (agent is None) == (image is None):
        raise InputError("give exactly one of --agent (a local path) or --image (a container image)")
    kind = AgentKind.LOCAL if agent else AgentKind.IMAGE
    request = SubmitRequest(
        track=track, team=team, agent=agent or image or "", kind=kind, agent_config=agent_config, method_name=method
    )
    plane = _plane(ctx)
    try:
        submission = plane.submit(request)
        url = plane.page_url(submission.id) or _local_url(ctx, submission.id)
    finally:
        plane.close()
    if output is Output.JSON:
        print_json({**submission.model_dump(mode="json"), "url": url})
        return
    console_for(output).print(
        f"submission [bold]{submission.id}[/] recorded for team {submission.team} on {submission.track} "
        f"({submission.state.word if submission.state else submission.status}).\n"
        f"Follow it: {url}\n       or: lbcloud status {submission.id} --watch",
        highlight=False,
    )


def _local_url(ctx: typer.Context, submission_id: int) -> str:
    web = _settings(ctx).web
    return f"http://{web.host}:{web.port}/submissions/{submission_id}"


def _instances(progress: ProgressOut, route: str) -> list[str]:
    wanted = [r.instance_id for r in progress.routes if route in (r.route_id, r.instance_id)]
    if not wanted:
        raise NotFound(f"submission {progress.submission.id} has no route {route!r}")
    return wanted


def status(
    ctx: typer.Context,
    submission_id: Annotated[int | None, typer.Argument(help="A submission id; omit for all.")] = None,
    route: Annotated[
        str | None, typer.Option(help="Show this route in detail: infractions, attempts, last error.")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Live view until it (or all) settle.", metavar="")
    ] = False,
    limit: Annotated[int, typer.Option(help="Newest N submissions.")] = 30,
    output: OutputOption = Output.TABLE,
) -> None:
    """Show submissions, one submission's routes, or one route in detail.

    Example:  lbcloud status 3 --watch      lbcloud status 3 --route 1      lbcloud status -o json
    """
    if route is not None and submission_id is None:
        raise InputError("--route needs a submission id: lbcloud status ID --route R")
    plane = _plane(ctx)
    wide = output is Output.WIDE
    console = console_for(output)

    def fetch() -> tuple[object, bool]:
        if submission_id is None:
            subs = plane.submissions(limit)
            return subs, all(s.terminal for s in subs)
        progress = plane.progress(submission_id)
        if route is not None:
            return [plane.route(submission_id, i) for i in _instances(progress, route)], progress.submission.terminal
        return progress, progress.submission.terminal

    def render(data: object) -> RenderableType:
        if isinstance(data, ProgressOut):
            return progress_view(data, wide=wide, url=plane.page_url(data.submission.id))
        if isinstance(data, list) and data and isinstance(data[0], RouteDetailOut):
            return Group(*(route_view(d, wide=wide) for d in data))
        return submissions_table(data, wide=wide)  # type: ignore[arg-type]

    try:
        data, settled = fetch()
        if output is Output.JSON:
            if watch:
                raise InputError("--watch shows a live table; use --output table or wide")
            print_json(data[0] if isinstance(data, list) and route is not None and len(data) == 1 else data)
            return
        if not watch or settled:
            console.print(render(data))
            return
        with Live(render(data), console=console, refresh_per_second=2) as live:
            while not settled:
                time.sleep(1.0)
                data, settled = fetch()
                live.update(render(data))
    finally:
        plane.close()


def cancel(
    ctx: typer.Context,
    submission_id: Annotated[int, typer.Argument(help="Submission id.")],
    reason: Annotated[str | None, typer.Option(help="Why (shown to the team).")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Cancel a submission: its attempts are stopped, records already done are kept.

    Example:  lbcloud cancel 7
    """
    plane = _plane(ctx)
    try:
        _done(plane.cancel(submission_id, reason), output)
    finally:
        plane.close()


def resume(
    ctx: typer.Context,
    submission_id: Annotated[int, typer.Argument(help="Submission id.")],
    output: OutputOption = Output.TABLE,
) -> None:
    """Resume a failed or cancelled submission: done routes are kept, the others run again.

    Example:  lbcloud resume 7
    """
    plane = _plane(ctx)
    try:
        _done(plane.resume(submission_id), output)
    finally:
        plane.close()


def rerun(
    ctx: typer.Context,
    submission_id: Annotated[int, typer.Argument(help="Submission id.")],
    output: OutputOption = Output.TABLE,
) -> None:
    """Evaluate a submission's agent again from scratch as a new submission (an active original is cancelled).

    Example:  lbcloud rerun 7
    """
    plane = _plane(ctx)
    try:
        new = plane.rerun(submission_id)
    finally:
        plane.close()
    if output is Output.JSON:
        print_json(new)
        return
    console_for(output).print(f"submission {submission_id} re-run as submission {new.id} ({new.status})")


def _done(sub: SubmissionOut, output: Output) -> None:
    if output is Output.JSON:
        print_json(sub)
        return
    word = sub.state.word if sub.state else sub.status
    detail = f": {sub.state.detail}" if sub.state else ""
    console_for(output).print(f"submission {sub.id} is {word}{detail}", highlight=False)


def logs(
    ctx: typer.Context,
    submission_id: Annotated[int, typer.Argument(help="Submission id.")],
    route: Annotated[str | None, typer.Option(help="Only this route id.")] = None,
    stream: Annotated[str, typer.Option(help="agent, simulator or lbcloud.")] = "agent",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing as the log grows.", metavar="")] = False,
) -> None:
    """Print the logs of a submission's attempts (every attempt, oldest first).

    Example:  lbcloud logs 3 --route 0 --stream agent --follow
    """
    try:
        log_stream = LogStream(stream)
    except ValueError:
        raise InputError(f"--stream must be agent, simulator or lbcloud, not {stream!r}") from None
    plane = _plane(ctx)
    console = console_for(Output.TABLE)
    offsets: dict[int, int] = {}
    finished: set[int] = set()
    try:
        progress = plane.progress(submission_id)
        routes = {r.instance_id: r.route_id for r in progress.routes}
        if route is not None and route not in routes.values() and route not in routes:
            raise NotFound(f"submission {submission_id} has no route {route!r}")
        while True:
            for attempt in progress.attempts:
                if attempt.id in finished or (
                    route is not None and route not in (attempt.route, routes.get(attempt.route))
                ):
                    continue
                chunk = plane.read_log(submission_id, attempt.id, log_stream.value, offsets.get(attempt.id, 0))
                title = (
                    f"route {routes.get(attempt.route, attempt.route)} — attempt {attempt.number} ({log_stream.value})"
                )
                if attempt.id not in offsets:
                    console.rule(title)
                    if chunk.complete and not chunk.text:
                        console.print(f"(the {log_stream.value} log of this attempt is empty)", style="dim")
                if chunk.text:
                    console.out(chunk.text, end="", highlight=False)
                offsets[attempt.id] = chunk.next_offset
                if chunk.complete:
                    finished.add(attempt.id)
            if not progress.attempts:
                console.print(f"submission {submission_id} has no attempt yet", style="dim")
            if not follow or (progress.submission.terminal and all(a.id in finished for a in progress.attempts)):
                return
            time.sleep(1.0)
            progress = plane.progress(submission_id)
    finally:
        plane.close()


def leaderboard(
    ctx: typer.Context,
    track: Annotated[str | None, typer.Option(help="Track name (default: every track).")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Show the leaderboard: one row per team (its best finished submission), ties share a rank.

    Example:  lbcloud leaderboard --track sumo-test --output wide
    """
    plane = _plane(ctx)
    try:
        names = [track] if track else sorted(t.name for t in plane.tracks())
        boards = [plane.leaderboard(name) for name in names]
    finally:
        plane.close()
    if output is Output.JSON:
        print_json(boards[0] if track else boards)
        return
    console = console_for(output)
    for board in boards:
        console.print(leaderboard_table(board, wide=output is Output.WIDE))
