"""``--output json|table|wide``: one option for every command that shows data.

- ``table`` (default): fits the terminal (``COLUMNS`` when output is piped, else 80); long text is cut;
- ``wide``: every column, at full length, whatever the width;
- ``json``: the API's JSON for the same data (one document on stdout), for scripts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console

WIDE_COLUMNS = 400


class Output(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"


OutputOption = Annotated[
    Output,
    typer.Option(
        "--output", "-o", case_sensitive=False, help="table (fits the terminal), wide (every column) or json."
    ),
]


def console_for(output: Output) -> Console:
    """A console on stdout sized for ``output`` (``wide`` never cuts a column)."""
    if output is Output.WIDE:
        return Console(width=WIDE_COLUMNS)
    return Console()


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    """``value`` (models, lists of models, plain data) as one JSON document on stdout."""
    sys.stdout.write(json.dumps(_plain(value), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
