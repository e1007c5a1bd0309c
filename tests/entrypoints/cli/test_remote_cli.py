"""The CLI against a running ``lbcloud serve`` (a real server process: SQLite, the local backend
running SUMO) with team and operator tokens: login saves the token owner-only, then submit, status,
route detail, logs, cancel and the leaderboard go through the HTTP API."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
COMPETENT = REPO / "examples" / "agents" / "competent.py"
SLOW = REPO / "examples" / "agents" / "slow.py"
OPERATOR = "remote-operator-token"
TOKENS = {"alpha": "remote-alpha-token", "beta": "remote-beta-token"}

pytestmark = [pytest.mark.sumo, pytest.mark.slow]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LBCLOUD_")}
    env.update({"COLUMNS": "120", **extra})
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("remote")
    config = tmp / "server.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp / "data"),
                "web": {"operator_token": OPERATOR, "team_tokens": TOKENS},
                "dispatcher": {"tick_s": 0.2},
            }
        )
    )
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lbcloud", "--config", str(config), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"listening on {url}" in first, first
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield Server(url, process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cli(config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lbcloud ARGS`` as a participant runs it on another machine: no settings file, only the login."""
    return subprocess.run(
        [sys.executable, "-m", "lbcloud", *args],
        capture_output=True,
        text=True,
        env=_env(LBCLOUD_CONFIG_DIR=str(config_dir)),
        cwd=config_dir.parent,
        timeout=120,
        check=False,
    )


def login(server: Server, folder: Path, token: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    result = cli(folder / "cfg", "login", server.url, "--token", token)
    assert result.returncode == 0, result.stderr
    return folder / "cfg"


def wait_for(config_dir: Path, submission_id: int, terminal: bool = True, timeout_s: float = 240) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = cli(config_dir, "status", str(submission_id), "-o", "json")
        assert result.returncode == 0, result.stderr
        progress: dict[str, object] = json.loads(result.stdout)
        if progress["submission"]["terminal"] == terminal:  # type: ignore[index]
            return progress
        assert time.monotonic() < deadline, f"submission {submission_id} did not settle"
        time.sleep(1.0)


def test_login_saves_the_token_for_the_owner_only(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "alpha"
    folder.mkdir()
    result = cli(folder / "cfg", "login", server.url, "--token", TOKENS["alpha"])
    assert result.returncode == 0, result.stderr
    assert f"logged in to {server.url} as alpha" in result.stdout
    saved = folder / "cfg" / "login.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text()) == {"url": server.url, "token": TOKENS["alpha"]}
    (tmp_path / "other").mkdir()
    refused = cli(tmp_path / "other" / "cfg", "login", server.url, "--token", "not-a-token")
    assert refused.returncode == 10 and "log in again" in refused.stderr
    assert not (tmp_path / "other" / "cfg" / "login.json").exists()


def test_a_team_submits_watches_and_cancels_through_the_api(server: Server, tmp_path: Path) -> None:
    alpha = login(server, tmp_path / "alpha", TOKENS["alpha"])
    # this server's local backend runs agent files: a team's image is refused at once, with what to do
    refused = cli(
        alpha, "submit", "--track", "sumo-test", "--image", "registry.example.org/alpha/agent:v1", "-o", "json"
    )
    assert refused.returncode == 2, refused.stderr
    assert "local backend runs agent files, not images" in refused.stderr
    # a slow agent of the team's (local agents are the operator's to submit), cancelled by the team
    operator = login(server, tmp_path / "operator", OPERATOR)
    submitted = cli(operator, "submit", "--track", "sumo-test", "--team", "alpha", "--agent", str(SLOW), "-o", "json")
    assert submitted.returncode == 0, submitted.stderr
    slow = json.loads(submitted.stdout)
    assert slow["team"] == "alpha" and slow["url"] == f"{server.url}/submissions/{slow['id']}"
    listed = json.loads(cli(alpha, "status", "-o", "json").stdout)
    assert slow["id"] in [s["id"] for s in listed]
    assert all(s["team"] == "alpha" for s in listed)
    cancelled = cli(alpha, "cancel", str(slow["id"]))
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"submission {slow['id']} is cancelled" in cancelled.stdout
    assert "cancelled by alpha" in cancelled.stdout
    beta = login(server, tmp_path / "beta", TOKENS["beta"])
    other = cli(beta, "status", str(slow["id"]))
    assert other.returncode == 10 and "belongs to another team" in other.stderr


def test_status_route_detail_logs_and_leaderboard_come_from_the_server(server: Server, tmp_path: Path) -> None:
    operator = login(server, tmp_path / "operator", OPERATOR)
    submitted = cli(
        operator, "submit", "--track", "sumo-dev", "--team", "alpha", "--agent", str(COMPETENT), "-o", "json"
    )
    assert submitted.returncode == 0, submitted.stderr
    submission_id = json.loads(submitted.stdout)["id"]
    alpha = login(server, tmp_path / "alpha", TOKENS["alpha"])
    progress = wait_for(alpha, submission_id)
    assert progress["state"]["word"] == "finished"  # type: ignore[index]
    first = progress["routes"][0]  # type: ignore[index]
    detail = json.loads(cli(alpha, "status", str(submission_id), "--route", first["route_id"], "-o", "json").stdout)
    assert detail["route"]["instance_id"] == first["instance_id"]
    assert detail["attempts"] and detail["attempts"][0]["state"]["word"] == "record"
    # the SUMO evaluator recorded route completion over simulation time for the route page
    assert len(detail["completion"]) >= 2 and detail["completion"][-1]["completion"] > 0
    shown = cli(alpha, "status", str(submission_id), "--route", first["route_id"])
    assert shown.returncode == 0 and "Attempts" in shown.stdout
    logs = cli(alpha, "logs", str(submission_id), "--route", first["route_id"], "--stream", "lbcloud")
    assert logs.returncode == 0, logs.stderr
    assert f"route {first['route_id']} — attempt 1 (lbcloud)" in logs.stdout
    assert len(logs.stdout.splitlines()) > 2
    board = json.loads(cli(alpha, "leaderboard", "--track", "sumo-dev", "-o", "json").stdout)
    assert [e["submission_id"] for e in board["entries"]] == [submission_id]
    table = cli(alpha, "leaderboard", "--track", "sumo-dev")
    assert table.returncode == 0 and "alpha" in table.stdout
