"""Ego route sets of the SUMO track, generated deterministically from a seed.

A route set is a leaderboard 2.x route file: ``<routes><route id town seed traffic>`` with
``<waypoints>`` (the start of the first road, the middle of every road on the way, the end of the last
one) and an empty ``<scenarios/>``. ``seed`` and ``traffic`` (background vehicles inserted per minute)
are extra attributes the evaluator uses to build the same background traffic on every machine.
"""

from __future__ import annotations

import itertools
import random
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lbcloud.domain.errors import InputError
from lbcloud.tracks.sumo.network import Town, road_network

Point = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class RouteSetSpec:
    """What to generate: ``count`` routes over ``towns`` with lengths from ``min_length_m`` to ``max_length_m``.

    Target lengths grow geometrically with the route id, so route 0 is the shortest.
    """

    seed: int
    count: int
    min_length_m: float
    max_length_m: float
    towns: tuple[Town, ...]
    traffic_per_min: int = 24

    def __post_init__(self) -> None:
        if self.count < 1 or not self.towns:
            raise InputError("a route set needs at least one route and one town")
        if not 0 < self.min_length_m <= self.max_length_m:
            raise InputError(f"route lengths must satisfy 0 < min <= max, got {self.min_length_m}, {self.max_length_m}")


PRESETS: dict[str, RouteSetSpec] = {
    "sumo-dev": RouteSetSpec(seed=11, count=3, min_length_m=250, max_length_m=500, towns=(Town(4, 4, 120),)),
    "sumo-test": RouteSetSpec(
        seed=2024, count=10, min_length_m=260, max_length_m=1550, towns=(Town(5, 7, 130), Town(6, 6, 150))
    ),
}
"""The route sets shipped as package data (``data/<name>.xml``), made by ``lbcloud track sumo generate --preset``."""


@dataclass(frozen=True, slots=True)
class EgoRoute:
    """One generated route: id, town, the roads it follows, its waypoints and length along the roads."""

    route_id: str
    town: Town
    edges: tuple[str, ...]
    waypoints: tuple[Point, ...]
    length_m: float
    seed: int
    traffic_per_min: int


def _lane_points(edge: Any) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in edge.getLanes()[0].getShape()]


def _midpoint(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    pairs = list(itertools.pairwise(points))
    lengths = [((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5 for a, b in pairs]
    half = sum(lengths) / 2
    for (a, b), seg in zip(pairs, lengths, strict=True):
        if half <= seg and seg > 0:
            t = half / seg
            return a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
        half -= seg
    return points[-1]


def route_waypoints(net: Any, edges: Sequence[str]) -> tuple[Point, ...]:
    """Start of the first road, middle of each road, end of the last road (rounded to cm)."""
    shapes = [_lane_points(net.getEdge(edge)) for edge in edges]
    points: list[tuple[float, float]] = [shapes[0][0], *(_midpoint(shape) for shape in shapes), shapes[-1][-1]]
    return tuple((round(x, 2), round(y, 2), 0.0) for x, y in points)


def _pick_route(net: Any, rng: random.Random, target: float, used: set[tuple[str, ...]]) -> tuple[str, ...]:
    edges = sorted(net.getEdges(), key=lambda e: e.getID())
    best: tuple[str, ...] | None = None
    best_error = float("inf")
    for _ in range(4000):
        start, end = rng.sample(edges, 2)
        path, cost = net.getShortestPath(start, end)
        if not path or len(path) < 2:
            continue
        ids = tuple(e.getID() for e in path)
        if ids in used:
            continue
        error = abs(cost - target) / target
        if error < best_error:
            best, best_error = ids, error
        if error < 0.08:
            break
    if best is None:
        raise InputError(f"could not find a route of about {target:.0f} m")
    return best


def generate_route_set(spec: RouteSetSpec) -> list[EgoRoute]:
    """The routes of ``spec`` (same spec, same routes, on any machine)."""
    rng = random.Random(spec.seed)
    routes: list[EgoRoute] = []
    used: set[tuple[str, ...]] = set()
    for index in range(spec.count):
        fraction = index / (spec.count - 1) if spec.count > 1 else 0.0
        target = spec.min_length_m * (spec.max_length_m / spec.min_length_m) ** fraction
        town = spec.towns[index % len(spec.towns)]
        net = road_network(town)
        edges = _pick_route(net, rng, target, used)
        used.add(edges)
        length = sum(net.getEdge(edge).getLength() for edge in edges)
        routes.append(
            EgoRoute(
                route_id=str(index),
                town=town,
                edges=edges,
                waypoints=route_waypoints(net, edges),
                length_m=round(length, 2),
                seed=rng.randrange(1, 2**31),
                traffic_per_min=spec.traffic_per_min,
            )
        )
    return routes


def route_set_xml(routes: Sequence[EgoRoute]) -> str:
    """The route file text (leaderboard 2.x shape, two-space indent, trailing newline)."""
    root = ET.Element("routes")
    for route in routes:
        element = ET.SubElement(
            root,
            "route",
            {
                "id": route.route_id,
                "town": route.town.name,
                "seed": str(route.seed),
                "traffic": str(route.traffic_per_min),
                "length": f"{route.length_m:.2f}",
            },
        )
        waypoints = ET.SubElement(element, "waypoints")
        for x, y, z in route.waypoints:
            ET.SubElement(waypoints, "position", {"x": f"{x:.2f}", "y": f"{y:.2f}", "z": f"{z:.1f}"})
        ET.SubElement(element, "scenarios")
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def shipped_route_file(name: str) -> Path:
    """Path of a route set shipped as package data (``sumo-dev`` or ``sumo-test``)."""
    if name not in PRESETS:
        raise InputError(f"unknown route set {name!r}: expected one of {', '.join(PRESETS)}")
    return Path(str(resources.files("lbcloud.tracks.sumo") / "data" / f"{name}.xml"))
