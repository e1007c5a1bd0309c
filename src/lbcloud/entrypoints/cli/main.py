"""The one ``lbcloud`` command.

Each command group lives in its own module and exposes ``app``; this module wires them together,
sets up logging and turns every :class:`~lbcloud.domain.errors.LbcloudError` into one clear line on
stderr and its documented exit code (tracebacks only with ``--debug``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lbcloud import __version__
from lbcloud.domain.errors import LbcloudError
from lbcloud.entrypoints.cli import cluster, control, k8s, results, routes, track
from lbcloud.entrypoints.cli.context import CliState
from lbcloud.logs import configure_logging

EXIT_UNEXPECTED = 70

app = typer.Typer(
    name="lbcloud",
    help="Evaluate autonomous-driving agents on leaderboard routes, score them exactly as the official "
    "leaderboard does, and publish the results.\n\nStart with:  lbcloud demo",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(results.app, name="results")
app.add_typer(routes.app, name="routes")
app.add_typer(track.app, name="track")
app.add_typer(k8s.app, name="k8s")
app.add_typer(cluster.app, name="cluster")
control.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lbcloud {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Settings file (YAML). Default: $LBCLOUD_CONFIG or ./lbcloud.yaml."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Write logs as JSON lines.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    configure_logging("debug" if debug else "warning", json_lines=json_logs)
    ctx.obj = CliState(config_path=config, debug=debug)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map project errors to one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, standalone_mode=False)
    except LbcloudError as err:
        if debug:
            raise
        typer.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as err:  # the CLI's last line of defence: one line unless --debug
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(err.exit_code)
        if debug:
            raise
        typer.echo(f"error: unexpected {type(err).__name__}: {err} (run with --debug for details)", err=True)
        sys.exit(EXIT_UNEXPECTED)


if __name__ == "__main__":
    main()
