"""Usage errors exit 2 with click's usage text; every read command's ``--output json`` parses; tables
fit ``COLUMNS``; the internal reporter command is hidden."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
COMPETENT = REPO / "examples" / "agents" / "competent.py"


def lbcloud(
    *args: str, config: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed command as a user runs it (a fresh process: the real exit code and streams)."""
    argv = [sys.executable, "-m", "lbcloud"] + (["--config", str(config)] if config else []) + list(args)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LBCLOUD_")}
    full_env.update({"COLUMNS": "100", **(env or {})})
    return subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=120, check=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "lbcloud.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data")}))
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "--json"], "No such option: --json"),
        (["statu"], "No such command 'statu'"),
        (["status", "abc"], "Invalid value for 'submission_id'"),
        (["submit", "--team", "alpha", "--agent", "x.py"], "Missing option '--track'"),
        (["status", "--output", "yaml"], "Invalid value for '--output'"),
    ],
)
def test_usage_errors_exit_2_with_the_usage_text(args: list[str], message: str, config: Path, tmp_path: Path) -> None:
    result = lbcloud(*args, config=config, env={"LBCLOUD_CONFIG_DIR": str(tmp_path / "cfg")})
    assert result.returncode == 2, result.stderr
    assert "Usage: lbcloud" in result.stderr
    assert message in result.stderr
    assert "unexpected" not in result.stderr


def test_read_commands_print_json_that_parses(config: Path, tmp_path: Path) -> None:
    env = {"LBCLOUD_CONFIG_DIR": str(tmp_path / "cfg")}
    submitted = lbcloud(
        "submit",
        "--track",
        "sumo-dev",
        "--team",
        "alpha",
        "--agent",
        str(COMPETENT),
        "-o",
        "json",
        config=config,
        env=env,
    )
    assert submitted.returncode == 0, submitted.stderr
    created = json.loads(submitted.stdout)
    assert created["id"] == 1 and created["url"].endswith("/submissions/1")
    documents = {
        "tracks": json.loads(lbcloud("tracks", "-o", "json", config=config, env=env).stdout),
        "status": json.loads(lbcloud("status", "-o", "json", config=config, env=env).stdout),
        "status 1": json.loads(lbcloud("status", "1", "-o", "json", config=config, env=env).stdout),
        "leaderboard": json.loads(
            lbcloud("leaderboard", "--track", "sumo-dev", "-o", "json", config=config, env=env).stdout
        ),
    }
    assert {t["name"] for t in documents["tracks"]} == {"sumo-dev", "sumo-test"}
    assert documents["status"][0]["state"]["word"] == "submitted"
    assert documents["status 1"]["submission"]["id"] == 1
    assert documents["leaderboard"]["track"] == "sumo-dev" and documents["leaderboard"]["entries"] == []
    cancelled = json.loads(lbcloud("cancel", "1", "-o", "json", config=config, env=env).stdout)
    assert cancelled["status"] == "cancelled" and cancelled["state"]["word"] == "cancelled"


def test_tables_fit_the_columns_they_are_given(config: Path, tmp_path: Path) -> None:
    env = {"LBCLOUD_CONFIG_DIR": str(tmp_path / "cfg"), "COLUMNS": "72"}
    lbcloud("submit", "--track", "sumo-dev", "--team", "A team with a rather long name", "--agent", str(COMPETENT),
            config=config, env=env)  # fmt: skip
    for args in (["status"], ["tracks"], ["leaderboard"], ["status", "1"]):
        out = lbcloud(*args, config=config, env=env)
        assert out.returncode == 0, out.stderr
        assert max(len(line) for line in out.stdout.splitlines()) <= 72, (args, out.stdout)
    wide = lbcloud("leaderboard", "--track", "sumo-dev", "-o", "wide", config=config, env=env).stdout
    assert "Min speed" in wide and "Coll. ped." in wide  # all 12 infraction rates


def test_the_reporter_command_is_hidden_and_flags_take_no_value() -> None:
    out = lbcloud("--help").stdout
    assert "reporter" not in out
    assert "tracks" in out and "login" in out
    debug_line = next(line for line in out.splitlines() if "--debug" in line)
    assert "<bool>" not in debug_line


def test_logs_say_when_a_stream_is_empty_and_print_the_others(config: Path, tmp_path: Path) -> None:
    from lbcloud.domain.artifact_keys import attempt_log_key
    from lbcloud.domain.blame import Blame
    from lbcloud.domain.tasks import AttemptOutcome, NewRouteTask
    from lbcloud.entrypoints.wiring import build_system
    from lbcloud.services.ports import AttemptEnd
    from lbcloud.settings import load_settings

    env = {"LBCLOUD_CONFIG_DIR": str(tmp_path / "cfg")}
    assert lbcloud("submit", "--track", "sumo-dev", "--team", "alpha", "--agent", str(COMPETENT),
                   config=config, env=env).returncode == 0  # fmt: skip
    system = build_system(load_settings(config))
    task = system.store.plan_route_tasks(1, [NewRouteTask("0", 0, 0, 100.0, 10.0)])[0]
    attempt = system.store.claim_task(task.id, backend="local", pool="local", owner="test", lease_s=60)
    assert attempt is not None
    system.artifacts.put(attempt_log_key(1, attempt.id, "agent"), b"driving along\n")
    system.artifacts.put(attempt_log_key(1, attempt.id, "simulator"), b"")
    system.store.end_attempt(
        attempt.id, AttemptEnd(AttemptOutcome.FAILED, Blame.SIMULATOR, "sim died", 1, None, counted=True)
    )
    system.close()
    empty = lbcloud("logs", "1", "--stream", "simulator", config=config, env=env)
    assert empty.returncode == 0, empty.stderr
    assert "route 0 — attempt 1 (simulator)" in empty.stdout
    assert "(the simulator log of this attempt is empty)" in empty.stdout
    agent = lbcloud("logs", "1", "--route", "0", config=config, env=env)
    assert "driving along" in agent.stdout and "is empty" not in agent.stdout
