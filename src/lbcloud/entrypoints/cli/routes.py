"""`lbcloud routes` commands: inspect a route file and split its routes over workers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lbcloud.domain.errors import InputError
from lbcloud.domain.results.routes import (
    RouteFile,
    parse_route_file,
    reference_split,
    select_routes,
    select_subset,
    split_routes,
    subset_expression,
)

app = typer.Typer(
    help="Inspect leaderboard route files (2.x and 1.0) and split their routes over workers.\n\n"
    "Example:  lbcloud routes split routes_validation.xml --workers 3",
    no_args_is_help=True,
)


def load_route_file(path: Path) -> RouteFile:
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a route file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read: {err.strerror or err}") from None
    return parse_route_file(data, str(path))


@app.command("info")
def info(
    file: Annotated[Path, typer.Argument(help="Route XML file.", show_default=False)],
    subset: Annotated[str, typer.Option("--subset", help="Only these routes (--routes-subset syntax).")] = "",
) -> None:
    """List the routes of a file: id, town, keypoints, length along the keypoints and scenarios.

    Example:  lbcloud routes info routes_validation.xml --subset 0-4
    """
    route_file = load_route_file(file)
    routes = select_routes(route_file, subset)
    table = Table(title=f"{file} (Leaderboard {route_file.format.value}, {len(route_file.routes)} routes)")
    for column in ("id", "town", "keypoints", "length 3-D (m)", "length 2-D (m)", "scenarios"):
        table.add_column(column, justify="left" if column in ("id", "town") else "right")
    total = 0.0
    for route in routes:
        total += route.length_3d
        table.add_row(
            route.route_id,
            route.town,
            str(len(route.keypoints)),
            f"{route.length_3d:.3f}",
            f"{route.length_2d:.3f}",
            str(route.scenario_count),
        )
    console = Console()
    console.print(table)
    console.print(f"{len(routes)} routes, {total / 1000:.3f} km along the keypoints")


@app.command("split")
def split(
    file: Annotated[Path, typer.Argument(help="Route XML file.", show_default=False)],
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Number of workers.")],
    subset: Annotated[str, typer.Option("--subset", help="Split only these routes.")] = "",
    reference: Annotated[
        bool, typer.Option("--reference", help="Also show the reference deployment's float rule and where it differs.")
    ] = False,
) -> None:
    """Split the routes over workers with the integer rule; print each worker's --routes-subset.

    One line per worker: ``partial_agent_results<k>.json <subset> (<n> routes)``.

    Example:  lbcloud routes split routes_validation.xml --workers 3
    """
    route_file = load_route_file(file)
    ids = select_subset(route_file.route_ids, subset, route_file.format)
    if not ids:
        raise InputError(f"{file}: no routes to split")
    shares = split_routes(ids, workers)
    for k, share in enumerate(shares, start=1):
        typer.echo(f"partial_agent_results{k}.json {subset_expression(share, ids)} ({len(share)} routes)")
    if reference:
        for k, (start, end) in enumerate(reference_split(len(ids), workers), start=1):
            ours = shares[k - 1]
            theirs = f"{start}-{end}" if start != end else str(start)
            if end >= len(ids):
                note = f"ends at position {end}, past the last route: that worker would fail"
            elif (ids[start], ids[end]) != (ours[0], ours[-1]):
                note = "differs"
            else:
                note = "same"
            typer.echo(f"reference worker {k}: positions {theirs} ({note})")
