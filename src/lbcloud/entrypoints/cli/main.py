"""The one ``lbcloud`` command.

Each command group lives in its own module and exposes ``app``; this module wires them together,
sets up logging and turns every :class:`~lbcloud.domain.errors.LbcloudError` into one clear line on
stderr and its documented exit code (tracebacks only with ``--debug``).
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from lbcloud import __version__
from lbcloud.domain.errors import LbcloudError
from lbcloud.entrypoints.cli.context import CliState
from lbcloud.logs import configure_logging

EXIT_UNEXPECTED = 70

# command groups by name; each module exposes ``app``. Only the group a command line names is
# imported, so `lbcloud track sumo simulator` (started for every attempt) starts quickly.
GROUPS = {
    "results": "lbcloud.entrypoints.cli.results",
    "routes": "lbcloud.entrypoints.cli.routes",
    "track": "lbcloud.entrypoints.cli.track",
    "k8s": "lbcloud.entrypoints.cli.k8s",
    "cluster": "lbcloud.entrypoints.cli.cluster",
}
GLOBAL_OPTIONS_WITH_VALUE = {"--config", "-c"}


def build_app(only: str | None = None) -> typer.Typer:
    """The root app with every group, or only the group ``only`` (a key of :data:`GROUPS`)."""
    root = typer.Typer(
        name="lbcloud",
        help="Evaluate autonomous-driving agents on leaderboard routes, score them exactly as the official "
        "leaderboard does, and publish the results.\n\nStart with:  lbcloud demo",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    root.callback()(_root)
    for name, module in GROUPS.items():
        if only is None or only == name:
            root.add_typer(importlib.import_module(module).app, name=name)
    if only is None or only == "reporter":
        from lbcloud.entrypoints.reporter import reporter_command

        root.command("reporter", hidden=True)(reporter_command)
    if only is None:
        from lbcloud.entrypoints.cli import control

        control.register(root)
    return root


def _command_name(args: list[str]) -> str | None:
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in GLOBAL_OPTIONS_WITH_VALUE:
            skip = True
            continue
        if not arg.startswith("-"):
            return arg
    return None


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        return build_app()
    raise AttributeError(name)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lbcloud {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Settings file (YAML). Default: $LBCLOUD_CONFIG or ./lbcloud.yaml."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.", metavar="")] = False,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Write logs as JSON lines.", metavar="")] = False,
    local: Annotated[
        bool,
        typer.Option("--local", help="Use this machine's settings even after `lbcloud login`.", metavar=""),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.", metavar="")
    ] = False,
) -> None:
    configure_logging("debug" if debug else "warning", json_lines=json_logs)
    if debug:  # debug logs are lbcloud's; the migration tool's chatter stays at warnings
        logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = CliState(config_path=config, debug=debug, local=local)


def _is_click_error(err: BaseException) -> bool:
    """Whether ``err`` is click's own (``UsageError``, ``BadParameter``…) in whichever copy of click
    typer uses (it may vendor one, so ``isinstance`` against ``click`` is not enough)."""
    return any(cls.__name__ == "ClickException" for cls in type(err).__mro__) and hasattr(err, "show")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map project errors to one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    command = _command_name(args)
    app = build_app(command if command in GROUPS or command == "reporter" else None)
    try:
        # without standalone mode click returns (rather than raises) the code of a typer.Exit
        code = app(args=args, prog_name="lbcloud", standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
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
        if _is_click_error(err):
            # a usage error (unknown option or command, bad or missing value): click's usage text, exit 2
            err.show()  # type: ignore[attr-defined]
            sys.exit(int(err.exit_code))  # type: ignore[attr-defined]
        if debug:
            raise
        typer.echo(f"error: unexpected {type(err).__name__}: {err} (run with --debug for details)", err=True)
        sys.exit(EXIT_UNEXPECTED)


if __name__ == "__main__":
    main()
