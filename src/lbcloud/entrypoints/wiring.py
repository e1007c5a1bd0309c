"""Composition root: turn settings into a running system (stores, backend, sinks, sources).

Everything outside this module receives its collaborators explicitly; only here do settings become
objects. ``build_system(settings)`` is cheap (no threads started); ``System.dispatcher()`` builds the
dispatcher with the configured backend and sinks on first use.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbcloud.adapters.agents import AgentChecker
from lbcloud.adapters.clock import SystemClock
from lbcloud.domain.tracks import Track
from lbcloud.services.intake import Intake
from lbcloud.services.ports import ArtifactStore, MetricsRecorder, NoMetrics, StateStore
from lbcloud.settings import Settings

if TYPE_CHECKING:
    from lbcloud.services.dispatcher import Dispatcher


@dataclass
class System:
    """The wired system: what entrypoints (CLI, web, workers) work with."""

    settings: Settings
    store: StateStore
    artifacts: ArtifactStore
    tracks: dict[str, Track]
    intake: Intake
    clock: SystemClock = field(default_factory=SystemClock)
    metrics: MetricsRecorder = field(default_factory=NoMetrics)
    extras: dict[str, Any] = field(default_factory=dict)
    _dispatcher: Dispatcher | None = None

    @property
    def owner(self) -> str:
        return self.settings.dispatcher.owner or f"{socket.gethostname()}-{os.getpid()}"

    def dispatcher(self) -> Dispatcher:
        """The dispatcher with the configured backend and sinks (built once)."""
        if self._dispatcher is None:
            from lbcloud.entrypoints.dispatch_wiring import build_dispatcher

            self._dispatcher = build_dispatcher(self)
        return self._dispatcher

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.close()
        closer = getattr(self.store, "close", None)
        if callable(closer):
            closer()


def local_sandbox_warning(settings: Settings) -> str | None:
    """What to say at startup when the local backend cannot sandbox agents (None when it can)."""
    from lbcloud.tracks.sumo.agent_sandbox import SandboxMode, sandbox_status

    status = sandbox_status(SandboxMode(settings.local.agent_sandbox))
    if status.sandboxed:
        return None
    if settings.local.allow_unsandboxed_agents:
        return f"{status.detail}; agent files run unsandboxed (local.allow_unsandboxed_agents is set)"
    return f"{status.detail}; agent files are refused (set local.allow_unsandboxed_agents to accept them)"


def images_refusal(settings: Settings) -> str | None:
    """Why agent images must be refused at intake (the local backend runs agent files), or None."""
    if settings.backend != "local":
        return None
    return (
        "this server's local backend runs agent files, not images: submit a Python file or folder "
        "(`lbcloud submit --agent`), or ask the operator for the docker or kubernetes backend"
    )


def local_agents_refusal(settings: Settings) -> str | None:
    """Why agent files must be refused at intake (the backend runs images; no working sandbox and no
    opt-in), or None."""
    if settings.backend != "local":
        return (
            f"this server's {settings.backend} backend evaluates images, not agent files: "
            "submit one with `lbcloud submit --image`"
        )
    if settings.local.allow_unsandboxed_agents:
        return None
    from lbcloud.tracks.sumo.agent_sandbox import SandboxMode, sandbox_status

    status = sandbox_status(SandboxMode(settings.local.agent_sandbox))
    if status.sandboxed:
        return None
    return (
        f"this server cannot sandbox agent files ({status.detail}); the operator must set "
        "local.allow_unsandboxed_agents to accept them"
    )


def build_system(settings: Settings, *, metrics: MetricsRecorder | None = None) -> System:
    """Open the state store (running migrations) and the artifact store; no threads are started."""
    from lbcloud.adapters.artifacts import open_artifact_store
    from lbcloud.adapters.store.sql import open_state_store
    from lbcloud.entrypoints.startup_checks import ensure_data_dir

    ensure_data_dir(Path(settings.data_path))
    store = open_state_store(settings.effective_database_url)
    sync = getattr(store, "sync_tracks", None)
    tracks = settings.track_map()
    if callable(sync):
        sync(list(tracks.values()))
    spool = settings.artifacts.spool_dir or str(settings.data_path / "outbox")
    artifacts = open_artifact_store(settings.effective_artifacts_url, settings.artifacts, spool_dir=spool)
    checker = AgentChecker(
        settings.evalai.allowed_registries or settings.kubernetes.allowed_registries,
        local_agents_refused=local_agents_refusal(settings),
        images_refused=images_refusal(settings),
    )
    intake = Intake(store, tracks, checker)
    return System(
        settings=settings,
        store=store,
        artifacts=artifacts,
        tracks=tracks,
        intake=intake,
        metrics=metrics or NoMetrics(),
    )
