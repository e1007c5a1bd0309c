"""The simulator server process: loopback only, one session after another, clean stop, dies with SUMO."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lbcloud.tracks.sumo.session import SumoSession

from .conftest import free_port, listening_addresses, start_server, wait_listening

pytestmark = pytest.mark.sumo


def test_server_listens_on_loopback_only_and_stops_cleanly_on_sigterm(sumo_cache: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, sumo_cache)
    wait_listening(server.port)
    assert listening_addresses(server.port) == ["127.0.0.1"]
    sumo = psutil.Process(server.sumo_pid())
    assert sumo.ppid() == server.process.pid
    assert server.stop() == 0
    assert not sumo.is_running() or sumo.status() == psutil.STATUS_ZOMBIE


def test_server_serves_one_session_after_another(sumo_cache: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, sumo_cache)
    try:
        pids = []
        for _ in range(2):
            session = SumoSession.connect(server.port, connect_timeout_s=20)
            assert session.simulation_time() == 0.0
            pids.append(server.sumo_pid())
            session.close()
            deadline = time.monotonic() + 10
            while server.sumo_pid() == pids[-1] and time.monotonic() < deadline:
                time.sleep(0.05)
        assert pids[0] != pids[1]
        assert server.process.poll() is None
    finally:
        server.stop()


def test_server_dies_when_its_sumo_is_killed(sumo_cache: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, sumo_cache)
    wait_listening(server.port)
    os.kill(server.sumo_pid(), signal.SIGKILL)
    assert server.process.wait(timeout=10) != 0


def test_a_killed_server_restarts_on_its_port_while_old_connections_linger(sumo_cache: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, sumo_cache)
    sumo = psutil.Process(server.sumo_pid())
    client = socket.create_connection(("127.0.0.1", server.port))
    deadline = time.monotonic() + 20
    while not any(c.status == "ESTABLISHED" for c in sumo.net_connections("tcp")):
        assert time.monotonic() < deadline, "SUMO never accepted the connection"
        time.sleep(0.02)
    sumo.kill()  # SUMO closes first, so its side of the connection lingers in TIME_WAIT
    assert server.process.wait(timeout=10) != 0
    client.close()
    lingering = [c for c in psutil.net_connections("tcp") if c.laddr.port == server.port and c.status == "TIME_WAIT"]
    assert lingering, "the killed server left no connection in TIME_WAIT; the test would prove nothing"
    restarted = start_server(tmp_path, sumo_cache, server.port)
    try:
        session = SumoSession.connect(restarted.port, connect_timeout_s=20)
        assert session.simulation_time() == 0.0
        session.close()
    finally:
        restarted.stop()


def test_a_busy_port_makes_the_server_exit_with_an_error(sumo_cache: Path, tmp_path: Path) -> None:
    first = start_server(tmp_path, sumo_cache)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lbcloud", "track", "sumo", "simulator", "--port", str(first.port)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 8
        assert f"error: port {first.port} on 127.0.0.1 is already in use" in done.stderr
    finally:
        first.stop()


def test_a_client_that_goes_away_does_not_stop_the_server(sumo_cache: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, sumo_cache)
    try:
        first = server.sumo_pid()
        with socket.create_connection(("127.0.0.1", server.port)):
            pass
        deadline = time.monotonic() + 10
        while server.sumo_pid() == first and time.monotonic() < deadline:
            time.sleep(0.05)
        wait_listening(server.port)
        assert server.process.poll() is None
        session = SumoSession.connect(server.port, connect_timeout_s=10)
        assert session.simulation_time() == 0.0
        session.close()
    finally:
        server.stop()


def test_sumo_does_not_outlive_a_killed_server(sumo_cache: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, sumo_cache)
    sumo = psutil.Process(server.sumo_pid())
    server.process.kill()
    server.process.wait(timeout=10)
    sumo.wait(timeout=10)
    assert listening_addresses(server.port) == []


def test_once_mode_is_sumo_itself_and_ends_after_one_session(sumo_cache: Path, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lbcloud", "track", "sumo", "simulator", "--port", str(port), "--once"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port)
        assert psutil.Process(process.pid).name() == "sumo"
        session = SumoSession.connect(port, connect_timeout_s=10)
        assert session.simulation_time() == 0.0
        session.close()
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
