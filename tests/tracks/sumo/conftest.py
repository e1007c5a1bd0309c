"""Fixtures of the SUMO track tests: one shared network cache and one simulator server per session."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
AGENTS = REPO_ROOT / "examples" / "agents"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def sumo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network cache shared by every test of the session (set as $LBCLOUD_SUMO_CACHE)."""
    cache = tmp_path_factory.mktemp("sumo-cache")
    previous = os.environ.get("LBCLOUD_SUMO_CACHE")
    os.environ["LBCLOUD_SUMO_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("LBCLOUD_SUMO_CACHE", None)
    else:
        os.environ["LBCLOUD_SUMO_CACHE"] = previous


@dataclass
class Server:
    """A running ``lbcloud track sumo simulator`` process."""

    port: int
    process: subprocess.Popen[bytes]
    pid_file: Path

    def sumo_pid(self) -> int:
        return int(self.pid_file.read_text())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)


def listening_addresses(port: int) -> list[str]:
    """Addresses a socket listens on at ``port`` (read from the kernel: probing would use up a session)."""
    return [c.laddr.ip for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]


def wait_listening(port: int, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something listens on ``port``; give up early if ``process`` (the would-be listener) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening_addresses(port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the simulator server did not listen on 127.0.0.1:{port} (status {process.poll()})")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def start_server(tmp: Path, cache: Path, port: int | None = None) -> Server:
    """Start a simulator server and wait until it listens (probing consumes no TraCI session)."""
    port = port or free_port()
    pid_file = tmp / f"sumo-{port}.pid"
    pid_file.unlink(missing_ok=True)  # a previous server's pid must not pass for this one's
    env = dict(os.environ, LBCLOUD_SUMO_CACHE=str(cache))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lbcloud",
            "track",
            "sumo",
            "simulator",
            "--port",
            str(port),
            "--pid-file",
            str(pid_file),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not pid_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the simulator server did not start")
        time.sleep(0.05)
    wait_listening(port, process=process)
    return Server(port, process, pid_file)


@pytest.fixture(scope="session")
def simulator(sumo_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One simulator server for the session's evaluator tests."""
    server = start_server(tmp_path_factory.mktemp("sim"), sumo_cache)
    yield server
    server.stop()


@dataclass
class Run:
    """The outcome of one evaluator CLI run."""

    code: int
    output: str
    checkpoint: Path

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.checkpoint.read_text())  # type: ignore[no-any-return]

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.document["_checkpoint"]["records"]  # type: ignore[no-any-return]


def run_evaluator(
    checkpoint: Path, port: int, agent: str, routes: str = "sumo-dev", *extra: str, timeout: float = 300
) -> Run:
    """Run ``lbcloud track sumo evaluate`` as a participant's container would."""
    command = [
        sys.executable, "-m", "lbcloud", "track", "sumo", "evaluate",
        "--agent", agent, "--routes", routes, "--checkpoint", str(checkpoint), "--port", str(port),
        "--setup-timeout", "5", "--step-timeout", "1", "--connect-timeout", "3", *extra,
    ]  # fmt: skip
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
    return Run(done.returncode, done.stdout + done.stderr, checkpoint)


def agent_path(name: str) -> str:
    return str(AGENTS / f"{name}.py")
