"""`lbcloud track` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="track commands.", no_args_is_help=True)
