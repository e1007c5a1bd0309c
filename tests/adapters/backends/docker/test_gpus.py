"""GPU slots: each attempt of a GPU track gets a GPU of its own; CPU-only tracks get none."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from lbcloud.adapters.artifacts import FilesystemArtifactStore
from lbcloud.adapters.backends.docker.backend import DockerBackend, _Tracked
from lbcloud.adapters.backends.docker.engine import DockerEngine
from lbcloud.adapters.backends.docker.plans import DockerConfig
from lbcloud.domain.errors import ConfigError, Unavailable
from lbcloud.services.ports import AttemptSpec
from tests.adapters.backends.docker.conftest import spec, sumo_track


def _gpu_spec(attempt_id: int = 1, gpus: int = 1) -> AttemptSpec:
    track = sumo_track()
    track = dataclasses.replace(track, pool=dataclasses.replace(track.pool, gpus_per_attempt=gpus))
    return spec("team/agent:1", attempt_id, track=track)


def _backend(tmp_path: Path, gpus: tuple[str, ...]) -> DockerBackend:
    # choosing GPUs never talks to the engine
    return DockerBackend(
        cast(DockerEngine, None), tmp_path, FilesystemArtifactStore(tmp_path / "a"), DockerConfig("t"), gpus=gpus
    )


def test_each_running_attempt_holds_its_own_gpu(tmp_path: Path) -> None:
    backend = _backend(tmp_path, ("0", "1"))
    first = backend._take_gpus(_gpu_spec(1))
    backend._tracked[1] = _Tracked(1, 1, tmp_path, 0, 1.0, 1.0, time.time(), first)
    second = backend._take_gpus(_gpu_spec(2))
    assert {first, second} == {("0",), ("1",)}
    backend._tracked[2] = _Tracked(2, 1, tmp_path, 0, 1.0, 1.0, time.time(), second)
    with pytest.raises(Unavailable, match="all GPUs are busy"):
        backend._take_gpus(_gpu_spec(3))
    del backend._tracked[1]  # attempt 1 ended: its GPU is free again
    assert backend._take_gpus(_gpu_spec(3)) == ("0",)


def test_cpu_only_tracks_take_no_gpu_and_gpu_tracks_need_configured_gpus(tmp_path: Path) -> None:
    assert _backend(tmp_path, ("0",))._take_gpus(spec("team/agent:1")) == ()
    with pytest.raises(ConfigError, match=r"docker\.gpus lists 0"):
        _backend(tmp_path, ())._take_gpus(_gpu_spec())


@pytest.mark.docker
def test_an_engine_without_gpu_support_refuses_the_device_request_clearly(
    team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    backend = docker_backend(gpus=("0",))
    image = team_image("competent.py")
    with pytest.raises(Unavailable, match="gpu"):  # an infrastructure fault: retried, never the team's
        backend.launch(dataclasses.replace(_gpu_spec(), agent=dataclasses.replace(_gpu_spec().agent, ref=image)))
    assert backend.engine.containers(backend.config.instance) == []
