"""Route files, ``--routes-subset`` selection and the worker split (spec §7, §8).

Public names:

- :class:`Keypoint`, :class:`RouteDefinition` (``route_id``, ``town``, ``keypoints``,
  ``scenario_count``, ``length_3d``/``length_2d``), :class:`RouteFile` (``format``, ``routes``).
- :func:`parse_route_file(data, source, fmt=None) -> RouteFile` — 2.x (``<waypoints><position/>``)
  or 1.0 (``<waypoint/>``) XML; ids must be decimal integers.
- :func:`select_subset(route_ids, subset, fmt) -> tuple[str, ...]` — the official ``--routes-subset``
  semantics and error texts (1.0 rejects ``"5-5"``); returns the selected ids in file order.
- :func:`select_routes(route_file, subset) -> tuple[RouteDefinition, ...]` — the same on a parsed file.
- :func:`only_route(data, route, source) -> bytes` — a route file cut down to one route (what an
  attempt's agent may see).
- :func:`split_routes(route_ids, workers) -> list[tuple[str, ...]]` — lbcloud's integer split;
  :func:`subset_expression(ids, all_ids)` writes one share as a ``--routes-subset`` value;
  :func:`reference_split(routes, workers) -> list[tuple[int, int]]` — the reference deployment's
  float rule, for comparison only.

Pure: parses text, reads no file. Errors are :class:`~lbcloud.domain.errors.InputError` whose
message is the official one where the official code has one.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from lbcloud.domain.errors import InputError
from lbcloud.domain.results.model import ResultFormat


@dataclass(frozen=True, slots=True)
class Keypoint:
    x: float
    y: float
    z: float


def _polyline(points: Sequence[Keypoint], dims: int) -> float:
    length = 0.0
    for a, b in itertools.pairwise(points):
        dz = (b.z - a.z) if dims == 3 else 0.0
        length += math.sqrt((b.x - a.x) ** 2 + (b.y - a.y) ** 2 + dz**2)
    return length


@dataclass(frozen=True, slots=True)
class RouteDefinition:
    """One ``<route>``: its id (a decimal integer, as text), town, keypoints and scenario count."""

    route_id: str
    town: str
    keypoints: tuple[Keypoint, ...]
    scenario_count: int = 0

    @property
    def length_3d(self) -> float:
        """Polyline length through the keypoints in 3-D (CARLA's ``Location`` distance; 1.0 ``route_length``)."""
        return _polyline(self.keypoints, 3)

    @property
    def length_2d(self) -> float:
        """Polyline length in the ground plane (ignores ``z``)."""
        return _polyline(self.keypoints, 2)


@dataclass(frozen=True, slots=True)
class RouteFile:
    format: ResultFormat
    routes: tuple[RouteDefinition, ...]

    @property
    def route_ids(self) -> tuple[str, ...]:
        return tuple(route.route_id for route in self.routes)


def _float(element: ET.Element, name: str, source: str, where: str) -> float:
    raw = element.attrib.get(name)
    try:
        return float(raw) if raw is not None else math.nan
    except ValueError:
        raise InputError(f"{source}: {where}: attribute {name}={raw!r} is not a number") from None


def parse_route_file(data: bytes | str, source: str, fmt: ResultFormat | None = None) -> RouteFile:
    """Parse a route XML file (2.x or 1.0; detected from its elements unless ``fmt`` is given).

    Raises :class:`InputError` naming ``source`` for malformed XML, a missing or non-integer id, or
    a non-numeric coordinate.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise InputError(f"{source}: not a valid route XML file: {err}") from None
    if root.tag != "routes":
        raise InputError(f"{source}: the root element is <{root.tag}>, expected <routes>")
    routes: list[RouteDefinition] = []
    detected = fmt
    for i, route in enumerate(root.iter("route")):
        where = f"route #{i}"
        route_id = route.attrib.get("id")
        if route_id is None:
            raise InputError(f"{source}: {where} has no id")
        where = f"route id {route_id!r}"
        if not route_id.strip().lstrip("-").isdigit():
            raise InputError(f"{source}: {where}: route ids must be decimal integers")
        waypoints = route.find("waypoints")
        if detected is None:
            detected = ResultFormat.V2X if waypoints is not None else ResultFormat.V10
        if detected is ResultFormat.V2X:
            points = [] if waypoints is None else list(waypoints.iter("position"))
            scenarios = route.find("scenarios")
            scenario_count = 0 if scenarios is None else len(list(scenarios.iter("scenario")))
        else:
            points = list(route.iter("waypoint"))
            scenario_count = 0
        keypoints = tuple(
            Keypoint(_float(p, "x", source, where), _float(p, "y", source, where), _float(p, "z", source, where))
            for p in points
        )
        routes.append(RouteDefinition(route_id, route.attrib.get("town", ""), keypoints, scenario_count))
    return RouteFile(detected or ResultFormat.V2X, tuple(routes))


def select_subset(route_ids: Sequence[str], subset: str, fmt: ResultFormat = ResultFormat.V2X) -> tuple[str, ...]:
    """The ids selected by ``subset``, in file order (an empty subset selects every route).

    Groups are separated by commas (spaces removed); a group is an id or an inclusive range
    ``start-end`` that walks the file from ``start`` to ``end``. Errors use the official texts.
    """
    if not subset:
        return tuple(route_ids)
    chosen: list[str] = []
    for group in subset.replace(" ", "").split(","):
        if "-" in group:
            parts = group.split("-")
            if len(parts) != 2:
                raise InputError(
                    f"Malformed route subset '{group}': too many values to unpack (expected 2, got {len(parts)})"
                )
            start, end = parts
            found_start = found_end = False
            for route_id in route_ids:
                if fmt is ResultFormat.V10:
                    if not found_start and route_id == end:
                        raise InputError(f"Malformed route subset '{group}', found the end id before the starting one")
                    if not found_start and route_id == start:
                        found_start = True
                else:
                    if not found_start and route_id == start:
                        found_start = True
                    if not found_start and route_id == end:
                        raise InputError(f"Malformed route subset '{group}', found the end id before the starting one")
                if not found_end and found_start:
                    if route_id in chosen:
                        raise InputError(f"Found a repeated route with id '{route_id}'")
                    chosen.append(route_id)
                    if route_id == end:
                        found_end = True
            if not found_start:
                raise InputError(f"Couldn't find the route with id '{start}' inside the given routes file")
            if not found_end:
                raise InputError(f"Couldn't find the route with id '{end}' inside the given routes file")
        else:
            found = False
            for route_id in route_ids:
                if route_id == group:
                    if route_id in chosen:
                        raise InputError(f"Found a repeated route with id '{route_id}'")
                    chosen.append(route_id)
                    found = True
            if not found:
                raise InputError(f"Couldn't find the route with id '{group}' inside the given routes file")
    selected = set(chosen)
    return tuple(route_id for route_id in route_ids if route_id in selected)


def select_routes(route_file: RouteFile, subset: str) -> tuple[RouteDefinition, ...]:
    """The routes ``subset`` selects, in file order (see :func:`select_subset`)."""
    ids = set(select_subset(route_file.route_ids, subset, route_file.format))
    return tuple(route for route in route_file.routes if route.route_id in ids)


def split_routes(route_ids: Sequence[str], workers: int) -> list[tuple[str, ...]]:
    """Split ids (file order) over ``min(len, workers)`` workers by position, integer-exact.

    Worker *i* gets positions ``start(i)`` … ``start(i+1) − 1`` with ``start(i) = ⌈i·n/w⌉`` computed
    as ``(i·n + w − 1) // w``: shares differ by at most one (10 over 3 gives 4, 3, 3)
    and every id lands in exactly one share.
    """
    if workers < 1:
        raise InputError(f"the number of workers must be at least 1, got {workers}")
    n = len(route_ids)
    w = min(n, workers)

    def start(i: int) -> int:
        return (i * n + w - 1) // w

    return [tuple(route_ids[start(i) : start(i + 1)]) for i in range(w)]


def subset_expression(share: Sequence[str], all_ids: Sequence[str]) -> str:
    """A ``--routes-subset`` value for a contiguous (in file order) share: ``"7"`` or ``"0-3"``."""
    if not share:
        raise InputError("an empty share has no subset expression")
    if len(share) == 1:
        return share[0]
    first = list(all_ids).index(share[0])
    if tuple(all_ids[first : first + len(share)]) != tuple(share):
        return ",".join(share)
    return f"{share[0]}-{share[-1]}"


def reference_split(routes: int, workers: int) -> list[tuple[int, int]]:
    """The reference deployment's float rule: worker *i* gets ``⌈i·step⌉ … ⌈(i+1)·step⌉ − 1``.

    For comparison only: the last range can end at the nonexistent id ``routes`` (25 over 11).
    """
    w = min(routes, workers)
    step = routes / w
    return [(math.ceil(i * step), math.ceil((i + 1) * step) - 1) for i in range(w)]


def only_route(data: bytes, route: str, source: str) -> bytes:
    """A route file cut down to the one ``<route id=...>`` (other elements are kept as they are)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise InputError(f"{source}: not valid XML ({err})") from None
    matches = 0
    for child in list(root):
        if child.tag == "route":
            if child.get("id") == route:
                matches += 1
            else:
                root.remove(child)
    if matches == 0:
        raise InputError(f"{source}: has no route with id {route!r}")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
