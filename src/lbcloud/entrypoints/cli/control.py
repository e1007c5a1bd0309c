"""Top-level control-plane commands: serve, dispatch, submit, status, cancel, resume, logs, leaderboard, db."""

from __future__ import annotations

import signal
import threading
import time
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.live import Live

from lbcloud.domain.artifact_keys import LogStream, attempt_log_key
from lbcloud.domain.errors import ConfigError, InputError, NotFound
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SourceKind
from lbcloud.entrypoints.cli.context import cli_state
from lbcloud.entrypoints.cli.views import leaderboard_table, routes_table, submissions_table
from lbcloud.entrypoints.wiring import System, build_system
from lbcloud.services.control import cancel_submission, rerun_submission, resume_submission
from lbcloud.settings import Settings, load_settings

console = Console(width=None if Console().is_terminal else 150)


def _settings(ctx: typer.Context) -> Settings:
    return load_settings(cli_state(ctx).config_path)


def _system(ctx: typer.Context) -> System:
    return build_system(_settings(ctx))


def serve(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="all: API + pages + dispatcher; web: API + pages; dispatcher.")] = "all",
    host: Annotated[str | None, typer.Option(help="Listen address (default from settings: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default from settings: 8080).")] = None,
) -> None:
    """Run lbcloud: the HTTP API and web pages, and the dispatcher.

    Example:  lbcloud serve --port 8080
    """
    if role not in ("all", "web", "dispatcher"):
        raise InputError(f"--role must be all, web or dispatcher, not {role!r}")
    import uvicorn

    from lbcloud.adapters.metrics import PrometheusMetrics
    from lbcloud.entrypoints.web.app import create_app

    settings = _settings(ctx)
    bind = host or settings.web.host
    if bind not in ("127.0.0.1", "localhost", "::1") and not settings.web.operator_token:
        raise ConfigError(
            f"refusing to serve on {bind} without web.operator_token (LBCLOUD_WEB__OPERATOR_TOKEN): "
            "with no tokens every caller would be the operator"
        )
    from lbcloud.entrypoints.startup_checks import check_listen_address

    check_listen_address(bind, port or settings.web.port)
    metrics = PrometheusMetrics()
    system = build_system(settings, metrics=metrics)
    _install_integrations(system)
    stop = threading.Event()
    worker: threading.Thread | None = None
    if role in ("all", "dispatcher"):
        dispatcher = system.dispatcher()
        worker = threading.Thread(
            target=dispatcher.run, args=(stop, settings.dispatcher.tick_s), name="dispatcher", daemon=True
        )
        worker.start()
    typed_role: Literal["all", "web", "dispatcher"] = role  # type: ignore[assignment]
    app = create_app(system, role=typed_role)
    try:
        uvicorn.run(app, host=bind, port=port or settings.web.port, log_level="warning")
    finally:
        stop.set()
        if worker is not None:
            worker.join(timeout=10)
        system.close()


def dispatch(ctx: typer.Context) -> None:
    """Run only the dispatcher loop (no HTTP server) until interrupted.

    Example:  lbcloud dispatch
    """
    system = _system(ctx)
    _install_integrations(system)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"dispatcher {system.owner} running (backend {system.settings.backend}); Ctrl-C to stop")
    try:
        system.dispatcher().run(stop, system.settings.dispatcher.tick_s)
    except KeyboardInterrupt:
        pass
    finally:
        system.close()


def _install_integrations(system: System) -> None:
    """Wire EvalAI / SQS sources and sinks when settings enable them."""
    settings = system.settings
    if settings.evalai.enabled or settings.sqs.enabled:
        from lbcloud.entrypoints.integrations import integrations

        system.extras["integrations"] = integrations


def submit(
    ctx: typer.Context,
    track: Annotated[str, typer.Option(help="Track name, e.g. sumo-test.")],
    team: Annotated[str, typer.Option(help="Team name (letters, digits, space, . _ -).")],
    agent: Annotated[str | None, typer.Option(help="Local agent: path/to/agent.py[:Class].")] = None,
    image: Annotated[str | None, typer.Option(help="Agent container image (Kubernetes backend).")] = None,
    agent_config: Annotated[str | None, typer.Option(help="File passed to the agent's setup().")] = None,
    method: Annotated[str | None, typer.Option(help="Method name shown on the leaderboard.")] = None,
) -> None:
    """Submit an agent to a track (a running `lbcloud serve` or `lbcloud dispatch` evaluates it).

    Example:  lbcloud submit --track sumo-test --team alpha --agent examples/agents/competent.py
    """
    if (agent is None) == (image is None):
        raise InputError("give exactly one of --agent (a local path) or --image (a container image)")
    ref = AgentRef(AgentKind.LOCAL, agent) if agent else AgentRef(AgentKind.IMAGE, image or "")
    if agent_config:
        ref = AgentRef(ref.kind, ref.ref, config=agent_config)
    system = _system(ctx)
    submission, _ = system.intake.submit(
        NewSubmission(team=team, track=track, agent=ref, source=SourceKind.LOCAL, method_name=method)
    )
    console.print(
        f"submission [bold]{submission.id}[/] recorded for team {submission.team} on {submission.track} "
        f"({submission.status.value}); follow it with: lbcloud status {submission.id} --watch"
    )


def status(
    ctx: typer.Context,
    submission_id: Annotated[int | None, typer.Argument(help="A submission id; omit for all.")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Live view until it (or all) settle.")] = False,
    limit: Annotated[int, typer.Option(help="Newest N submissions.")] = 30,
) -> None:
    """Show submissions, or one submission's routes, attempts and blame.

    Example:  lbcloud status 3 --watch
    """
    system = _system(ctx)
    store = system.store

    def render() -> object:
        if submission_id is None:
            return submissions_table(store, store.list_submissions(limit=limit))
        sub = store.get_submission(submission_id)
        from rich.console import Group

        return Group(
            submissions_table(store, [sub], title=f"Submission {sub.id}"),
            routes_table(store.route_tasks(sub.id), store.attempts(submission_id=sub.id)),
        )

    if not watch:
        console.print(render())
        return
    with Live(render(), console=console, refresh_per_second=2) as live:  # type: ignore[arg-type]
        while True:
            time.sleep(0.5)
            live.update(render())  # type: ignore[arg-type]
            subs = [store.get_submission(submission_id)] if submission_id else store.list_submissions(limit=limit)
            if all(s.status.terminal for s in subs):
                break


def cancel(
    ctx: typer.Context,
    submission_id: Annotated[int, typer.Argument(help="Submission id.")],
    reason: Annotated[str, typer.Option(help="Why (shown to the team).")] = "cancelled by an operator",
) -> None:
    """Cancel a submission: its attempts are stopped, records already done are kept.

    Example:  lbcloud cancel 7
    """
    sub = cancel_submission(_system(ctx).store, submission_id, reason)
    console.print(f"submission {sub.id} is {sub.status.value}")


def resume(
    ctx: typer.Context,
    submission_id: Annotated[int, typer.Argument(help="Submission id.")],
) -> None:
    """Resume a failed or cancelled submission: done routes are kept, the others run again.

    Example:  lbcloud resume 7
    """
    sub = resume_submission(_system(ctx).store, submission_id)
    console.print(f"submission {sub.id} is {sub.status.value}")


def rerun(
    ctx: typer.Context,
    submission_id: Annotated[int, typer.Argument(help="Submission id.")],
) -> None:
    """Evaluate a submission's agent again from scratch as a new submission (an active original is cancelled).

    Example:  lbcloud rerun 7
    """
    new = rerun_submission(_system(ctx).store, submission_id)
    console.print(f"submission {submission_id} re-run as submission {new.id} ({new.status.value})")


def logs(
    ctx: typer.Context,
    submission_id: Annotated[int, typer.Argument(help="Submission id.")],
    route: Annotated[str | None, typer.Option(help="Only this route id.")] = None,
    stream: Annotated[str, typer.Option(help="agent, simulator or lbcloud.")] = "agent",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing as the log grows.")] = False,
) -> None:
    """Print the logs of a submission's attempts (the latest attempt per route).

    Example:  lbcloud logs 3 --route 0 --stream agent --follow
    """
    try:
        log_stream = LogStream(stream)
    except ValueError:
        raise InputError(f"--stream must be agent, simulator or lbcloud, not {stream!r}") from None
    system = _system(ctx)
    store, artifacts = system.store, system.artifacts
    store.get_submission(submission_id)
    tasks = {t.id: t for t in store.route_tasks(submission_id)}
    if route is not None and not any(t.route_id == route for t in tasks.values()):
        raise NotFound(f"submission {submission_id} has no route {route!r}")
    printed: dict[int, int] = {}
    while True:
        attempts = [
            a
            for a in store.attempts(submission_id=submission_id)
            if route is None or tasks[a.task_id].route_id == route
        ]
        for attempt in attempts:
            key = attempt_log_key(submission_id, attempt.id, log_stream)
            try:
                data = artifacts.get(key)
            except NotFound:
                continue
            offset = printed.get(attempt.id, 0)
            if offset == 0 and data:
                console.rule(f"route {tasks[attempt.task_id].route_id} — attempt {attempt.number} ({log_stream.value})")
            if len(data) > offset:
                console.out(data[offset:].decode("utf-8", "replace"), end="", highlight=False)
                printed[attempt.id] = len(data)
        if not follow:
            return
        sub = store.get_submission(submission_id)
        if sub.status.terminal and not store.live_attempts():
            return
        time.sleep(1.0)


def leaderboard(
    ctx: typer.Context,
    track: Annotated[str | None, typer.Option(help="Track name (default: every track).")] = None,
) -> None:
    """Show the leaderboard (finished submissions, best driving score first).

    Example:  lbcloud leaderboard --track sumo-test
    """
    system = _system(ctx)
    names = [track] if track else sorted(system.tracks)
    for name in names:
        if name not in system.tracks:
            raise InputError(f"unknown track {name!r}")
        console.print(leaderboard_table(name, system.store.leaderboard(name)))


db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the state store's migrations (also done automatically on start).

    Example:  LBCLOUD_DATABASE_URL=postgresql://lbcloud@db/lbcloud lbcloud db upgrade
    """
    from lbcloud.adapters.store.engine import migrate

    settings = _settings(ctx)
    migrate(settings.effective_database_url)
    console.print("database is at the latest revision")


def register(app: typer.Typer) -> None:
    """Add the control-plane commands to the root app."""
    from lbcloud.entrypoints.cli.demo import demo

    app.command()(demo)
    app.command()(serve)
    app.command()(dispatch)
    app.command()(submit)
    app.command()(status)
    app.command()(cancel)
    app.command()(resume)
    app.command()(rerun)
    app.command()(logs)
    app.command()(leaderboard)
    app.add_typer(db_app, name="db")
