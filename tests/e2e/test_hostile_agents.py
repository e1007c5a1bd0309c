"""Hostile agents on the local backend, in one run with an honest team.

One server (SQLite, artifact folder, local backend with the bubblewrap sandbox, real SUMO) holds
secrets where a careless deployment would: the operator token and a cloud key in its environment,
team tokens in its settings file. Team ``mallory`` submits every agent of ``hostile_agents/`` (plus
broken agent files, and records forged by a subverted evaluator); team ``alpha`` submits the
competent agent in the same run. For every attack: the leaderboard is unchanged, no secret and no
other team's data appears anywhere the team can read, nothing outlives the attempt, the blame is
the agent's (no retries), and alpha scores exactly what it scores alone.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from lbcloud.domain.artifact_keys import LogStream, attempt_log_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import RouteTaskStatus
from lbcloud.entrypoints.wiring import System, build_system
from lbcloud.settings import load_settings
from lbcloud.tracks.sumo.agent_sandbox import SandboxMode, sandbox_status
from tests.e2e.conftest import AGENTS, kill_attempt_processes, plant_secrets, sumo_dev_track

pytestmark = [pytest.mark.sumo, pytest.mark.slow]

HOSTILE = Path(__file__).resolve().parent / "hostile_agents"
FORGER = Path(__file__).resolve().parent / "forged_evaluator.py"
LOG_LIMIT = 1 << 20
S = SubmissionStatus

if not sandbox_status(SandboxMode.AUTO).sandboxed:  # pragma: no cover - CI installs bubblewrap
    pytest.skip(f"no agent sandbox here: {sandbox_status(SandboxMode.AUTO).detail}", allow_module_level=True)


@dataclass
class Run:
    system: System
    data: Path
    canaries: list[str]
    marker: str
    submissions: dict[str, int]
    alone_score: float | None


def _forged_track(name: str, mode: str) -> dict[str, Any]:
    track = sumo_dev_track(name=name, smoke_route="0", public_routes=["0"])
    track["local"]["evaluator"] = [
        sys.executable, str(FORGER), "--checkpoint", "{checkpoint}", "--route", "{route}", "--mode", mode,
    ]  # fmt: skip
    return track


def _settings(root: Path, *, tokens: dict[str, str], tracks: list[dict[str, Any]]) -> Path:
    path = root / "lbcloud.yaml"
    low = random.randrange(30000, 39000, 100)  # away from the default range other installs on the host use
    local = {
        "port_range": [low, low + 99], "slots": 2, "agent_memory_mb": 768, "agent_pids": 64, "agent_disk_mb": 64,
        "log_limit_bytes": LOG_LIMIT,
        "min_free_mb": 64,
    }  # fmt: skip
    data = {"data_dir": str(root / "data"), "local": local, "web": {"team_tokens": tokens}, "tracks": tracks}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _submit(system: System, team: str, agent: Path, track: str = "sumo-dev", config: Path | None = None) -> int:
    ref = AgentRef(AgentKind.LOCAL, str(agent), config=str(config) if config else None)
    sub, _ = system.intake.submit(NewSubmission(team=team, track=track, agent=ref))
    return sub.id


def _drain(system: System, timeout_s: float) -> None:
    try:
        assert system.dispatcher().run_until_idle(tick_s=0.1, timeout_s=timeout_s)
    finally:
        for folder in (system.settings.data_path / "attempts").glob("attempt-*"):
            kill_attempt_processes(folder)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    marker = f"lbcloud-hostile-{uuid.uuid4().hex}"
    canaries = [f"{kind}-{uuid.uuid4().hex}" for kind in ("op", "aws", "alpha", "mal")]
    tracks = [
        sumo_dev_track(smoke_route="0", public_routes=["0"]),
        _forged_track("forged-ds", "ds5000"),
        _forged_track("forged-route", "wrong-route"),
        _forged_track("forged-penalty", "inflated"),
    ]
    tokens = {"alpha": canaries[2], "mallory": canaries[3]}

    alone_root = tmp_path_factory.mktemp("alone")
    alone = build_system(load_settings(_settings(alone_root, tokens=tokens, tracks=tracks[:1])))
    try:
        sid = _submit(alone, "alpha", AGENTS / "competent.py")
        _drain(alone, 240)
        merged = alone.store.merged_result(sid)
        alone_score = merged.driving_score if merged else None
    finally:
        alone.close()

    root = tmp_path_factory.mktemp("hostile")
    settings_file = _settings(root, tokens=tokens, tracks=tracks)
    restore_environment = plant_secrets(canaries[0], canaries[1])
    system = build_system(load_settings(settings_file))
    data = system.settings.data_path.resolve()
    config = root / "hostile.json"
    paths = {
        "data_dir": str(data), "settings": str(settings_file), "database": str(data / "lbcloud.db"),
        "attempts": str(data / "attempts"), "marker": marker,
    }  # fmt: skip
    config.write_text(json.dumps(paths), encoding="utf-8")
    broken = root / "broken"
    broken.mkdir()
    (broken / "syntax_error.py").write_text('def get_entry_point() -> str\n    return "Broken"\n')
    try:
        submissions = {"honest": _submit(system, "alpha", AGENTS / "competent.py")}
        for agent in sorted(HOSTILE.glob("*.py")):
            if agent.stem != "hostile_common":
                submissions[agent.stem] = _submit(system, "mallory", agent, config=config)
        submissions["syntax_error"] = _submit(system, "mallory", broken / "syntax_error.py")
        for track in ("forged-ds", "forged-route", "forged-penalty"):
            submissions[track] = _submit(system, "mallory", AGENTS / "competent.py", track=track)
        _drain(system, 900)
        yield Run(system, data, canaries, marker, submissions, alone_score)
    finally:
        system.close()
        restore_environment()


def _attempts(run: Run, name: str) -> list[Any]:
    return run.system.store.attempts(submission_id=run.submissions[name])


def _agent_log(run: Run, name: str, stream: LogStream = LogStream.AGENT) -> bytes:
    sid = run.submissions[name]
    return b"".join(
        run.system.artifacts.get(attempt_log_key(sid, a.id, stream))
        for a in _attempts(run, name)
        if run.system.artifacts.exists(attempt_log_key(sid, a.id, stream))
    )


def test_the_honest_team_scores_exactly_what_it_scores_alone_and_leads(run: Run) -> None:
    sid = run.submissions["honest"]
    assert run.system.store.get_submission(sid).status is S.FINISHED
    merged = run.system.store.merged_result(sid)
    assert merged is not None and run.alone_score is not None
    assert merged.driving_score == run.alone_score
    board = run.system.store.leaderboard("sumo-dev")
    assert board and board[0][0].id == sid, [(s.team, m.driving_score) for s, m in board]
    for submission, result in board[1:]:
        assert submission.team == "mallory" and (result.driving_score or 0) < (merged.driving_score or 0)


@pytest.mark.parametrize(
    "name",
    [
        "criteria_patch", "checkpoint_forger", "snoop", "escape_daemon", "fork_bomb", "memory_hog", "log_flood",
        "disk_fill", "fake_simulator_fault", "no_entry_point", "wrong_class", "syntax_error",
        "forged-ds", "forged-route", "forged-penalty",
    ],
)  # fmt: skip
def test_every_attack_is_the_agents_fault_and_never_retried(run: Run, name: str) -> None:
    # a simulator that could not start (its port taken by another process on a busy host) is the
    # platform's fault before any agent ran: retried, and not what this test is about
    attempts = [a for a in _attempts(run, name) if "before it was ready" not in (a.reason or "")]
    assert attempts, name
    assert {a.blame for a in attempts} <= {Blame.AGENT, Blame.NONE}, (
        [(a.blame, a.reason) for a in attempts],
        _agent_log(run, name, LogStream.SIMULATOR)[-3000:],
        _agent_log(run, name, LogStream.LBCLOUD)[-3000:],
    )
    per_task = Counter(a.task_id for a in attempts)
    assert all(count == 1 for count in per_task.values()), per_task
    tasks = run.system.store.route_tasks(run.submissions[name])
    assert all(t.status is not RouteTaskStatus.PENDING for t in tasks)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("checkpoint_forger", "Failed - Agent couldn't be set up"),
        ("snoop", "Failed - Agent couldn't be set up"),
        ("fork_bomb", "Failed - Agent couldn't be set up"),
        ("memory_hog", "Failed - Agent couldn't be set up"),
        ("disk_fill", "Failed - Agent couldn't be set up"),
        ("no_entry_point", "Failed - Agent couldn't be set up"),
        ("wrong_class", "Failed - Agent couldn't be set up"),
        ("syntax_error", "Failed - Agent couldn't be set up"),
        ("escape_daemon", "Failed - Agent crashed"),
        ("log_flood", "Failed - Agent crashed"),
        ("fake_simulator_fault", "Failed - Agent crashed"),
    ],
)
def test_an_agent_failing_its_smoke_route_fails_fast(run: Run, name: str, status: str) -> None:
    sid = run.submissions[name]
    assert run.system.store.get_submission(sid).status is S.FAILED
    tasks = {t.route_id: t for t in run.system.store.route_tasks(sid)}
    assert tasks["0"].status is RouteTaskStatus.DONE and tasks["0"].blame is Blame.AGENT
    assert tasks["0"].reason and tasks["0"].reason.startswith(status), tasks["0"].reason
    assert {t.status for r, t in tasks.items() if r != "0"} == {RouteTaskStatus.CANCELLED}


def test_patching_the_evaluator_from_the_agent_changes_nothing(run: Run) -> None:
    assert b"HOSTILE patched" in _agent_log(run, "criteria_patch")  # the patch ran, in its own process
    merged = run.system.store.merged_result(run.submissions["criteria_patch"])
    assert merged is not None and merged.driving_score is not None and merged.driving_score < 10
    for task in run.system.store.route_tasks(run.submissions["criteria_patch"]):
        assert task.record_json and '"Perfect"' not in task.record_json


def test_the_forger_finds_no_checkpoint_to_forge(run: Run) -> None:
    log = _agent_log(run, "checkpoint_forger")
    assert b"HOSTILE checkpoints found: []" in log and b"HOSTILE forged" not in log


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("forged-ds", "driving score (score_composed) 5000.0 is outside [0, 100]"),
        ("forged-route", "the record is for 'RouteScenario_7_rep0', the task is 'RouteScenario_0_rep0'"),
        ("forged-penalty", "does not match its infractions"),
    ],
)
def test_forged_records_are_refused_never_merged_and_fail_fast(run: Run, name: str, reason: str) -> None:
    sid = run.submissions[name]
    assert run.system.store.get_submission(sid).status is S.FAILED
    tasks = {t.route_id: t for t in run.system.store.route_tasks(sid)}
    smoke = tasks["0"]
    assert smoke.status is RouteTaskStatus.FAILED_FINAL and smoke.blame is Blame.AGENT
    assert smoke.reason and "route record refused" in smoke.reason and reason in smoke.reason, smoke.reason
    assert smoke.record_json is None
    merged = run.system.store.merged_result(sid)  # at most the failed route's zero-score stand-in
    assert merged is None or (not merged.driving_score and '"Perfect"' not in merged.document)
    assert run.system.store.leaderboard(name) == []


def test_no_secret_reaches_anything_the_team_can_read(run: Run) -> None:
    log = _agent_log(run, "snoop")
    assert b"HOSTILE environ" in log, "the snoop ran"
    readable = [p for p in (run.data / "artifacts").rglob("*") if p.is_file()]
    assert readable
    for path in readable:
        content = path.read_bytes()
        for canary in run.canaries:
            assert canary.encode() not in content, f"{canary[:4]}… leaked into {path}"
    assert b"SQLite format 3" not in log, "the database was readable"


def test_the_database_cannot_be_rewritten(run: Run) -> None:
    assert b"HOSTILE database write failed" in _agent_log(run, "snoop")
    with sqlite3.connect(run.data / "lbcloud.db") as db:
        teams = {row[0] for row in db.execute("SELECT team FROM submissions")}
    assert teams == {"alpha", "mallory"}


def test_nothing_outlives_its_attempt(run: Run) -> None:
    assert b"HOSTILE daemon: started" in _agent_log(run, "escape_daemon")

    def survivors() -> list[str]:
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if run.marker in line or str(HOSTILE) in line:
                found.append(f"{proc.info['pid']}: {line[:120]}")
        return found

    deadline = time.monotonic() + 10
    while survivors() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert survivors() == []
    assert list((run.data / "attempts").glob("attempt-*")) == [], "attempt folders are removed once collected"


def test_a_fork_bomb_hits_the_process_limit(run: Run) -> None:
    log = _agent_log(run, "fork_bomb")
    assert b"HOSTILE fork refused: after" in log
    children = int(log.split(b"HOSTILE fork refused: after ")[1].split()[0])
    assert children < 64


def test_a_memory_hog_is_stopped_by_its_memory_limit(run: Run) -> None:
    log = _agent_log(run, "memory_hog")
    hoarded = [int(line.split()[-1]) for line in log.decode().splitlines() if line.startswith("HOSTILE hoarded MiB")]
    assert hoarded and max(hoarded) <= 768
    assert b"MemoryError" in log


def test_a_log_flood_is_capped_with_a_marker(run: Run) -> None:
    log = _agent_log(run, "log_flood")
    assert len(log) <= LOG_LIMIT + 1024
    assert b"truncated" in log


def test_filling_the_disk_fills_only_the_agents_own_small_scratch_space(run: Run) -> None:
    log = _agent_log(run, "disk_fill").decode()
    stops = [line for line in log.splitlines() if line.startswith("HOSTILE fill stopped")]
    # home (also its working folder) and /tmp, each stopped by its small tmpfs; no attempt folder in sight
    assert len(stops) == 3, stops
    assert all(int(line.split(" after ")[1].split()[0]) <= 64 for line in stops), stops
    assert all("No space left on device" in line or "File too large" in line for line in stops), stops
