"""The hostile agents of ``hostile_agents/``, built into team images, on the Docker backend.

One system (SQLite, artifact folder, Docker backend on the suite's engine, real SUMO in containers)
holds secrets where a careless deployment would: the operator token and a cloud key in the
dispatcher's environment, team tokens in its settings file. Team ``mallory`` submits one image per
attack; team ``alpha`` submits the competent agent in the same run. For every attack: the blame is
the agent's and nothing is retried, no secret reaches anything the team can read, the honest team
leads with the score it gets alone, and no container outlives its attempt.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lbcloud.domain.artifact_keys import LogStream, attempt_log_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.entrypoints.wiring import System, build_system
from lbcloud.settings import load_settings
from tests.e2e.conftest import AGENTS, plant_secrets, sumo_dev_track
from tests.services.docker import DockerTestEngine

pytestmark = [pytest.mark.docker, pytest.mark.sumo, pytest.mark.slow]

HOSTILE = Path(__file__).resolve().parent / "hostile_agents"
ATTACKS = (
    "criteria_patch", "checkpoint_forger", "snoop", "escape_daemon", "fork_bomb", "memory_hog", "log_flood",
    "disk_fill", "fake_simulator_fault", "no_entry_point", "wrong_class",
)  # fmt: skip
LOG_LIMIT = 1 << 20
S = SubmissionStatus


@dataclass
class Run:
    system: System
    canaries: list[str]
    submissions: dict[str, int]
    instance_containers: Callable[[], list[str]]


def _image(engine: DockerTestEngine, root: Path, name: str, config: dict[str, str]) -> str:
    context = root / f"image-{name}"
    context.mkdir()
    for source in [*HOSTILE.glob("*.py"), AGENTS / "competent.py"]:
        shutil.copy(source, context / source.name)
    (context / "hostile.json").write_text(json.dumps(config), encoding="utf-8")
    (context / "Dockerfile").write_text(
        "FROM lbcloud-sumo-agent:latest\n"
        "COPY --chown=10001:10001 . /home/lbcloud/agent/\n"
        f"ENV TEAM_AGENT=/home/lbcloud/agent/{name}.py TEAM_CONFIG=/home/lbcloud/agent/hostile.json\n",
        encoding="utf-8",
    )
    tag = f"lbcloud-test/mallory-{name.replace('_', '-')}:1"
    engine.client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    return tag


def _submit(system: System, team: str, image: str) -> int:
    sub, _ = system.intake.submit(NewSubmission(team=team, track="sumo-dev", agent=AgentRef(AgentKind.IMAGE, image)))
    return sub.id


@pytest.fixture(scope="module")
def run(
    docker_engine: DockerTestEngine, team_image: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    canaries = [f"{kind}-{uuid.uuid4().hex}" for kind in ("op", "aws", "alpha", "mal")]
    root = tmp_path_factory.mktemp("docker-hostile")
    settings_file = root / "lbcloud.yaml"
    settings_file.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(root / "data"),
                "backend": "docker",
                "docker": {
                    "base_url": docker_engine.url, "slots": 2, "pids_limit": 64, "scratch_size": "64m",
                    "log_max_bytes": LOG_LIMIT,
                },
                "web": {"team_tokens": {"alpha": canaries[2], "mallory": canaries[3]}},
                "tracks": [sumo_dev_track(smoke_route="0", public_routes=["0"])],
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    restore_environment = plant_secrets(canaries[0], canaries[1])
    system = build_system(load_settings(settings_file))
    data = system.settings.data_path.resolve()
    config = {
        "data_dir": str(data), "settings": str(settings_file), "database": str(data / "lbcloud.db"),
        "attempts": str(data / "docker-attempts"), "marker": f"lbcloud-hostile-{uuid.uuid4().hex}",
    }  # fmt: skip
    try:
        submissions = {"honest": _submit(system, "alpha", team_image("competent.py"))}
        for name in ATTACKS:
            submissions[name] = _submit(system, "mallory", _image(docker_engine, root, name, config))
        assert system.dispatcher().run_until_idle(tick_s=0.1, timeout_s=900)
        backend = system.dispatcher().backend
        instance = backend.config.instance  # type: ignore[attr-defined]
        engine = backend.engine  # type: ignore[attr-defined]
        yield Run(system, canaries, submissions, lambda: [s.name for s in engine.containers(instance)])
    finally:
        system.close()
        restore_environment()


def _agent_log(run: Run, name: str) -> bytes:
    sid = run.submissions[name]
    keys = [attempt_log_key(sid, a.id, LogStream.AGENT) for a in run.system.store.attempts(submission_id=sid)]
    return b"".join(run.system.artifacts.get(k) for k in keys if run.system.artifacts.exists(k))


def test_the_honest_team_finishes_and_leads(run: Run) -> None:
    sid = run.submissions["honest"]
    assert run.system.store.get_submission(sid).status is S.FINISHED
    board = run.system.store.leaderboard("sumo-dev")
    assert board and board[0][0].id == sid, [(s.team, m.driving_score) for s, m in board]


@pytest.mark.parametrize("name", ATTACKS)
def test_every_attack_is_the_agents_fault_and_never_retried(run: Run, name: str) -> None:
    attempts = run.system.store.attempts(submission_id=run.submissions[name])
    assert attempts
    assert {a.blame for a in attempts} <= {Blame.AGENT, Blame.NONE}, [(a.blame, a.reason) for a in attempts]
    assert all(t.attempts <= 1 for t in run.system.store.route_tasks(run.submissions[name]))
    assert run.system.store.get_submission(run.submissions[name]).status in (S.FAILED, S.FINISHED)


def test_no_secret_reaches_anything_the_team_can_read(run: Run) -> None:
    assert b"HOSTILE environ" in _agent_log(run, "snoop"), "the snoop ran"
    readable = [p for p in (run.system.settings.data_path / "artifacts").rglob("*") if p.is_file()]
    assert readable
    for path in readable:
        content = path.read_bytes()
        for canary in run.canaries:
            assert canary.encode() not in content, f"{canary[:4]}… leaked into {path}"
    assert b"SQLite format 3" not in _agent_log(run, "snoop"), "the database was readable"


def test_the_forger_finds_no_checkpoint_to_forge(run: Run) -> None:
    log = _agent_log(run, "checkpoint_forger")
    assert b"HOSTILE checkpoints found: []" in log and b"HOSTILE forged" not in log


def test_a_fork_bomb_hits_the_process_limit(run: Run) -> None:
    log = _agent_log(run, "fork_bomb")
    assert b"HOSTILE fork refused: after" in log
    assert int(log.split(b"HOSTILE fork refused: after ")[1].split()[0]) < 64


def test_a_log_flood_is_capped(run: Run) -> None:
    assert len(_agent_log(run, "log_flood")) <= 2 * LOG_LIMIT + 1024  # evaluator's and agent container's, capped


def test_no_container_outlives_its_attempt(run: Run) -> None:
    assert b"HOSTILE daemon: started" in _agent_log(run, "escape_daemon")
    assert run.instance_containers() == []
