"""Top-level control-plane commands: serve, submit, status, cancel, resume, logs, leaderboard, demo."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the control-plane commands to the root app."""
