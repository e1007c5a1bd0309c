"""Top-level control-plane commands: serve, dispatch and db here; the submission commands are in
:mod:`lbcloud.entrypoints.cli.participant`."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Literal

import typer
from rich.console import Console

from lbcloud.domain.errors import ConfigError, InputError
from lbcloud.entrypoints.cli.context import cli_state
from lbcloud.entrypoints.wiring import System, build_system
from lbcloud.settings import Settings, load_settings

console = Console()


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
    listen_port = port or settings.web.port
    shown = f"[{bind}]" if ":" in bind else bind
    console.print(f"lbcloud {role}: listening on http://{shown}:{listen_port} (Ctrl-C to stop)", highlight=False)
    try:
        uvicorn.run(app, host=bind, port=listen_port, log_level="warning")
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
    from lbcloud.entrypoints.cli.participant import (
        cancel,
        leaderboard,
        login,
        logout,
        logs,
        rerun,
        resume,
        status,
        submit,
        tracks,
    )

    app.command()(demo)
    app.command()(login)
    app.command()(logout)
    app.command()(tracks)
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
