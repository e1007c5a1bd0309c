"""Reads tracks' route files (once each) for the dispatcher's planning and manifests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lbcloud.domain.errors import ConfigError, InputError
from lbcloud.domain.results.routes import parse_route_file
from lbcloud.domain.tracks import Track
from lbcloud.services.publish import RouteInfo


class FileRouteCatalog:
    """Implements :class:`lbcloud.services.publish.RouteCatalog` over route XML files on disk."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[list[RouteInfo], str]] = {}

    def _load(self, track: Track) -> tuple[list[RouteInfo], str]:
        path = Path(track.routes_file)
        key = str(path)
        if key not in self._cache:
            try:
                data = path.read_bytes()
            except OSError as err:
                raise ConfigError(f"track {track.name}: cannot read route file {path}: {err.strerror or err}") from None
            try:
                parsed = parse_route_file(data, str(path))
            except InputError as err:
                raise ConfigError(f"track {track.name}: {err}") from None
            if not parsed.routes:
                raise ConfigError(f"track {track.name}: route file {path} has no routes")
            routes = [
                RouteInfo(route.route_id, route.length_3d if track.scorer.value == "lb1.0" else route.length_2d,
                          route.town)
                for route in parsed.routes
            ]  # fmt: skip
            self._cache[key] = (routes, "sha256:" + hashlib.sha256(data).hexdigest())
        return self._cache[key]

    def routes(self, track: Track) -> list[RouteInfo]:
        return list(self._load(track)[0])

    def file_hash(self, track: Track) -> str:
        return self._load(track)[1]
