"""State shared by every CLI command (settings path, debug flag)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer


@dataclass(frozen=True, slots=True)
class CliState:
    config_path: Path | None
    debug: bool
    local: bool = False


def cli_state(ctx: typer.Context) -> CliState:
    """The root callback's state (a default one when a group is invoked directly in tests)."""
    root = ctx.find_root()
    obj = root.obj
    if isinstance(obj, CliState):
        return obj
    return CliState(config_path=None, debug=False)
