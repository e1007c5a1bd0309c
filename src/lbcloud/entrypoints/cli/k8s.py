"""`lbcloud k8s` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="k8s commands.", no_args_is_help=True)
