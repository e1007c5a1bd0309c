"""Builds the Docker backend from settings (``settings.backend == "docker"``)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from lbcloud.adapters.backends.docker.backend import DockerBackend
from lbcloud.adapters.backends.docker.engine import DockerEngine
from lbcloud.adapters.backends.docker.plans import DockerConfig

if TYPE_CHECKING:
    from lbcloud.entrypoints.wiring import System


def instance_id(workdir: Path) -> str:
    """A short id of this installation (from its attempt folder): its containers carry it, so two
    installations sharing an engine never adopt or remove each other's containers."""
    return hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:10]


def build_docker_backend(system: System) -> DockerBackend:
    settings = system.settings.docker
    workdir = (Path(settings.workdir) if settings.workdir else system.settings.data_path / "docker-attempts").resolve()
    config = DockerConfig(
        instance=instance_id(workdir),
        agent_user=settings.agent_user,
        pids_limit=settings.pids_limit,
        scratch_size=settings.scratch_size,
        log_max_bytes=settings.log_max_bytes,
    )
    return DockerBackend(
        DockerEngine(settings.base_url),
        workdir,
        system.artifacts,
        config,
        gpus=settings.gpus,
        ready_timeout_s=settings.ready_timeout_s,
        pull_timeout_s=settings.pull_timeout_s,
    )
