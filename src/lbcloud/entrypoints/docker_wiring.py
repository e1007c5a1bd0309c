"""Builds the Docker backend from settings (``settings.backend == "docker"``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from lbcloud.adapters.backends.docker.backend import DockerBackend
from lbcloud.adapters.backends.docker.engine import DockerEngine
from lbcloud.adapters.backends.docker.plans import DockerConfig
from lbcloud.domain.tracks import Track

if TYPE_CHECKING:
    from lbcloud.entrypoints.wiring import System


def instance_id(workdir: Path) -> str:
    """A short id of this installation (from its attempt folder): its containers carry it, so two
    installations sharing an engine never adopt or remove each other's containers."""
    return hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:10]


def image_facts(backend: object, tracks: Iterable[Track]) -> dict[str, str]:
    """Manifest facts: the resolved simulator, contents and evaluator images of the tracks."""
    if not isinstance(backend, DockerBackend):
        return {}
    refs = set()
    for track in tracks:
        if track.images is not None:
            refs |= {track.images.simulator, track.images.contents, track.images.evaluator_image or ""}
    refs.discard("")
    return {f"image {ref}": digest for ref, digest in backend.image_ids(sorted(refs)).items()}


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
