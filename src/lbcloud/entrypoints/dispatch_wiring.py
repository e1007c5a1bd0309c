"""Builds the dispatcher for a :class:`~lbcloud.entrypoints.wiring.System` from its settings."""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from lbcloud.adapters.route_catalog import FileRouteCatalog
from lbcloud.services.dispatcher import Dispatcher, Poller
from lbcloud.services.ports import AttemptBackend, ResultSink
from lbcloud.services.qualify import qualification_hook

if TYPE_CHECKING:
    from lbcloud.entrypoints.wiring import System

log = logging.getLogger(__name__)


def _facts() -> dict[str, str]:
    facts: dict[str, str] = {}
    for package in ("eclipse-sumo", "lbcloud"):
        try:
            facts[f"{package}_version"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return facts


def build_backend(system: System) -> AttemptBackend:
    settings = system.settings
    if settings.backend == "kubernetes":
        from lbcloud.entrypoints.k8s_wiring import build_kubernetes_backend

        return build_kubernetes_backend(system)
    if settings.backend == "docker":
        from lbcloud.entrypoints.docker_wiring import build_docker_backend

        return build_docker_backend(system)
    from lbcloud.adapters.backends.local import LocalBackend
    from lbcloud.adapters.backends.local_privileges import AgentPolicy
    from lbcloud.entrypoints.wiring import local_sandbox_warning

    workdir = Path(settings.local.workdir) if settings.local.workdir else settings.data_path / "attempts"
    local = settings.local
    policy = AgentPolicy(
        sandbox=local.agent_sandbox, memory_mb=local.agent_memory_mb, pids=local.agent_pids,
        cpu_s=local.agent_cpu_s, disk_mb=local.agent_disk_mb, log_limit_bytes=local.log_limit_bytes,
        min_free_mb=local.min_free_mb,
    )  # fmt: skip
    return LocalBackend(
        workdir.resolve(),
        system.artifacts,
        port_range=settings.local.port_range,
        port_lock_dir=Path(settings.local.port_lock_dir) if settings.local.port_lock_dir else None,
        standby=settings.local.standbys,
        cancel_grace_s=settings.local.cancel_grace_s,
        policy=policy,
        sandbox_warning=local_sandbox_warning(settings),
    )


def build_dispatcher(system: System) -> Dispatcher:
    """The dispatcher with the configured backend, capacity, sinks and pollers."""
    settings = system.settings
    backend = build_backend(system)
    facts = _facts()
    if settings.backend == "docker":
        from lbcloud.entrypoints.docker_wiring import image_facts

        facts.update(image_facts(backend, system.tracks.values()))
    if settings.backend in ("local", "docker"):
        # one machine: its slots are shared by every track
        slots = settings.local.slots if settings.backend == "local" else settings.docker.slots
        pool_name: str = settings.backend
        capacity = {pool_name: slots}

        def pool_of(track: object) -> str:
            return pool_name

    else:
        capacity = {}
        for track in system.tracks.values():
            capacity[track.pool.name] = max(capacity.get(track.pool.name, 0), track.pool.slots)
        pool_of = None  # type: ignore[assignment]
    sinks: list[ResultSink] = []
    pollers: list[Poller] = []
    flush = getattr(system.artifacts, "flush", None)
    if callable(flush):
        pollers.append(Poller("artifact outbox", 2.0, flush))
    extra = system.extras.get("integrations")
    if callable(extra):
        more_sinks, more_pollers = extra(system)
        sinks.extend(more_sinks)
        pollers.extend(more_pollers)
    return Dispatcher(
        store=system.store,
        artifacts=system.artifacts,
        backend=backend,
        tracks=system.tracks,
        catalog=FileRouteCatalog(),
        clock=system.clock,
        owner=system.owner,
        capacity=capacity,
        pool_of=pool_of,
        sinks=sinks,
        metrics=system.metrics,
        lease_s=settings.dispatcher.lease_s,
        team_limit=settings.dispatcher.team_limit,
        facts=facts,
        split=settings.evalai.split,
        pollers=pollers,
        on_final=qualification_hook(system.store, system.tracks),
        publish_interval_s=settings.dispatcher.partial_publish_interval_s,
        speculate=settings.dispatcher.speculative_smoke,
    )
