"""Plays the pods of CARLA attempts by running the Kubernetes backend's rendered wrapper scripts for
real in a shell, against the CARLA stand-in (fake ``CarlaUE4.sh`` and leaderboard evaluator).

What a kubelet and lbcloud's own containers would do around them is played here:
- the init steps: the contents image's tree and the attempt's route file copied into ``contents``;
- the pod's volumes: one folder per volume, mounted by rewriting ``/lbcloud/`` in the scripts;
- the participant's image: ``$TEAM_AGENT`` / ``$TEAM_CONFIG``, a home with ``agent_sources.sh``, its
  own ``carla`` package on ``PYTHONPATH``, ``nvidia-smi`` seeing the one GPU the agent holds;
- the reporter: writes ``simulator.ready`` once the port listens (co-container layout); at the end
  lbcloud's own ``Reporter`` ships logs, the recording and the record over the real reporter API;
- the kubelet: container exit codes and end times become the pod status the backend judges.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from lbcloud.adapters.backends.kubernetes.manifests import TOKEN_ENV
from lbcloud.entrypoints.reporter import Reporter, ReporterClient
from lbcloud.entrypoints.web.reporter_api import create_router
from lbcloud.services.reporting import ReportingService
from tests.adapters.backends.kubernetes.fake_api import FakeKubeApi
from tests.tracks.carla.agents import CASES, Case, write_home, write_untrusted_carla

STANDIN = Path(__file__).parent / "standin"
CONTENTS = STANDIN / "contents"
GPUS = ("GPU-1111aaaa", "GPU-2222bbbb", "GPU-3333cccc")
AGENT_GPU = GPUS[1]
"""The agent container holds the node's second GPU: the simulator must render on adapter 1."""

FAKE_NVIDIA_SMI = f"""#!/bin/sh
# the agent container sees only its GPU; the simulator container sees all of the node's
case "$*" in
  *index,uuid*) i=0; for g in {" ".join(GPUS)}; do echo "$i, $g"; i=$((i+1)); done ;;
  *) echo {AGENT_GPU} ;;
esac
"""


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _terminated(name: str, code: int, ended: float) -> dict[str, Any]:
    return {
        "name": name, "ready": False, "restartCount": 0, "image": f"{name}:img", "imageID": "",
        "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                 "finishedAt": _stamp(ended)}},
    }  # fmt: skip


@dataclass
class PlayedPod:
    """One Job's pod being played in a background thread."""

    job: dict[str, Any]
    case: Case
    root: Path
    thread: threading.Thread | None = None
    status: dict[str, Any] | None = None
    agent_log: bytes = b""
    simulator_argv: list[str] = field(default_factory=list)


class ShellPods:
    """``on_tick`` of a dispatcher on the fake API: starts each new Job's pod, reports when it ended."""

    def __init__(self, api: FakeKubeApi, reporting: ReportingService, work: Path, plan_file: Path) -> None:
        self.api = api
        self.reporting = reporting
        app = FastAPI()
        app.include_router(create_router(reporting))
        self.http = TestClient(app)
        self.work = work
        self.plan_file = plan_file
        self.played: dict[str, PlayedPod] = {}
        self.bin = work / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        (self.bin / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
        (self.bin / "nvidia-smi").chmod(0o755)
        (self.bin / "python3").symlink_to(sys.executable)
        self.home = write_home(work)
        self.site = write_untrusted_carla(work)
        self.agents = work / "agents"
        self.agents.mkdir(exist_ok=True)

    def step(self, *_: Any) -> None:
        for name, job in list(self.api.objects["jobs"].items()):
            if name not in self.played:
                self._start(name, job)
        for name, played in self.played.items():
            if played.thread is not None and not played.thread.is_alive():
                played.thread = None
                self._report(name, played)

    # ----------------------------------------------------------------------------------- playing
    def _start(self, name: str, job: dict[str, Any]) -> None:
        image = job["spec"]["template"]["spec"]["containers"]
        agent_image = next(c["image"] for c in image if c["name"] == "agent")
        case = CASES[agent_image.split("/")[-1].split(":")[0]]
        root = self.work / "pods" / name
        played = PlayedPod(job, case, root)
        self.played[name] = played
        self.api.set_pod_status(name, {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}]})
        played.thread = threading.Thread(target=self._play, args=(played,), daemon=True)
        played.thread.start()

    def _containers(self, job: dict[str, Any]) -> dict[str, dict[str, Any]]:
        pod = job["spec"]["template"]["spec"]
        return {c["name"]: c for c in [*pod["initContainers"], *pod["containers"]]}

    def _play(self, played: PlayedPod) -> None:
        root, case = played.root, played.case
        containers = self._containers(played.job)
        for volume in ("logs", "results", "run", "simstate", "recordings", "staging"):
            (root / volume).mkdir(parents=True, exist_ok=True)
        shutil.copytree(CONTENTS, root / "contents")  # init containers: contents + prepare
        prepare = containers["prepare"]["command"]
        routes_name = Path(prepare[prepare.index("--routes-file") + 1]).name
        (root / "contents" / "routes").mkdir(exist_ok=True)
        (root / "contents" / "routes" / routes_name).write_text('<routes><route id="0" town="Town01"/></routes>\n')

        def script(name: str) -> str:
            return str(containers[name]["command"][2]).replace("/lbcloud/", f"{root}/")

        port = int(containers["simulator"]["ports"][0]["containerPort"])
        co_container = "restartPolicy" not in containers["simulator"]
        base = {"PATH": f"{self.bin}:/usr/bin:/bin", "LANG": "C.UTF-8"}
        sim_env = {**base, "FAKE_CARLA_PLAN": str(self.plan_file), "LBCLOUD_STANDIN_PYTHON": sys.executable}
        agent_env = {**base, "HOME": str(self.home), "PYTHONPATH": str(self.site)}
        for item in containers["agent"].get("env", []):
            agent_env[item["name"]] = item["value"]
        if case.team_agent:
            agent_env["TEAM_AGENT"] = str(case.write_agent(self.agents))
        if case.team_config:
            agent_env["TEAM_CONFIG"] = str(self.agents / "config.yaml")

        def probe() -> None:  # the reporter's probe (co-container) or the startup probe (sidecar)
            deadline = time.monotonic() + 30
            while not _listening(port) and time.monotonic() < deadline:
                time.sleep(0.05)
            if co_container:
                (root / "run" / "simulator.ready").write_text("ready\n")

        simulator = subprocess.Popen(["/bin/sh", "-c", script("simulator")], env=sim_env, start_new_session=True)
        if co_container:  # both start together: the simulator waits for the agent's GPU
            threading.Thread(target=probe, daemon=True).start()
        else:  # native sidecar: the agent starts once the startup probe passed
            probe()
        agent = subprocess.Popen(["/bin/sh", "-c", script("agent")], env=agent_env, start_new_session=True)
        agent_code = agent.wait(timeout=120)
        agent_end = time.time()
        if not co_container and simulator.poll() is None:  # the kubelet stops native sidecars last
            time.sleep(0.2)
            os.killpg(simulator.pid, 15)
        sim_code = simulator.wait(timeout=30)
        died = root / "simstate" / "simulator.exit"
        # a simulator that ended on its own did so when it wrote its death file
        sim_end = died.stat().st_mtime if died.exists() else time.time()
        argv_file = Path(f"{self.plan_file}.argv")
        lines = argv_file.read_text(encoding="utf-8").splitlines() if argv_file.exists() else []
        played.simulator_argv = next(
            (argv for argv in map(json.loads, reversed(lines)) if f"-carla-rpc-port={port}" in argv), []
        )
        played.agent_log = (root / "logs" / "agent.log").read_bytes()
        failed = agent_code != 0 or (co_container and sim_code != 0)
        played.status = {
            "phase": "Failed" if failed else "Succeeded",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                _terminated("agent", agent_code, agent_end),
                _terminated("simulator", sim_code, sim_end),
            ],
        }

    # --------------------------------------------------------------------------------- reporting
    def _report(self, name: str, played: PlayedPod) -> None:
        containers = self._containers(played.job)
        token = next(e["value"] for e in containers["reporter"]["env"] if e["name"] == TOKEN_ENV)
        attempt_id = int(played.job["metadata"]["labels"]["lbcloud.io/attempt"])
        argv = [str(a).replace("/lbcloud/", f"{played.root}/") for a in containers["reporter"]["command"]]

        def option(name: str) -> str:
            return argv[argv.index(name) + 1]

        reporter = Reporter(
            ReporterClient(self.http, attempt_id, token, max_wait_s=0.01),
            route_id=option("--route-id"),
            checkpoint=Path(option("--checkpoint")),
            logs_dir=Path(option("--logs-dir")),
            run_dir=Path(option("--run-dir")),
            recordings_dir=Path(option("--recordings-dir")),
        )
        reporter.finish()
        assert played.status is not None
        self.api.set_pod_status(name, played.status)

    def stop(self) -> None:
        for played in self.played.values():
            if played.thread is not None:
                played.thread.join(timeout=60)

