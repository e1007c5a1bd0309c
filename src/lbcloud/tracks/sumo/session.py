"""A TraCI session with the SUMO server: load an instance, observe the ego, apply controls, step.

Every TraCI failure (server gone, connection reset, socket timeout, load error) surfaces as
:class:`SimulationCrashed`, which the evaluator records as ``Failed - Simulation crashed``.
"""

from __future__ import annotations

import math
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lbcloud.domain.errors import Unavailable
from lbcloud.tracks.sumo.agent_api import (
    DetectedVehicle,
    Gnss,
    Imu,
    Leader,
    Radar,
    RouteMap,
    SensorConfig,
    Speedometer,
    TrafficLight,
    VehicleControl,
)
from lbcloud.tracks.sumo.criteria import Collision, LightAhead, Observation
from lbcloud.tracks.sumo.scenario import EGO_ID, STEP_LENGTH_S

MAX_ACCEL = 3.0
MAX_BRAKE = 8.0
ROLLING_DECEL = 0.3
MAX_SPEED = 30.0
TRAFFIC_RADIUS_M = 50.0
_ALWAYS = (-1073741824.0, -1073741824.0)
LIGHT_RANGE_M = 150.0
_STATE_NAMES = {"r": "red", "R": "red", "y": "yellow", "Y": "yellow", "u": "red"}


class SimulationCrashed(Exception):
    """The simulator died, stopped answering, or refused to load the instance."""


def _traci_errors() -> tuple[type[BaseException], ...]:
    import traci

    return (traci.exceptions.FatalTraCIError, traci.exceptions.TraCIException, OSError, EOFError)


@dataclass(frozen=True, slots=True)
class EgoStart:
    """What is known once the ego is in the simulation: its route length along the lanes (m)."""

    route_length_m: float


class SumoSession:
    """One evaluator's TraCI connection (use :meth:`connect`)."""

    def __init__(self, connection: Any, step_timeout_s: float) -> None:
        self._conn = connection
        self._timeout = step_timeout_s
        self._edges: tuple[str, ...] = ()
        self._edge_set: frozenset[str] = frozenset()
        self._points: tuple[tuple[float, float, float], ...] = ()
        self._route_length = 0.0
        self._turned = False
        self._speed_limits: dict[str, float] = {}
        self._context_radius = TRAFFIC_RADIUS_M
        self.batch_commands = True
        """Send each step's speed command with the step itself (one TraCI round trip per step, not two)."""

    @classmethod
    def connect(cls, port: int, *, connect_timeout_s: float = 10.0, step_timeout_s: float = 30.0) -> SumoSession:
        """Connect to a server on 127.0.0.1:``port``, retrying for ``connect_timeout_s``; raises Unavailable."""
        import traci

        deadline = time.monotonic() + connect_timeout_s
        last: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                conn = traci.connect(
                    port=port, host="127.0.0.1", numRetries=0, label=f"lbcloud-{port}-{time.time_ns()}"
                )
            except _traci_errors() as err:
                last = err
                time.sleep(0.1)
                continue
            sock = getattr(conn, "_socket", None)
            if isinstance(sock, socket.socket):
                sock.settimeout(step_timeout_s)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return cls(conn, step_timeout_s)
        raise Unavailable(
            f"could not connect to the SUMO server on 127.0.0.1:{port} within {connect_timeout_s:g}s ({last})"
        )

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except _traci_errors() as err:
            raise SimulationCrashed(f"{type(err).__name__}: {err}".strip()) from err

    def load(
        self,
        arguments: Sequence[str],
        edges: Sequence[str],
        points: Sequence[tuple[float, float, float]],
        sensor_range_m: float = 0.0,
    ) -> EgoStart:
        """Load an instance and step until the ego is on the road; returns its route length.

        ``sensor_range_m`` is the largest range the agent's sensors need (nearby vehicles, leader).
        """
        import traci.constants as tc

        self._context_radius = max(TRAFFIC_RADIUS_M, sensor_range_m)

        self._edges, self._edge_set, self._points = tuple(edges), frozenset(edges), tuple(points)
        self._turned = False
        self._call(self._conn.load, list(arguments))
        for _ in range(50):
            self._call(self._conn.simulationStep)
            if EGO_ID in self._call(self._conn.vehicle.getIDList):
                break
        else:
            raise SimulationCrashed("the ego vehicle could not be inserted")
        vehicle = self._conn.vehicle
        self._call(vehicle.setSpeedMode, EGO_ID, 0)
        self._call(vehicle.setSpeed, EGO_ID, 0.0)
        # Everything the step loop reads arrives with each simulationStep reply: no extra round trips.
        variables = [
            tc.VAR_SPEED, tc.VAR_POSITION3D, tc.VAR_ROAD_ID, tc.VAR_LANE_ID, tc.VAR_DISTANCE, tc.VAR_ANGLE,
            tc.VAR_ACCELERATION, tc.VAR_NEXT_TLS, tc.VAR_LEADER, tc.VAR_LANEPOSITION,
        ]  # fmt: skip
        self._call(vehicle.subscribe, EGO_ID, variables, *_ALWAYS, {tc.VAR_LEADER: ("d", self._context_radius)})
        self._call(
            vehicle.subscribeContext, EGO_ID, tc.CMD_GET_VEHICLE_VARIABLE, self._context_radius,
            [tc.VAR_POSITION, tc.VAR_SPEED, tc.VAR_ROAD_ID, tc.VAR_LANEPOSITION],
        )  # fmt: skip
        self._call(self._conn.simulation.subscribe, [tc.VAR_TIME, tc.VAR_COLLIDING_VEHICLES_IDS])
        last = self._edges[-1]
        last_length = self._call(self._conn.lane.getLength, f"{last}_0")
        self._route_length = float(self._call(vehicle.getDrivingDistance, EGO_ID, last, last_length))
        return EgoStart(self._route_length)

    def simulation_time(self) -> float:
        return float(self._call(self._conn.simulation.getTime))

    def observe(self) -> tuple[Observation, dict[str, Any]]:
        """The ego's state after the last step, and the raw readings sensors are built from."""
        import traci.constants as tc

        vehicle = self._conn.vehicle
        values = vehicle.getSubscriptionResults(EGO_ID)
        simulation = self._conn.simulation.getSubscriptionResults()
        now = float(simulation.get(tc.VAR_TIME, 0.0))
        if not values:
            arrived = EGO_ID in self._call(self._conn.simulation.getArrivedIDList)
            return Observation(now, 0, 0, 0, 0, "", 0, present=False, arrived=arrived), {}
        x, y, z = values[tc.VAR_POSITION3D]
        road = str(values[tc.VAR_ROAD_ID])
        speed = float(values[tc.VAR_SPEED])
        lane_position = float(values[tc.VAR_LANEPOSITION])
        context = vehicle.getContextSubscriptionResults(EGO_ID) or {}
        others: list[tuple[str, float, float, float, str]] = []
        traffic: list[float] = []
        for other, data in context.items():
            if other == EGO_ID:
                continue
            ox, oy = data[tc.VAR_POSITION]
            other_speed = float(data[tc.VAR_SPEED])
            other_road = str(data[tc.VAR_ROAD_ID])
            others.append((other, ox, oy, other_speed, other_road))
            # Surrounding traffic: vehicles ahead of the ego on its road, which it could keep up with.
            ahead = float(data[tc.VAR_LANEPOSITION]) - lane_position
            if other_road == road and 0 < ahead <= TRAFFIC_RADIUS_M:
                traffic.append(other_speed)
        light: LightAhead | None = None
        upcoming = values.get(tc.VAR_NEXT_TLS) or ()
        if upcoming:
            light_id, _, distance, state = upcoming[0]
            if distance <= LIGHT_RANGE_M:
                light = LightAhead(str(light_id), float(distance), str(state))
        collisions: list[Collision] = []
        if EGO_ID in (simulation.get(tc.VAR_COLLIDING_VEHICLES_IDS) or ()):
            for event in self._call(self._conn.simulation.getCollisions):
                if EGO_ID not in (event.collider, event.victim):
                    continue
                other = event.victim if event.collider == EGO_ID else event.collider
                other_type = event.victimType if event.collider == EGO_ID else event.colliderType
                collisions.append(Collision(str(other), f"vehicle.sumo.{other_type}"))
        on_route = road.startswith(":") or road in self._edge_set
        obs = Observation(
            time=now, x=float(x), y=float(y), z=float(z), speed=speed, road_id=road,
            odometer=float(values[tc.VAR_DISTANCE]), light=light, collisions=tuple(collisions),
            traffic_speeds=tuple(traffic), on_route=on_route,
        )  # fmt: skip
        raw = {
            "values": values,
            "others": others,
            "lane": str(values[tc.VAR_LANE_ID]),
            "angle": float(values[tc.VAR_ANGLE]),
            "acceleration": float(values[tc.VAR_ACCELERATION]),
            "upcoming": upcoming,
            "leader": values.get(tc.VAR_LEADER),
        }
        return obs, raw

    def readings(self, sensors: Sequence[SensorConfig], obs: Observation, raw: dict[str, Any]) -> dict[str, Any]:
        """Each requested sensor's reading for this step."""
        out: dict[str, Any] = {}
        for sensor in sensors:
            if sensor.type == "sumo.speedometer":
                out[sensor.id] = Speedometer(obs.speed)
            elif sensor.type == "sumo.gnss":
                out[sensor.id] = Gnss(obs.x, obs.y, obs.z, raw["angle"])
            elif sensor.type == "sumo.imu":
                out[sensor.id] = Imu(raw["acceleration"], raw["angle"])
            elif sensor.type == "sumo.route_map":
                out[sensor.id] = self._route_map(sensor.range, obs, raw["lane"])
            elif sensor.type == "sumo.radar":
                out[sensor.id] = self._radar(sensor.range, obs, raw["others"], raw["leader"])
            elif sensor.type == "sumo.traffic_light":
                out[sensor.id] = self._traffic_light(sensor.range, raw["upcoming"])
        return out

    def _route_map(self, horizon: float, obs: Observation, lane: str) -> RouteMap:
        if lane not in self._speed_limits:
            self._speed_limits[lane] = float(self._call(self._conn.lane.getMaxSpeed, lane))
        ahead = tuple((px, py) for px, py, _ in self._points if 0 < math.hypot(px - obs.x, py - obs.y) <= horizon)
        return RouteMap(
            min(obs.odometer, self._route_length), self._route_length, self._speed_limits[lane], obs.on_route, ahead
        )

    def _radar(
        self,
        reach: float,
        obs: Observation,
        others: list[tuple[str, float, float, float, str]],
        found: tuple[str, float] | None,
    ) -> Radar:
        seen = [
            DetectedVehicle(other, ox, oy, speed, math.hypot(ox - obs.x, oy - obs.y))
            for other, ox, oy, speed, _ in others
        ]
        seen = sorted((v for v in seen if v.distance <= reach), key=lambda v: (v.distance, v.id))
        leader: Leader | None = None
        if found and found[0] and float(found[1]) <= reach:
            leader_speed = next((v.speed for v in seen if v.id == found[0]), None)
            if leader_speed is None:
                leader_speed = float(self._call(self._conn.vehicle.getSpeed, found[0]))
            leader = Leader(str(found[0]), float(found[1]), leader_speed)
        return Radar(tuple(seen), leader)

    def _traffic_light(self, reach: float, upcoming: Sequence[Any]) -> TrafficLight:
        if not upcoming:
            return TrafficLight()
        light_id, _, distance, state = upcoming[0]
        if distance > reach:
            return TrafficLight()
        return TrafficLight(str(light_id), _STATE_NAMES.get(str(state), "green"), float(distance))

    def apply(self, control: VehicleControl, speed: float, road: str) -> None:
        """Turn the command into the ego's speed for the next step (and an off-route turn if steered)."""
        throttle = min(max(float(control.throttle), 0.0), 1.0)
        brake = 1.0 if control.hand_brake else min(max(float(control.brake), 0.0), 1.0)
        accel = throttle * MAX_ACCEL - brake * MAX_BRAKE
        if throttle == 0 and brake == 0:
            accel = -ROLLING_DECEL
        target = min(max(speed + accel * STEP_LENGTH_S, 0.0), MAX_SPEED)
        if self.batch_commands:
            self._queue_speed(target)
        else:
            self._call(self._conn.vehicle.setSpeed, EGO_ID, target)
        if abs(float(control.steer)) > 0.5 and not self._turned and road in self._edge_set:
            self._turn(road, "l" if control.steer < 0 else "r")

    def _queue_speed(self, target: float) -> None:
        """Queue ``vehicle.setSpeed`` without a round trip: it travels with the next command (TraCI takes
        several commands per message and answers each in order; the client checks every status)."""
        import traci.constants as tc

        conn = self._conn
        with conn._lock:
            ident = EGO_ID.encode("utf8")
            packed = conn._pack("d", target)
            length = len(packed) + 1 + 1 + 1 + 4 + len(ident)
            conn._queue.append(tc.CMD_SET_VEHICLE_VARIABLE)
            conn._string += struct.pack("!BBB", length, tc.CMD_SET_VEHICLE_VARIABLE, tc.VAR_SPEED)
            conn._string += struct.pack("!i", len(ident)) + ident + packed

    def _turn(self, road: str, direction: str) -> None:
        links = self._call(self._conn.lane.getLinks, f"{road}_0")
        position = self._edges.index(road)
        planned = self._edges[position + 1] if position + 1 < len(self._edges) else None
        for link in links:
            to_lane, link_direction = str(link[0]), str(link[6])
            to_edge = to_lane.rsplit("_", 1)[0]
            if link_direction.lower() == direction and to_edge != planned:
                self._call(self._conn.vehicle.setRoute, EGO_ID, [road, to_edge])
                self._turned = True
                return

    def step(self) -> None:
        self._call(self._conn.simulationStep)

    def close(self) -> None:
        """End the session (the server starts a fresh one); never raises."""
        try:
            self._conn.close()
        except Exception:  # closing a dead connection: nothing left to do
            pass
