"""End-to-end helpers: a whole lbcloud system on embedded defaults with real SUMO processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lbcloud.domain.errors import LbcloudError
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission
from lbcloud.entrypoints.wiring import System, build_system
from lbcloud.settings import default_tracks, load_settings

REPO = Path(__file__).resolve().parents[2]
AGENTS = REPO / "examples" / "agents"


def sumo_dev_track(**changes: Any) -> dict[str, Any]:
    """The built-in sumo-dev track as a settings dict, with ``changes`` applied."""
    track = next(t for t in default_tracks() if t.name == "sumo-dev")
    data = track.model_dump(mode="json")
    data.update(changes)
    return data


@pytest.fixture
def make_system(tmp_path: Path) -> Iterator[Callable[..., System]]:
    """Build systems on a fresh data dir (SQLite + artifact folder + local backend) and close them after."""
    systems: list[System] = []

    def make(**overrides: Any) -> System:
        overrides.setdefault("data_dir", str(tmp_path / "data"))
        overrides.setdefault("local", {"slots": 2})
        overrides.setdefault("tracks", [sumo_dev_track()])
        system = build_system(load_settings(None, **overrides))
        systems.append(system)
        return system

    yield make
    for system in systems:
        try:
            live = system.store.live_attempts()
        except LbcloudError:
            live = []
        for attempt in live:
            if attempt.handle:
                kill_attempt_processes(Path(attempt.handle))
        for folder in (tmp_path / "data" / "attempts").glob("attempt-*"):
            kill_attempt_processes(folder)
        system.close()


def submit(system: System, agent: str, team: str = "alpha", track: str = "sumo-dev") -> int:
    sub, _ = system.intake.submit(
        NewSubmission(team=team, track=track, agent=AgentRef(AgentKind.LOCAL, str(AGENTS / agent)))
    )
    return sub.id


def attempt_pids(folder: Path) -> list[int]:
    """Supervisor, simulator and evaluator pids of an attempt folder (those that were recorded)."""
    pids = []
    for name in ("supervisor.pid",):
        try:
            pids.append(int((folder / name).read_text().strip()))
        except (OSError, ValueError):
            pass
    try:
        import json

        pids.extend(json.loads((folder / "groups.json").read_text())["groups"])
    except (OSError, ValueError, KeyError):
        pass
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def kill_attempt_processes(folder: Path) -> None:
    for pid in attempt_pids(folder):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def wait_for(predicate: Callable[[], bool], timeout: float, tick: Callable[[], object] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s")


def start_dispatch(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``lbcloud dispatch`` in its own session (the tests kill it with its group), stderr to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "lbcloud", "dispatch"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),
        start_new_session=True,
    )


SECRETS = ("LBCLOUD_WEB__OPERATOR_TOKEN", "AWS_SECRET_ACCESS_KEY")


def plant_secrets(operator_token: str, aws_secret: str) -> Callable[[], None]:
    """Put the platform's secrets into this process's environment, where an operator would have
    them; returns what puts the environment back."""
    saved = {key: os.environ.get(key) for key in SECRETS}
    os.environ.update(dict(zip(SECRETS, (operator_token, aws_secret), strict=True)))

    def restore() -> None:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    return restore
