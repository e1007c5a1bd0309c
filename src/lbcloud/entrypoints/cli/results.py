"""`lbcloud results` commands: merge, re-score, convert for EvalAI and show leaderboard result files.

Reading and writing files happens here; everything else is the pure results engine in
``lbcloud.domain.results``. Errors are project errors (``ResultFileError`` exit 3, ``MergeRefused``
exit 4, ``InputError`` exit 2) that the root command prints as one line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lbcloud.domain.errors import InputError, ResultFileError
from lbcloud.domain.results.evalai_format import dumps_evalai_results, stdout_summary
from lbcloud.domain.results.merge import ExpectedInstances, MergeInput, merge_results
from lbcloud.domain.results.model import ResultFormat, ResultsFile
from lbcloud.domain.results.reader import ROOT, parse_results
from lbcloud.domain.results.routes import parse_route_file, select_subset, split_routes
from lbcloud.domain.results.statistics import rescore_results
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.tracks import ScorerVersion

MAX_RESULT_BYTES = 1 << 30
"""Result files above 1 GiB are refused (100,000 records take about 150 MB)."""

app = typer.Typer(
    help="Merge, re-score, convert and show CARLA Leaderboard result files (1.0, 2.0, 2.1).\n\n"
    "Example:  lbcloud results merge partial_agent_results*.json -o agent_results.json --expected 10",
    no_args_is_help=True,
)


def read_result_bytes(path: Path) -> bytes:
    """The bytes of a result file; ``ResultFileError`` for a directory, a missing or a huge file."""
    name = str(path)
    if path.is_dir():
        raise ResultFileError(name, ROOT, "is a directory, not a result file")
    try:
        size = path.stat().st_size
        if size > MAX_RESULT_BYTES:
            raise ResultFileError(name, ROOT, f"is {size} bytes, more than the {MAX_RESULT_BYTES} bytes accepted")
        return path.read_bytes()
    except FileNotFoundError:
        raise ResultFileError(name, ROOT, "no such file") from None
    except OSError as err:
        raise ResultFileError(name, ROOT, f"cannot be read: {err.strerror or err}") from None


def load_results(path: Path, fmt: ResultFormat | None = None) -> ResultsFile:
    return parse_results(read_result_bytes(path), str(path), fmt)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file name for the output")
    if not folder.is_dir():
        raise InputError(f"{path}: the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def _expected(
    expected_routes: Path | None,
    subset: str,
    expected: int | None,
    repetitions: int,
    workers: int | None,
    fmt_hint: ResultFormat,
) -> ExpectedInstances | None:
    if expected_routes is not None and expected is not None:
        raise InputError("give either --expected-routes or --expected, not both")
    if expected_routes is not None:
        try:
            data = expected_routes.read_bytes()
        except OSError as err:
            raise InputError(f"{expected_routes}: cannot be read: {err.strerror or err}") from None
        route_file = parse_route_file(data, str(expected_routes))
        ids = select_subset(route_file.route_ids, subset, route_file.format)
        fmt = route_file.format
    elif expected is not None:
        if expected < 1:
            raise InputError(f"--expected must be at least 1, got {expected}")
        ids = tuple(str(i) for i in range(expected))
        fmt = fmt_hint
    else:
        if subset:
            raise InputError("--subset needs --expected-routes")
        return None
    owners: dict[str, str] = {}
    if workers is not None:
        for k, share in enumerate(split_routes(ids, workers), start=1):
            owners.update(dict.fromkeys(share, f"partial_agent_results{k}.json"))
    return ExpectedInstances.for_routes(ids, repetitions, fmt, owners)


@app.command("merge")
def merge(
    inputs: Annotated[list[Path], typer.Argument(help="Partial result files, in worker order.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Merged file to write (atomically).")],
    expected_routes: Annotated[
        Path | None, typer.Option("--expected-routes", help="Route XML file giving the expected instances.")
    ] = None,
    subset: Annotated[str, typer.Option("--subset", help="--routes-subset of the run (with --expected-routes).")] = "",
    expected: Annotated[
        int | None, typer.Option("--expected", help="Expect route ids 0..N-1 (instead of a route file).")
    ] = None,
    repetitions: Annotated[int, typer.Option("--repetitions", min=1, help="Repetitions per route.")] = 1,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Workers of the split, to name the file of missing routes.")
    ] = None,
    allow_duplicates: Annotated[
        bool,
        typer.Option("--allow-duplicates", help="Keep the last record of a duplicated instance instead of refusing."),
    ] = False,
) -> None:
    """Merge partial result files into one, as the official merge does, with lbcloud's safety checks.

    Missing or empty inputs are skipped with a warning (a worker that has not written yet). With the
    expected instances (--expected-routes [--subset] or --expected), a missing worker keeps the
    result partial and is named. On refusal the output is left untouched.

    Example:  lbcloud results merge partial_agent_results1.json partial_agent_results2.json
    partial_agent_results3.json -o agent_results.json --expected 10 --workers 3
    """
    if expected_routes is not None and expected is not None:
        raise InputError("give either --expected-routes or --expected, not both")
    parsed: list[MergeInput] = []
    for path in inputs:
        if not path.is_dir() and (not path.exists() or path.stat().st_size == 0):
            _warn(f"{path}: {'missing' if not path.exists() else 'empty'}, skipped")
            continue
        parsed.append(MergeInput(path.name, load_results(path)))
    fmt_hint = parsed[0].results.format if parsed else ResultFormat.V2X
    expected_set = _expected(expected_routes, subset, expected, repetitions, workers, fmt_hint)
    outcome = merge_results(parsed, expected_set, allow_duplicates=allow_duplicates)
    for line in outcome.diagnostics:
        _warn(line)
    for line in outcome.messages:
        typer.echo(line, err=True)
    write_atomically(output, dumps_results(outcome.results).encode("utf-8"))
    done, total = outcome.results.done, outcome.results.total
    state = outcome.results.entry_status if outcome.complete else "partial"
    typer.echo(f"merged {done} records of {total} instances ({state}) -> {output}")


@app.command("score")
def score(
    file: Annotated[Path, typer.Argument(help="Result file to re-score.", show_default=False)],
    scorer: Annotated[ScorerVersion, typer.Option("--scorer", help="Scorer version to apply.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Re-score every route of a result file from its infraction messages under another scorer version.

    The global record (if any) is recomputed; statuses, entry status and messages are kept.

    Example:  lbcloud results score agent_results.json --scorer lb2.1 -o agent_results.lb21.json
    """
    text = dumps_results(rescore_results(load_results(file), scorer))
    if output is None:
        typer.echo(text)
    else:
        write_atomically(output, text.encode("utf-8"))
        typer.echo(f"re-scored {file} under {scorer.value} -> {output}", err=True)


@app.command("evalai")
def evalai(
    merged: Annotated[Path, typer.Argument(help="Merged result file (may not exist yet).", show_default=False)],
    output_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder for the three files.")],
    split: Annotated[str, typer.Option("--split", help="EvalAI split codename.")] = "leaderboard",
) -> None:
    """Write the EvalAI files of a merged result: results.json, stdout.txt and metadata.json.

    A missing or empty merged file gives the "no data yet" summary, zero accuracies and no metadata.

    Example:  lbcloud results evalai agent_results.json -o evalai/
    """
    results: ResultsFile | None = None
    raw: bytes | None = None
    if merged.is_dir() or (merged.exists() and merged.stat().st_size > 0):
        raw = read_result_bytes(merged)
        results = parse_results(raw, str(merged))
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = results if results is not None else ResultsFile(ResultFormat.V2X, (), (0, 0))
    write_atomically(output_dir / "results.json", dumps_evalai_results(payload, split).encode("utf-8"))
    write_atomically(output_dir / "stdout.txt", stdout_summary(results).encode("utf-8"))
    if raw is not None:
        write_atomically(output_dir / "metadata.json", raw)
    typer.echo(f"wrote {'3' if raw is not None else '2'} EvalAI files -> {output_dir}")


@app.command("show")
def show(file: Annotated[Path, typer.Argument(help="Result file to show.", show_default=False)]) -> None:
    """Show a result file as tables: the routes, then the global scores.

    Example:  lbcloud results show agent_results.json
    """
    results = load_results(file)
    console = Console()
    done, total = results.done, results.total
    console.print(
        f"[bold]{file}[/bold]  Leaderboard {results.format.value}  entry status: {results.entry_status or '-'}  "
        f"eligible: {results.eligible}  progress: {done}/{total}"
    )
    table = Table(title="Routes")
    for column in ("index", "route", "status", "RC", "IP", "DS", "infractions", "length (m)", "game (s)"):
        text = column in ("route", "status")
        table.add_column(column, justify="left" if text else "right", no_wrap=column == "route")
    for record in results.records:
        table.add_row(
            str(record.index),
            record.route_id,
            record.status,
            str(record.scores.score_route),
            str(record.scores.score_penalty),
            str(record.scores.score_composed),
            str(record.message_count()),
            str(record.meta.route_length),
            str(record.meta.duration_game),
        )
    console.print(table)
    global_record = results.global_record
    if global_record is None:
        console.print("No global record yet (partial result).")
        return
    summary = Table(title=f"Global record: {global_record.status}")
    summary.add_column("value")
    summary.add_column("mean", justify="right")
    for key in ("score_composed", "score_route", "score_penalty"):
        summary.add_row(key, str(getattr(global_record.scores_mean, key)))
    for key, value in global_record.infractions.items():
        summary.add_row(key, str(value))
    console.print(summary)
