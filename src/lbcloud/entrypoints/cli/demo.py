"""``lbcloud demo``: the main job on embedded defaults, end to end, on one machine."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from lbcloud.domain.errors import InputError
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SourceKind
from lbcloud.entrypoints.cli.context import cli_state
from lbcloud.entrypoints.cli.views import failures_table, leaderboard_table, submissions_table
from lbcloud.entrypoints.web.leaderboard import build_leaderboard
from lbcloud.entrypoints.web.views import build_progress, submission_with_state
from lbcloud.entrypoints.wiring import build_system
from lbcloud.services.control import cancel_submission
from lbcloud.settings import load_settings

console = Console()

REPO_EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "agents"
TEAM_NAMES = {
    "competent": "Competent Cars",
    "reckless": "Reckless Racers",
    "slow": "Slow but Steady",
    "setup_fails": "Setup Stumblers",
    "crashes": "Crash Test Dummies",
    "hangs": "Hang Gliders",
}


def _agents(folder: Path) -> list[Path]:
    agents = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    if not agents:
        raise InputError(f"no sample agents (*.py) in {folder}")
    order = list(TEAM_NAMES)
    return sorted(agents, key=lambda p: order.index(p.stem) if p.stem in order else len(order))


def demo(
    ctx: typer.Context,
    track: Annotated[str, typer.Option(help="Track to evaluate on.")] = "sumo-test",
    data_dir: Annotated[Path, typer.Option(help="Fresh data folder (wiped first).")] = Path(".lbcloud/demo"),
    agents: Annotated[Path, typer.Option(help="Folder of sample agents.")] = REPO_EXAMPLES,
    slots: Annotated[int, typer.Option(help="Concurrent attempts (default: CPU count).")] = 0,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 1800.0,
) -> None:
    """Evaluate every sample agent on the SUMO track end to end and show the leaderboard.

    Uses the embedded defaults: SQLite and an artifact folder in DATA_DIR, the local backend (SUMO
    simulator + evaluator processes), the global scheduler with its smoke-route gate.

    Example:  lbcloud demo --track sumo-test
    """
    if not agents.is_dir():
        raise InputError(
            f"sample agents folder {agents} not found (run the demo from the repository, or pass --agents)"
        )
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    slot_count = slots or max(1, os.cpu_count() or 1)
    settings = load_settings(
        cli_state(ctx).config_path,
        data_dir=str(data_dir),
        backend="local",
        database_url=None,
        # the demo runs the operator's own sample agents: sandboxed where bubblewrap works, else as they are
        local={"slots": slot_count, "allow_unsandboxed_agents": True},
    )
    system = build_system(settings)
    store = system.store
    submitted = []
    for path in _agents(agents):
        team = TEAM_NAMES.get(path.stem, path.stem.replace("_", " ").title())
        sub, _ = system.intake.submit(
            NewSubmission(team=team, track=track, agent=AgentRef(AgentKind.LOCAL, str(path)), source=SourceKind.LOCAL)
        )
        submitted.append(sub.id)
    console.print(
        f"[bold]lbcloud demo[/]: {len(submitted)} sample agents submitted to [bold]{track}[/], "
        f"{slot_count} slot(s), data in {data_dir}"
    )
    dispatcher = system.dispatcher()
    started = time.monotonic()

    def view() -> Group:
        subs = [submission_with_state(store, store.get_submission(i)) for i in submitted]
        elapsed = Text(f"elapsed {time.monotonic() - started:.0f} s", style="dim")
        return Group(submissions_table(subs, title=f"Evaluating on {track}"), elapsed)

    finished = False
    try:
        with Live(view(), console=console, refresh_per_second=2, transient=False) as live:
            last = 0.0

            def on_tick(_: object) -> None:
                nonlocal last
                if time.monotonic() - last > 0.5:
                    live.update(view())
                    last = time.monotonic()

            finished = dispatcher.run_until_idle(tick_s=0.1, timeout_s=timeout, on_tick=on_tick)
            live.update(view())
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: cancelling the demo's submissions[/]")
    finally:
        if not finished:
            for sub_id in submitted:
                if not store.get_submission(sub_id).status.terminal:
                    cancel_submission(store, sub_id, "demo interrupted")
            deadline = time.monotonic() + 5
            while store.live_attempts() and time.monotonic() < deadline:
                dispatcher.tick()
                time.sleep(0.1)
        system.close()
    wall = time.monotonic() - started
    console.print(
        leaderboard_table(build_leaderboard(store, track, settings.web.team_profiles, settings.web.baseline_teams))
    )
    failures = failures_table([build_progress(system, store.get_submission(i)) for i in submitted])
    if failures is not None:
        console.print(failures)
    console.print(
        f"demo finished in {wall:.0f} s. Inspect it with: LBCLOUD_DATA_DIR={data_dir} lbcloud status"
        if finished
        else "demo did not finish"
    )
    if not finished:
        raise typer.Exit(1)
