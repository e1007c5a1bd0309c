"""The agent protocol and the evaluator's end of it: framing, readings, and every way a host can misbehave."""

from __future__ import annotations

import io
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lbcloud.tracks.sumo.agent_api import (
    DetectedVehicle,
    Gnss,
    Imu,
    Leader,
    Radar,
    RouteMap,
    Speedometer,
    TrafficLight,
    VehicleControl,
)
from lbcloud.tracks.sumo.agent_link import AgentFault, LogBudget, accept_host, listen, spawn_host
from lbcloud.tracks.sumo.agent_protocol import (
    MAX_MESSAGE_BYTES,
    Channel,
    PeerClosed,
    ProtocolError,
    decode_reading,
    encode,
    encode_reading,
    parse_control,
)
from lbcloud.tracks.sumo.agent_sandbox import AgentLimits, SandboxMode, agent_environment, host_command

from .conftest import AGENTS

READINGS = [
    Speedometer(3.25),
    Gnss(1.0, -2.5, 0.0, 270.0),
    Imu(-0.5, 90.0),
    RouteMap(10.0, 250.0, 13.89, True, ((1.0, 2.0), (3.0, 4.5))),
    Radar((DetectedVehicle("v1", 1.0, 2.0, 3.0, 4.0),), Leader("v1", 4.0, 3.0)),
    Radar(),
    TrafficLight("J1", "red", 20.5),
    TrafficLight(),
]


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: type(r).__name__)
def test_every_reading_crosses_the_boundary_unchanged(reading: object) -> None:
    import json

    assert decode_reading(json.loads(json.dumps(encode_reading(reading)))) == reading


@pytest.mark.parametrize(
    "data", [{}, {"sensor": "sumo.lidar", "value": []}, {"sensor": "sumo.gnss", "value": [1]}, {"sensor": 3}]
)
def test_malformed_readings_are_protocol_errors(data: object) -> None:
    with pytest.raises(ProtocolError):
        decode_reading(data)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "control", "throttle": "1", "steer": 0, "brake": 0},
        {"type": "control", "throttle": float("nan"), "steer": 0, "brake": 0},
        {"type": "control", "throttle": True, "steer": 0, "brake": 0},
        {"type": "control", "steer": 0, "brake": 0},
        {"type": "control", "throttle": 0, "steer": 0, "brake": 0, "hand_brake": "yes"},
    ],
)
def test_malformed_controls_are_protocol_errors(message: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        parse_control(message)


def test_a_control_message_is_a_vehicle_control() -> None:
    message = {"type": "control", "throttle": 1, "steer": -0.25, "brake": 0.0, "hand_brake": False}
    assert parse_control(message) == VehicleControl(throttle=1.0, steer=-0.25)


@pytest.fixture
def pair() -> Iterator[tuple[Channel, socket.socket]]:
    left, right = socket.socketpair()
    yield Channel(left, send_timeout_s=2), right
    left.close()
    right.close()


def test_messages_split_or_batched_arrive_whole(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    data = encode({"type": "a"}) + encode({"type": "b", "n": 1})
    peer.sendall(data[:3])
    peer.sendall(data[3:])
    assert channel.receive(deadline=time.monotonic() + 2)["type"] == "a"
    assert channel.receive(deadline=time.monotonic() + 2) == {"type": "b", "n": 1}


def test_a_peer_dripping_bytes_cannot_stretch_the_deadline(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    frame = encode({"type": "control", "throttle": 1, "steer": 0, "brake": 0})
    stop = threading.Event()

    def drip() -> None:
        for byte in frame:
            if stop.wait(0.05):
                return
            peer.sendall(bytes([byte]))

    thread = threading.Thread(target=drip)
    thread.start()
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        channel.receive(deadline=began + 0.3)
    stop.set()
    thread.join()
    assert time.monotonic() - began < 1.0


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (struct.pack(">I", MAX_MESSAGE_BYTES + 1), ProtocolError),
        (struct.pack(">I", 3) + b"abc", ProtocolError),
        (struct.pack(">I", 2) + b"[]", ProtocolError),
        (struct.pack(">I", 2) + b"\xff\xfe", ProtocolError),
        (b"\x00\x00", PeerClosed),
    ],
)
def test_garbage_and_hang_ups_are_protocol_errors(
    pair: tuple[Channel, socket.socket], raw: bytes, error: type[Exception]
) -> None:
    channel, peer = pair
    peer.sendall(raw)
    peer.shutdown(socket.SHUT_WR)
    with pytest.raises(error):
        channel.receive(deadline=time.monotonic() + 2)


def test_unencodable_messages_are_refused_before_sending() -> None:
    with pytest.raises(ProtocolError):
        encode({"type": "ready", "sensors": [object()]})
    with pytest.raises(ProtocolError):
        encode({"type": "x", "blob": "x" * MAX_MESSAGE_BYTES})


def test_the_log_budget_keeps_its_limit_and_marks_the_cut() -> None:
    sink = io.BytesIO()
    budget = LogBudget(sink, 10)
    budget.write(b"12345678")
    budget.write(b"abcdef")
    budget.write(b"more")
    out = sink.getvalue()
    assert out.startswith(b"12345678ab\n[lbcloud: agent output truncated after 10 bytes")
    assert out.count(b"truncated") == 1 and budget.dropped == 8


def _fake_host(path: Path, script: Callable[[socket.socket], None]) -> threading.Thread:
    def run() -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(path))
        try:
            script(sock)
        finally:
            time.sleep(1.0)  # longer than the evaluator's deadlines below: a silent host, not a closed one
            sock.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (lambda s: s.sendall(encode({"type": "hello", "protocol": 99})), "does not speak protocol 1"),
        (lambda s: s.sendall(encode({"type": "ready"})), "does not speak protocol 1"),
        (lambda s: None, "did not greet"),
        (lambda s: s.sendall(b"GET / HTTP/1.1\r\n\r\n"), "greeting failed"),
    ],
)
def test_a_host_that_does_not_greet_properly_is_an_agent_fault_at_connect(
    tmp_path: Path, script: Callable[[socket.socket], None], message: str
) -> None:
    listener = listen(tmp_path / "agent.sock")
    _fake_host(tmp_path / "agent.sock", script)
    with pytest.raises(AgentFault) as caught:
        accept_host(listener, 0.3)
    assert caught.value.stage == "connect" and message in caught.value.message


def test_answers_of_the_wrong_type_or_late_break_the_link(tmp_path: Path) -> None:
    listener = listen(tmp_path / "agent.sock")

    def host(sock: socket.socket) -> None:
        channel = Channel(sock)
        channel.send({"type": "hello", "protocol": 1})
        channel.receive()  # setup
        channel.send({"type": "control", "throttle": 1, "steer": 0, "brake": 0})

    _fake_host(tmp_path / "agent.sock", host)
    link = accept_host(listener, 2)
    with pytest.raises(AgentFault, match="answered 'control' where 'ready' was due"):
        link.setup("RouteScenario_0_rep0", [], "", 1)
    assert link.broken
    with pytest.raises(AgentFault, match="no longer usable"):
        link.step(0, 0.0, {}, 1)


def test_a_real_host_runs_an_example_agent_and_a_crash_is_the_agents(tmp_path: Path) -> None:
    sink = io.BytesIO()
    link = spawn_host(
        str(AGENTS / "crashes.py"),
        timeout_s=30,
        mode=SandboxMode.AUTO,
        limits=AgentLimits(),
        output=LogBudget(sink, 1 << 20),
    )
    try:
        sensors = link.setup("RouteScenario_0_rep0", [(0.0, 0.0, 0.0)], "", 30)
        assert isinstance(sensors, list)
        faults = []
        for frame in range(200):
            try:
                link.step(frame, frame * 0.2, {"speed": Speedometer(1.0)}, 5)
            except AgentFault as err:
                faults.append(err)
                break
        assert faults and faults[0].stage == "run_step"
    finally:
        link.close()
    assert link.process is not None and link.process.poll() is not None


def test_the_host_environment_holds_nothing_of_the_evaluators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("LBCLOUD_WEB__OPERATOR_TOKEN", "secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    command = host_command(
        str(AGENTS / "competent.py"), tmp_path / "agent.sock", tmp_path, mode=SandboxMode.NONE, limits=AgentLimits()
    )
    assert command.env == agent_environment(str(tmp_path))
    assert set(command.env) == {"PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
    assert command.argv[:3] == [sys.executable, "-m", "lbcloud.tracks.sumo.agent_host"]
    assert os.path.isabs(command.argv[command.argv.index("--agent") + 1])
