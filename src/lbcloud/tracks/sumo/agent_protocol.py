"""The agent protocol: how the trusted evaluator and the untrusted agent host talk (version 1).

One stream socket (a unix socket the evaluator creates, or TCP in a pod), one connection, strictly
request/response, the evaluator always asks first after the host's greeting. Each message is a
4-byte big-endian length followed by that many bytes of a UTF-8 JSON object with a ``"type"``.
JSON, never pickle: a message can carry data, not code. See ``docs/sumo-track.md`` for the whole
exchange::

    host      → evaluator  {"type": "hello", "protocol": 1}
    evaluator → host       {"type": "setup", "route_id": ..., "global_plan": [[x, y, z], ...], "config": ...}
    host      → evaluator  {"type": "ready", "sensors": [...]}            (the agent's sensors() answer)
    evaluator → host       {"type": "step", "frame": n, "timestamp": t, "input_data": {id: reading}}
    host      → evaluator  {"type": "control", "throttle": .., "steer": .., "brake": .., "hand_brake": ..}
    evaluator → host       {"type": "destroy"}        host → evaluator {"type": "destroyed"}
    evaluator → host       {"type": "bye"}            (the host exits)

Any request may instead be answered with ``{"type": "error", "stage": ..., "message": ...}`` (the
agent's code raised). Only :mod:`lbcloud.tracks.sumo.agent_api` and the standard library are imported
here: the agent host runs this module in the participant's process or container.
"""

from __future__ import annotations

import json
import math
import select
import socket
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any

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

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 1 << 20
"""Largest message either side accepts (1 MiB): a step's sensor data is a few kilobytes."""
_HEADER = struct.Struct(">I")

# Message types.
HELLO, SETUP, READY, STEP, CONTROL, DESTROY, DESTROYED, BYE, ERROR = (
    "hello", "setup", "ready", "step", "control", "destroy", "destroyed", "bye", "error",
)  # fmt: skip

# Stages an error answer names.
STAGE_LOAD, STAGE_SETUP, STAGE_SENSORS, STAGE_RUN_STEP, STAGE_DESTROY = (
    "load", "setup", "sensors", "run_step", "destroy",
)  # fmt: skip


class ProtocolError(Exception):
    """The peer broke the protocol: malformed frame, oversized or non-JSON message, wrong type."""


class PeerClosed(ProtocolError):
    """The peer closed the connection (or died) where a message was due."""


def encode(message: Mapping[str, Any]) -> bytes:
    """One framed message; raises ProtocolError when it is not JSON-serialisable or too large."""
    try:
        body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as err:
        raise ProtocolError(f"message is not JSON-serialisable: {err}") from None
    if len(body) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """The message in a frame's body; raises ProtocolError unless it is a JSON object with a string type."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ProtocolError(f"message is not UTF-8 JSON: {err}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("message is not a JSON object with a string 'type'")
    return message


class Channel:
    """One end of a connection: framed messages out, a buffered reader in.

    The socket stays in one mode for its whole life (a fixed send timeout, so a peer that stops
    reading cannot block the sender forever); receive deadlines are waited for with ``poll``, so
    one step costs one ``poll`` and one ``recv`` when the answer arrives in one piece.
    """

    def __init__(self, sock: socket.socket, *, send_timeout_s: float | None = None) -> None:
        self.sock = sock
        sock.settimeout(send_timeout_s)
        self._buffer = bytearray()
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def send(self, message: Mapping[str, Any]) -> None:
        """Send one message. Raises ProtocolError (unencodable), TimeoutError or OSError."""
        self.sock.sendall(encode(message))

    def _message(self) -> dict[str, Any] | None:
        buffer = self._buffer
        if len(buffer) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(buffer)
        if size > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"message of {size} bytes exceeds {MAX_MESSAGE_BYTES}")
        end = _HEADER.size + size
        if len(buffer) < end:
            return None
        body = bytes(buffer[_HEADER.size : end])
        del buffer[:end]
        return decode(body)

    def receive(self, *, deadline: float | None = None, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
        """The next message, by ``deadline`` (a ``clock()`` value) or TimeoutError.

        The deadline covers the whole message, so a peer that drips bytes cannot stretch it.
        Raises PeerClosed, ProtocolError (bad frame or content), TimeoutError or OSError.
        """
        while True:
            message = self._message()
            if message is not None:
                return message
            if deadline is not None:
                left_ms = int((deadline - clock()) * 1000)
                if left_ms <= 0 or not self._poll.poll(left_ms):
                    raise TimeoutError("no complete message before the deadline")
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError:  # only without a deadline: the send timeout also bounds a blocked recv
                continue
            if not chunk:
                raise PeerClosed("the peer closed the connection")
            self._buffer += chunk

    def close(self) -> None:
        self.sock.close()


# ------------------------------------------------------------------------------------ sensor data
_READINGS: dict[str, type] = {
    "sumo.speedometer": Speedometer,
    "sumo.gnss": Gnss,
    "sumo.imu": Imu,
    "sumo.route_map": RouteMap,
    "sumo.radar": Radar,
    "sumo.traffic_light": TrafficLight,
}


def _vehicles(radar: Radar) -> list[list[Any]]:
    return [[v.id, v.x, v.y, v.speed, v.distance] for v in radar.vehicles]


_ENCODERS: dict[type, tuple[str, Callable[[Any], Any]]] = {
    Speedometer: ("sumo.speedometer", lambda r: [r.speed]),
    Gnss: ("sumo.gnss", lambda r: [r.x, r.y, r.z, r.heading]),
    Imu: ("sumo.imu", lambda r: [r.acceleration, r.heading]),
    RouteMap: (
        "sumo.route_map",
        lambda r: [r.distance_travelled, r.route_length, r.speed_limit, r.on_route, [list(p) for p in r.points_ahead]],
    ),
    Radar: (
        "sumo.radar",
        lambda r: [_vehicles(r), None if r.leader is None else [r.leader.id, r.leader.gap, r.leader.speed]],
    ),
    TrafficLight: ("sumo.traffic_light", lambda r: [r.light_id, r.state, r.distance]),
}


def encode_reading(reading: Any) -> dict[str, Any]:
    """A sensor reading (one of agent_api's reading classes) as ``{"sensor": type, "value": [fields...]}``.

    ``value`` lists the reading's fields in declaration order (nested readings as lists too)."""
    found = _ENCODERS.get(type(reading))
    if found is None:
        raise ProtocolError(f"not a sensor reading: {type(reading).__name__}")
    kind, fields_of = found
    return {"sensor": kind, "value": fields_of(reading)}


def decode_reading(data: Any) -> Any:
    """The reading object :func:`encode_reading` described; raises ProtocolError."""
    try:
        kind, value = data["sensor"], data["value"]
        if kind == "sumo.radar":
            vehicles, leader = value
            return Radar(
                tuple(DetectedVehicle(*vehicle) for vehicle in vehicles),
                Leader(*leader) if leader is not None else None,
            )
        if kind == "sumo.route_map":
            travelled, length, limit, on_route, points = value
            return RouteMap(travelled, length, limit, on_route, tuple((float(x), float(y)) for x, y in points))
        return _READINGS[kind](*value)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ProtocolError(f"malformed sensor reading: {type(err).__name__}: {err}") from None


def step_message(frame: int, timestamp: float, readings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``step`` request for one simulation step's readings (sensor id → reading)."""
    data = {sensor_id: encode_reading(reading) for sensor_id, reading in readings.items()}
    return {"type": STEP, "frame": frame, "timestamp": timestamp, "input_data": data}


def control_message(control: Any) -> dict[str, Any]:
    """The ``control`` answer for what ``run_step`` returned; raises TypeError for anything unusable."""
    if not all(hasattr(control, name) for name in ("throttle", "brake", "steer")):
        raise TypeError(f"run_step returned {type(control).__name__}, not a VehicleControl")
    try:
        values = [float(control.throttle), float(control.steer), float(control.brake)]
    except (TypeError, ValueError) as err:
        raise TypeError(f"run_step returned a control with a non-numeric field: {err}") from None
    if not all(math.isfinite(v) for v in values):
        raise TypeError(f"run_step returned a control with a non-finite field: {values}")
    hand_brake = bool(getattr(control, "hand_brake", False))
    return {"type": CONTROL, "throttle": values[0], "steer": values[1], "brake": values[2], "hand_brake": hand_brake}


def parse_control(message: Mapping[str, Any]) -> VehicleControl:
    """The VehicleControl in a ``control`` message; raises ProtocolError for a malformed one."""
    try:
        values = [message["throttle"], message["steer"], message["brake"]]
        hand_brake = message.get("hand_brake", False)
    except KeyError as err:
        raise ProtocolError(f"control message without {err}") from None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise ProtocolError(f"control values must be finite numbers, got {values!r}")
    if not isinstance(hand_brake, bool):
        raise ProtocolError(f"hand_brake must be a boolean, got {hand_brake!r}")
    return VehicleControl(
        throttle=float(values[0]), steer=float(values[1]), brake=float(values[2]), hand_brake=hand_brake
    )
