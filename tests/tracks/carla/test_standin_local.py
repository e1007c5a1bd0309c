"""The CARLA stand-in run through the single-machine (local) backend and the dispatcher: the
supervisor starts the fake ``CarlaUE4.sh`` and the stand-in evaluator as processes, and each official
behaviour must end with the same outcome, blame and retries as on Kubernetes."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from lbcloud.adapters.backends.local import LocalBackend
from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.route_catalog import FileRouteCatalog
from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.artifact_keys import LogStream, attempt_log_key, attempt_recording_key
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission
from lbcloud.domain.tracks import LocalCommands, Pool, Track
from lbcloud.services.dispatcher import Dispatcher
from lbcloud.settings import load_settings
from tests.adapters.backends.kubernetes.memory_artifacts import MemoryArtifacts
from tests.tracks.carla.agents import CASES
from tests.tracks.carla.expected import EXPECTED, MAX_SIMULATOR_RETRIES
from tests.tracks.carla.shell_pods import CONTENTS, STANDIN
from tests.tracks.carla.test_standin_kubernetes import REPO, ROUTES_XML

LOCAL_CASES = [name for name, case in CASES.items() if case.team_agent and case.team_config]
"""$TEAM_AGENT / $TEAM_CONFIG are image conventions: a local agent is a path given at submission."""
EGG = next((CONTENTS / "CARLA/PythonAPI/carla/dist").glob("carla-*.egg"))


def local_track(name: str, routes: Path, plan: Path) -> Track:
    """The deployed SENSORS track's evaluator flags, run by the local backend with the stand-in.

    Attempts inherit only an allowlisted environment, so the stand-in's own variables are set in
    the commands (``STANDIN_SOURCED`` is what an image's ``agent_sources.sh`` would have set)."""
    official = load_settings(REPO / "deploy/tracks/carla.yaml").track_map()["SENSORS"]
    assert official.images is not None
    flags = [f for f in official.images.evaluator_command[3:] if not f.startswith(("--debug-checkpoint",))]
    pythonpath = f"{EGG}:{CONTENTS / 'scenario_runner'}:{CONTENTS / 'leaderboard'}"
    evaluator = (
        "env", f"PYTHONPATH={pythonpath}", "STANDIN_SOURCED=1", sys.executable, "-u",
        str(CONTENTS / "leaderboard/leaderboard/leaderboard_evaluator.py"), *flags,
        "--debug-checkpoint={workdir}/live_results.txt", "--timeout=2",
    )  # fmt: skip
    simulator = (
        "env", f"FAKE_CARLA_PLAN={plan}", f"LBCLOUD_STANDIN_PYTHON={sys.executable}",
        str(STANDIN / "CarlaUE4.sh"), *official.images.simulator_command[1:],
    )  # fmt: skip
    return dataclasses.replace(
        official, name=name, routes_file=str(routes), images=None, local=LocalCommands(simulator, evaluator),
        pool=Pool(name="local", slots=3), qualification=None, silence_timeout_s=3, setup_timeout_s=20,
        max_simulator_retries=MAX_SIMULATOR_RETRIES,
    )  # fmt: skip


def test_every_official_behaviour_gets_its_outcome_blame_and_retries_locally(
    store: SqlStateStore, tmp_path: Path
) -> None:
    routes = tmp_path / "routes_testing.xml"
    routes.write_text(ROUTES_XML)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({name: case.plan for name, case in CASES.items() if case.plan}))
    tracks = {name: local_track(name, routes, plan) for name in LOCAL_CASES}
    artifacts = MemoryArtifacts()
    backend = LocalBackend(tmp_path / "attempts", artifacts, ready_timeout_s=20)
    dispatcher = Dispatcher(
        store=store, artifacts=artifacts, backend=backend, tracks=tracks, catalog=FileRouteCatalog(),
        clock=SystemClock(), owner="test", capacity={"local": 3},
    )  # fmt: skip
    agents = tmp_path / "agents"
    agents.mkdir()
    submissions = {}
    for name in LOCAL_CASES:
        agent = AgentRef(AgentKind.LOCAL, str(CASES[name].write_agent(agents)))
        submissions[name], _ = store.create_submission(NewSubmission(team=f"team-{name}", track=name, agent=agent))
    try:
        assert dispatcher.run_until_idle(tick_s=0.05, timeout_s=240)
    finally:
        dispatcher.close()

    for name in LOCAL_CASES:
        expected = EXPECTED[name]
        submission = submissions[name]
        attempts = sorted(store.attempts(submission_id=submission.id), key=lambda a: a.number)
        seen = tuple((a.outcome, a.blame) for a in attempts)
        assert seen == expected.attempts, f"{name}: {seen} ({[a.reason for a in attempts]})"
        (task,) = store.route_tasks(submission.id)
        assert task.status is expected.task, f"{name}: {task.status} ({task.reason})"
        # locally the hang is told by lbcloud's own log, and no image start-up files are sourced
        if expected.log_says and name not in ("hang", "normal"):
            key = attempt_log_key(submission.id, attempts[0].id, LogStream.AGENT)
            assert expected.log_says in artifacts.get(key).decode(), f"{name}: the team's log explains it"
    (normal,) = store.attempts(submission_id=submissions["normal"].id)
    assert artifacts.get(attempt_recording_key(normal.submission_id, normal.id)).startswith(b"CARLA_RECORDER")
    crashed = store.attempts(submission_id=submissions["sim_crash_once"].id)
    assert any("simulator died" in (a.reason or "") for a in crashed)
