"""`lbcloud routes` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="routes commands.", no_args_is_help=True)
