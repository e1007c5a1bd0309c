"""The evaluator end to end: real SUMO server, real agents, the leaderboard's file and statuses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lbcloud.domain.results.evalai_format import accuracies, stdout_summary
from lbcloud.domain.results.merge import ExpectedInstances, MergeInput, merge_results
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.scoring import rescore_record
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.tracks import ScorerVersion

from .conftest import AGENTS, Run, Server, agent_path, free_port, run_evaluator, start_server

pytestmark = pytest.mark.sumo

DEV_IDS = ["RouteScenario_0_rep0", "RouteScenario_1_rep0", "RouteScenario_2_rep0"]


def without_wall_clock(value: Any) -> Any:
    """The document with every ``duration_system`` removed (the only field allowed to differ)."""
    if isinstance(value, dict):
        return {k: without_wall_clock(v) for k, v in value.items() if k != "duration_system"}
    if isinstance(value, list):
        return [without_wall_clock(v) for v in value]
    return value


@pytest.fixture(scope="module")
def competent_dev(simulator: Server, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("competent") / "results.json"
    return run_evaluator(out, simulator.port, agent_path("competent"), "sumo-dev", "--seed", "3")


def write_agent(folder: Path, body: str) -> str:
    """An agent subclassing the competent one; both in ``folder`` (all a sandboxed agent can see)."""
    path = folder / "test_agent.py"
    shutil.copyfile(AGENTS / "competent.py", folder / "competent.py")
    path.write_text(
        "import sys, time\n"
        "from competent import CompetentAgent\n"
        "def get_entry_point():\n    return 'TestAgent'\n" + body
    )
    return str(path)


def test_competent_agent_completes_every_dev_route(competent_dev: Run) -> None:
    assert competent_dev.code == 0, competent_dev.output
    doc = competent_dev.document
    assert doc["entry_status"] == "Finished" and doc["eligible"] is True
    assert doc["_checkpoint"]["progress"] == [3, 3]
    assert [r["route_id"] for r in competent_dev.records] == DEV_IDS
    assert all(r["scores"]["score_route"] == 100 for r in competent_dev.records)
    assert doc["sensors"] == ["carla_speedometer", "carla_opendrive_map", "carla_radar", "carla_camera"]
    assert float(doc["values"][0]) >= 80


def test_the_file_is_byte_exact_results_engine_output(competent_dev: Run) -> None:
    text = competent_dev.checkpoint.read_text(encoding="utf-8")
    assert dumps_results(parse_results(text, "results.json")) == text


def test_the_evalai_converter_reads_sumo_results(competent_dev: Run) -> None:
    results = parse_results(competent_dev.checkpoint.read_text(), "results.json")
    summary = stdout_summary(results)
    assert "  - 1 Speedometer\n  - 1 OpenDrive Map\n  - 1 Radar\n  - 1 RGB Camera\n" in summary
    assert "- All 3 route have been completed" in summary
    assert accuracies(results)["Driving score"] == float(competent_dev.document["values"][0])


def test_a_setup_that_hangs_fails_the_route_after_the_setup_timeout(simulator: Server, tmp_path: Path) -> None:
    agent = write_agent(
        tmp_path,
        "class TestAgent(CompetentAgent):\n    def setup(self, path_to_conf_file):\n        time.sleep(3600)\n",
    )
    run = run_evaluator(tmp_path / "slow-setup.json", simulator.port, agent, "sumo-dev", "--routes-subset", "0")
    assert run.code == 0, run.output
    assert [r["status"] for r in run.records] == ["Failed - Agent couldn't be set up"]


def test_same_seed_and_agent_give_identical_records(competent_dev: Run, simulator: Server, tmp_path: Path) -> None:
    again = run_evaluator(tmp_path / "again.json", simulator.port, agent_path("competent"), "sumo-dev", "--seed", "3")
    assert again.code == 0
    assert without_wall_clock(again.document) == without_wall_clock(competent_dev.document)


def test_per_route_runs_merge_to_the_global_record_of_one_run(
    competent_dev: Run, simulator: Server, tmp_path: Path
) -> None:
    inputs = []
    for route in ("0", "1", "2"):
        part = run_evaluator(
            tmp_path / f"part{route}.json", simulator.port, agent_path("competent"), "sumo-dev",
            "--seed", "3", "--routes-subset", route,
        )  # fmt: skip
        assert part.code == 0, part.output
        inputs.append(MergeInput(f"part{route}.json", parse_results(part.checkpoint.read_text(), route)))
    merged = merge_results(inputs, ExpectedInstances.for_routes(["0", "1", "2"]))
    assert merged.complete
    merged_doc = without_wall_clock(json.loads(dumps_results(merged.results)))
    assert merged_doc == without_wall_clock(competent_dev.document)


def test_repetitions_run_back_to_back_with_their_own_traffic(simulator: Server, tmp_path: Path) -> None:
    run = run_evaluator(
        tmp_path / "reps.json", simulator.port, agent_path("reckless"), "sumo-dev", "--routes-subset", "0",
        "--repetitions", "2",
    )  # fmt: skip
    assert run.code == 0, run.output
    assert [(r["index"], r["route_id"]) for r in run.records] == [
        (0, "RouteScenario_0_rep0"),
        (1, "RouteScenario_0_rep1"),
    ]
    assert run.document["_checkpoint"]["progress"] == [2, 2]
    assert run.records[0]["meta"]["route_length"] == run.records[1]["meta"]["route_length"]


def test_reckless_agent_runs_reds_and_collides_and_scores_lower(
    competent_dev: Run, simulator: Server, tmp_path: Path
) -> None:
    run = run_evaluator(
        tmp_path / "reckless.json", simulator.port, agent_path("reckless"), "sumo-test", "--routes-subset", "0-4"
    )
    assert run.code == 0, run.output
    lists = [r["infractions"] for r in run.records]
    assert sum(len(i["red_light"]) for i in lists) >= 1
    assert sum(len(i["collisions_vehicle"]) for i in lists) >= 1
    assert all(m.startswith("Agent ran a red light ") for i in lists for m in i["red_light"])
    assert float(run.document["values"][0]) < float(competent_dev.document["values"][0]) - 30


def test_lb21_scorer_scores_the_same_events_with_2_1_weights(simulator: Server, tmp_path: Path) -> None:
    runs = {
        scorer: run_evaluator(
            tmp_path / f"{scorer}.json",
            simulator.port,
            agent_path("reckless"),
            "sumo-test",
            "--routes-subset",
            "1",
            "--scorer",
            scorer,
        )
        for scorer in ("lb2.0", "lb2.1")
    }
    r20 = parse_results(runs["lb2.0"].checkpoint.read_text(), "20").records[0]
    r21 = parse_results(runs["lb2.1"].checkpoint.read_text(), "21").records[0]
    assert r20.infractions == r21.infractions
    assert r21.scores == rescore_record(r20, ScorerVersion.LB21).scores
    assert r21.scores.score_penalty != r20.scores.score_penalty


def test_failing_setup_fails_each_route_and_the_run_finishes(simulator: Server, tmp_path: Path) -> None:
    run = run_evaluator(tmp_path / "setup.json", simulator.port, agent_path("setup_fails"))
    assert run.code == 0, run.output
    assert [r["status"] for r in run.records] == ["Failed - Agent couldn't be set up"] * 3
    assert all(r["scores"]["score_route"] == 0 and r["scores"]["score_penalty"] == 1.0 for r in run.records)
    assert run.document["entry_status"] == "Finished"
    assert run.document["sensors"] == []


def test_crashing_agent_fails_its_routes_as_agent_crashed(simulator: Server, tmp_path: Path) -> None:
    run = run_evaluator(tmp_path / "crash.json", simulator.port, agent_path("crashes"))
    assert run.code == 0, run.output
    assert [r["status"] for r in run.records] == ["Failed - Agent crashed"] * 3
    assert all(0 < r["scores"]["score_route"] < 100 for r in run.records)
    assert run.document["_checkpoint"]["global_record"]["status"] == "Failed"


def test_hanging_agent_is_stopped_by_the_step_timeout(simulator: Server, tmp_path: Path) -> None:
    began = time.monotonic()
    run = run_evaluator(tmp_path / "hang.json", simulator.port, agent_path("hangs"), timeout=120)
    assert run.code == 0, run.output
    assert [r["status"] for r in run.records] == ["Failed - Agent crashed"] * 3
    assert "hung in run_step" in run.output
    assert time.monotonic() - began < 100


def test_steering_off_the_route_is_a_deviation(simulator: Server, tmp_path: Path) -> None:
    agent = write_agent(
        tmp_path,
        "from lbcloud.tracks.sumo.agent_api import VehicleControl\n"
        "class TestAgent(CompetentAgent):\n"
        "    def run_step(self, input_data, timestamp):\n"
        "        c = super().run_step(input_data, timestamp)\n"
        "        return VehicleControl(throttle=c.throttle, brake=c.brake, steer=-1.0)\n",
    )
    run = run_evaluator(tmp_path / "steer.json", simulator.port, agent, "sumo-dev", "--routes-subset", "0")
    assert run.code == 0, run.output
    (record,) = run.records
    assert record["status"] == "Failed - Agent deviated from the route"
    assert record["infractions"]["route_dev"][0].startswith("Agent deviated from the route at (x=")
    assert 0 < record["scores"]["score_route"] < 100


def test_an_unknown_town_is_bad_input(simulator: Server, tmp_path: Path) -> None:
    routes = tmp_path / "routes.xml"
    routes.write_text(
        '<routes><route id="0" town="Town01"><waypoints><position x="0" y="0" z="0"/>'
        '<position x="10" y="0" z="0"/></waypoints><scenarios/></route></routes>'
    )
    run = run_evaluator(tmp_path / "x.json", simulator.port, agent_path("competent"), str(routes))
    assert run.code == 2
    assert "route id '0': unknown SUMO town 'Town01'" in run.output


def test_invalid_sensors_reject_the_entry_and_stop(simulator: Server, tmp_path: Path) -> None:
    agent = write_agent(
        tmp_path,
        "class TestAgent(CompetentAgent):\n"
        "    def sensors(self):\n        return [{'type': 'sensor.camera.rgb', 'id': 'front'}]\n",
    )
    run = run_evaluator(tmp_path / "rejected.json", simulator.port, agent)
    assert run.code == 3, run.output
    doc = run.document
    assert doc["entry_status"] == "Rejected" and doc["eligible"] is False
    assert [r["status"] for r in run.records] == ["Failed - Agent's sensors were invalid"]
    assert doc["_checkpoint"]["progress"] == [1, 3]
    assert doc["_checkpoint"]["global_record"] == {}


def test_no_simulator_exits_5_and_leaves_the_checkpoint_alone(tmp_path: Path, sumo_cache: Path) -> None:
    checkpoint = tmp_path / "kept.json"
    checkpoint.write_text("previous content")
    run = run_evaluator(checkpoint, free_port(), agent_path("competent"))
    assert run.code == 5
    assert "could not connect to the SUMO server" in run.output
    assert checkpoint.read_text() == "previous content"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--agent", "missing.py"), "no such file"),
        (("--routes-subset", "7"), "Couldn't find the route with id '7' inside the given routes file"),
        (("--routes", "nowhere.xml"), "cannot read"),
        (("--repetitions", "0"), "--repetitions must be at least 1"),
        (("--checkpoint", "/proc/none/x.json"), "--checkpoint: cannot create"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: tuple[str, str], message: str, tmp_path: Path, simulator: Server
) -> None:
    # ``args`` come last, so a second --checkpoint or --routes overrides the first.
    command = [
        sys.executable, "-m", "lbcloud", "track", "sumo", "evaluate", "--agent", agent_path("competent"),
        "--routes", "sumo-dev", "--checkpoint", str(tmp_path / "x.json"), "--port", str(simulator.port), *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert message in done.stdout + done.stderr
    assert not (tmp_path / "x.json").exists()


def test_simulator_killed_mid_route_then_resume_finishes_the_file(sumo_cache: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, sumo_cache)
    checkpoint = tmp_path / "crash.json"
    agent = write_agent(
        tmp_path,
        "class TestAgent(CompetentAgent):\n"
        "    def run_step(self, input_data, timestamp):\n"
        "        time.sleep(0.004)\n        return super().run_step(input_data, timestamp)\n",
    )
    command = [
        sys.executable, "-m", "lbcloud", "track", "sumo", "evaluate", "--agent", agent, "--routes", "sumo-dev",
        "--checkpoint", str(checkpoint), "--port", str(server.port), "--seed", "3",
    ]  # fmt: skip
    evaluator = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while '"RouteScenario_0_rep0"' not in (checkpoint.read_text() if checkpoint.exists() else ""):
            assert evaluator.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(server.sumo_pid(), signal.SIGKILL)
        output, _ = evaluator.communicate(timeout=60)
    finally:
        if evaluator.poll() is None:
            evaluator.kill()
    assert evaluator.returncode == 4, output
    crashed = Run(4, output, checkpoint)
    assert crashed.document["entry_status"] == "Crashed"
    assert crashed.records[-1]["status"] == "Failed - Simulation crashed"
    assert crashed.records[-1]["route_id"] == "RouteScenario_1_rep0"
    assert crashed.document["_checkpoint"]["global_record"] == {}
    assert server.process.wait(timeout=10) != 0

    restarted = start_server(tmp_path, sumo_cache, server.port)
    try:
        resumed = run_evaluator(checkpoint, restarted.port, agent, "sumo-dev", "--seed", "3", "--resume")
    finally:
        restarted.stop()
    assert resumed.code == 0, resumed.output
    assert "starting at instance 1" in resumed.output
    doc = resumed.document
    assert doc["entry_status"] == "Finished"
    assert doc["_checkpoint"]["progress"] == [3, 3]
    assert [r["route_id"] for r in resumed.records] == DEV_IDS
    assert all("crashed" not in r["status"] for r in resumed.records)
    assert resumed.records[0] == crashed.records[0]
    assert doc["sensors"]


def test_resuming_a_finished_file_runs_nothing_and_keeps_the_result(
    competent_dev: Run, simulator: Server, tmp_path: Path
) -> None:
    copy = tmp_path / "finished.json"
    copy.write_text(competent_dev.checkpoint.read_text())
    run = run_evaluator(copy, simulator.port, agent_path("competent"), "sumo-dev", "--seed", "3", "--resume")
    assert run.code == 0
    assert "[1/3]" not in run.output
    assert copy.read_text() == competent_dev.checkpoint.read_text()


@pytest.mark.slow
def test_competent_agent_on_sumo_test_completes_everything_and_scores_at_least_80(
    simulator: Server, tmp_path: Path
) -> None:
    run = run_evaluator(tmp_path / "test.json", simulator.port, agent_path("competent"), "sumo-test", timeout=600)
    assert run.code == 0, run.output
    assert len(run.records) == 10
    assert all(r["scores"]["score_route"] == 100 for r in run.records)
    assert float(run.document["values"][0]) >= 80


def test_a_frozen_simulator_is_a_crash_after_the_simulator_timeout(sumo_cache: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, sumo_cache)
    checkpoint = tmp_path / "frozen.json"
    command = [
        sys.executable, "-m", "lbcloud", "track", "sumo", "evaluate", "--agent", agent_path("slow"),
        "--routes", "sumo-dev", "--checkpoint", str(checkpoint), "--port", str(server.port),
        "--simulator-timeout", "2",
    ]  # fmt: skip
    evaluator = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sumo = server.sumo_pid()
    try:
        deadline = time.monotonic() + 120
        while '"RouteScenario_0_rep0"' not in (checkpoint.read_text() if checkpoint.exists() else ""):
            assert evaluator.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(sumo, signal.SIGSTOP)
        output, _ = evaluator.communicate(timeout=60)
    finally:
        if evaluator.poll() is None:
            evaluator.kill()
        os.kill(sumo, signal.SIGCONT)
        server.stop()
    assert evaluator.returncode == 4, output
    doc = json.loads(checkpoint.read_text())
    assert doc["entry_status"] == "Crashed"
    assert doc["_checkpoint"]["records"][-1]["status"] == "Failed - Simulation crashed"


def test_an_agent_host_started_outside_the_evaluator_drives_every_route_on_one_connection(
    competent_dev: Run, simulator: Server, tmp_path: Path
) -> None:
    # how a container backend runs it: the evaluator waits on a socket, the agent's container connects
    sock = tmp_path / "agent.sock"
    host = subprocess.Popen(
        [sys.executable, "-m", "lbcloud.tracks.sumo.agent_host", "--connect", f"unix:{sock}",
         "--agent", agent_path("competent"), "--connect-timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        run = run_evaluator(
            tmp_path / "external.json", simulator.port, "unused", "sumo-dev", "--seed", "3",
            "--agent-socket", str(sock), "--setup-timeout", "30",
        )  # fmt: skip
        assert host.wait(timeout=30) == 0
    finally:
        if host.poll() is None:
            host.kill()
    assert run.code == 0, run.output
    assert without_wall_clock(run.records) == without_wall_clock(competent_dev.records)


def test_without_an_agent_host_connecting_every_route_fails_as_the_agents(simulator: Server, tmp_path: Path) -> None:
    run = run_evaluator(
        tmp_path / "nobody.json", simulator.port, "unused", "sumo-dev", "--routes-subset", "0",
        "--agent-socket", str(tmp_path / "agent.sock"), "--setup-timeout", "1",
    )  # fmt: skip
    assert run.code == 0, run.output
    assert [r["status"] for r in run.records] == ["Failed - Agent couldn't be set up"]
    assert "did not connect within 1s" in run.output
