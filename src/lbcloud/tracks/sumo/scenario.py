"""One route instance as SUMO input: the ego's roads and vehicle, and seeded background traffic.

Everything here is a pure function of the route definition, the repetition and the evaluator's
seed, so two machines build byte-identical SUMO inputs for the same instance.
"""

from __future__ import annotations

import random
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from lbcloud.domain.errors import InputError
from lbcloud.tracks.sumo.network import Town, network_file, road_network

Point = tuple[float, float, float]

EGO_ID = "hero"
STEP_LENGTH_S = 0.2
BUDGET_BASE_S = 60.0
BUDGET_MIN_SPEED_MS = 2.5
INITIAL_VEHICLES_PER_KM = 5


@dataclass(frozen=True, slots=True)
class RouteDefinition:
    """A route as the SUMO track needs it: id, town, waypoints and the generator's extra attributes."""

    route_id: str
    town: Town
    waypoints: tuple[Point, ...]
    seed: int = 0
    traffic_per_min: int = 24


@dataclass(frozen=True, slots=True)
class ScenarioFiles:
    """The files of one loaded instance and the ego's roads."""

    net_file: Path
    routes_file: Path
    edges: tuple[str, ...]
    seed: int


def timeout_budget_s(route_length_m: float) -> float:
    """Simulated seconds the ego may take for a route of this length before ``Route timeout.``."""
    return BUDGET_BASE_S + route_length_m / BUDGET_MIN_SPEED_MS


def instance_seed(route: RouteDefinition, repetition: int, seed: int) -> int:
    """The SUMO/traffic seed of one instance (stable across machines and Python versions)."""
    return zlib.crc32(f"{seed}:{route.route_id}:{route.seed}:{repetition}".encode()) & 0x7FFFFFFF


def _nearest_edge(net: Any, x: float, y: float) -> str:
    for radius in (2.0, 10.0, 30.0):
        with warnings.catch_warnings():  # sumolib's note that the optional rtree module is absent
            warnings.simplefilter("ignore", UserWarning)
            candidates = net.getNeighboringEdges(x, y, radius)
        if candidates:
            edge, _ = min(candidates, key=lambda item: (item[1], item[0].getID()))
            return str(edge.getID())
    raise InputError(f"waypoint ({x}, {y}) is not on any road of the network")


def ego_edges(net: Any, waypoints: Sequence[Point]) -> tuple[str, ...]:
    """The roads through the waypoints: the nearest road of each point, joined by shortest paths."""
    if len(waypoints) < 2:
        raise InputError("a route needs at least two waypoints")
    picked: list[str] = []
    for x, y, _ in waypoints:
        edge = _nearest_edge(net, x, y)
        if not picked or picked[-1] != edge:
            picked.append(edge)
    edges: list[str] = [picked[0]]
    for edge in picked[1:]:
        path, _ = net.getShortestPath(net.getEdge(edges[-1]), net.getEdge(edge))
        if not path:
            raise InputError(f"no road connects {edges[-1]} to {edge}")
        edges.extend(str(e.getID()) for e in path[1:])
    return tuple(edges)


def _background(net: Any, rng: random.Random, route_length_m: float, per_min: int) -> list[str]:
    edges = sorted(net.getEdges(), key=lambda e: e.getID())
    total_km = sum(e.getLength() for e in edges) / 1000
    horizon = timeout_budget_s(route_length_m)
    departs = [0.0] * round(INITIAL_VEHICLES_PER_KM * total_km)
    if per_min > 0:
        period = 60.0 / per_min
        departs += [round(period * (i + 1), 1) for i in range(int(horizon / period))]
    lines: list[str] = []
    for number, depart in enumerate(departs):
        start, end = rng.sample(edges, 2)
        path, _ = net.getShortestPath(start, end)
        if not path:
            continue
        position = "random" if depart == 0.0 else "base"
        lines.append(
            f'    <vehicle id="{1000 + number}" type="car" depart="{depart:.1f}" departPos="{position}">'
            f'<route edges="{" ".join(e.getID() for e in path)}"/></vehicle>'
        )
    return lines


def build_scenario(route: RouteDefinition, repetition: int, seed: int, folder: Path) -> ScenarioFiles:
    """Write the SUMO route file of one instance into ``folder`` and return what the evaluator loads."""
    net = road_network(route.town)
    edges = ego_edges(net, route.waypoints)
    length = sum(net.getEdge(edge).getLength() for edge in edges)
    scenario_seed = instance_seed(route, repetition, seed)
    rng = random.Random(scenario_seed)
    lines = [
        "<routes>",
        '    <vType id="hero_type" vClass="passenger" accel="3.0" decel="8.0" emergencyDecel="9.0" '
        'length="4.5" maxSpeed="30" sigma="0" speedFactor="1" color="1,0,0"/>',
        '    <vType id="car" vClass="passenger" accel="2.6" decel="4.5" sigma="0.5" length="4.5" '
        'speedFactor="normc(1.0,0.08,0.8,1.2)"/>',
        f'    <vehicle id="{EGO_ID}" type="hero_type" depart="0.0" departPos="0" departSpeed="0">'
        f"<route edges={quoteattr(' '.join(edges))}/></vehicle>",
        *_background(net, rng, length, route.traffic_per_min),
        "</routes>",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    routes_file = folder / f"route{route.route_id}_rep{repetition}.rou.xml"
    routes_file.write_text("\n".join(lines) + "\n")
    return ScenarioFiles(network_file(route.town), routes_file, edges, scenario_seed)


def load_arguments(files: ScenarioFiles) -> list[str]:
    """The TraCI ``load`` arguments of an instance: network, traffic, step, seed and collision checks."""
    return [
        "--net-file", str(files.net_file),
        "--route-files", str(files.routes_file),
        "--step-length", str(STEP_LENGTH_S),
        "--seed", str(files.seed),
        "--collision.action", "warn",
        "--collision.check-junctions", "true",
        "--time-to-teleport", "120",
        "--ignore-route-errors", "true",
        "--no-step-log", "true",
        "--no-warnings", "true",
    ]  # fmt: skip
