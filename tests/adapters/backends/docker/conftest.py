"""Fixtures of the Docker backend's integration tests: team images and backends on the test engine."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lbcloud.adapters.artifacts import FilesystemArtifactStore
from lbcloud.adapters.backends.docker.backend import DockerBackend
from lbcloud.adapters.backends.docker.engine import DockerEngine
from lbcloud.adapters.backends.docker.plans import DockerConfig
from lbcloud.domain.submissions import AgentKind, AgentRef
from lbcloud.domain.tracks import Track
from lbcloud.services.ports import AttemptSpec, BackendEvent, BackendEventKind
from lbcloud.settings import load_settings
from tests.services.docker import DockerTestEngine


@pytest.fixture
def docker_backend(docker_engine: DockerTestEngine, tmp_path: Path) -> Iterator[Callable[..., DockerBackend]]:
    """Backends on the test engine sharing one attempt folder (a second one is a restarted dispatcher)."""
    made: list[DockerBackend] = []

    def make(**kwargs: Any) -> DockerBackend:
        backend = DockerBackend(
            DockerEngine(docker_engine.url),
            tmp_path / "attempts",
            FilesystemArtifactStore(tmp_path / "artifacts"),
            kwargs.pop("config", DockerConfig(instance="it-" + tmp_path.name[-12:].replace("_", "-"))),
            **kwargs,
        )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        for state in backend.engine.containers(backend.config.instance):
            backend.engine.remove(state.name)
        backend.close()


def sumo_track(**changes: Any) -> Track:
    track = load_settings().track("sumo-test")
    return dataclasses.replace(track, **changes)


def spec(image: str, attempt_id: int = 1, *, route: str = "0", track: Track | None = None, **more: Any) -> AttemptSpec:
    return AttemptSpec(
        attempt_id=attempt_id, attempt_number=1, submission_id=1, task_id=attempt_id, team="alpha",
        track=track or sumo_track(), agent=AgentRef(AgentKind.IMAGE, image), route_id=route, repetition=0,
        budget_s=more.pop("budget_s", 300.0), token="t", **more,
    )  # fmt: skip


def run_until_ended(backend: DockerBackend, timeout_s: float = 180.0) -> list[BackendEvent]:
    """Poll until an attempt ended; every event seen, in order."""
    events: list[BackendEvent] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events += backend.poll()
        if any(e.kind is BackendEventKind.ENDED for e in events):
            return events
        time.sleep(0.1)
    raise AssertionError(f"no attempt ended within {timeout_s} s; events: {events}")


def ended(events: list[BackendEvent]) -> BackendEvent:
    return next(e for e in events if e.kind is BackendEventKind.ENDED)
