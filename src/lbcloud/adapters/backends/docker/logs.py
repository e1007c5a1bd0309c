"""An attempt's logs: read from its containers (capped by the engine), followed into the artifact
store while they grow, and kept in the attempt folder for after the containers are gone.

Two streams reach the artifact store: the simulator's, and the route's (the trusted evaluator's
output, then the agent container's own; or the agent container's alone when it runs the evaluator).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from lbcloud.adapters.backends.docker.engine import DockerEngine
from lbcloud.adapters.backends.docker.plans import DockerConfig, Role, container_name
from lbcloud.domain.artifact_keys import LogStream, attempt_log_key
from lbcloud.domain.errors import LbcloudError, Unavailable
from lbcloud.services.ports import ArtifactStore

log = logging.getLogger(__name__)

UPLOAD_INTERVAL_S = 1.0
AGENT_OUTPUT_MARKER = b"\n[lbcloud: the agent container's own output follows]\n"


@dataclass(frozen=True, slots=True)
class AttemptRef:
    """Which attempt, of which submission, in which folder."""

    attempt_id: int
    submission_id: int
    folder: Path


@dataclass
class FollowState:
    """What following an attempt's logs remembers between polls."""

    last_upload: float = 0.0
    sizes: dict[LogStream, int] = field(default_factory=dict)
    last_output_at: float | None = None
    """When the evaluator or the agent last printed a line (engine time): the silence watchdog's clock."""


def streams_of(by_role: dict[Role, bytes]) -> dict[LogStream, bytes]:
    """The artifact store's streams from each container's output."""
    streams = {}
    if Role.SIMULATOR in by_role:
        streams[LogStream.SIMULATOR] = by_role[Role.SIMULATOR]
    route = by_role.get(Role.EVALUATOR, b"")
    if Role.AGENT in by_role:
        agent = by_role[Role.AGENT]
        route = route + AGENT_OUTPUT_MARKER + agent if route else agent
    if route:
        streams[LogStream.AGENT] = route
    return streams


class AttemptLogs:
    """Reads, keeps and uploads the logs of attempts on one engine."""

    def __init__(self, engine: DockerEngine, config: DockerConfig, artifacts: ArtifactStore) -> None:
        self._engine = engine
        self._config = config
        self._artifacts = artifacts

    def _by_role(self, ref: AttemptRef, *, keep: bool) -> dict[Role, bytes]:
        """Each container's output; ``keep``: also saved in the attempt folder, which is where it is
        read from once the container is gone."""
        out: dict[Role, bytes] = {}
        for role in Role:
            path = ref.folder / f"{role.value}.log"
            try:
                data = self._engine.logs(container_name(self._config, ref.attempt_id, role), self._config.log_max_bytes)
            except Unavailable:
                data = b""
            if data and keep:
                path.write_bytes(data)
            elif not data and path.exists():
                data = path.read_bytes()
            if data:
                out[role] = data
        return out

    def final(self, ref: AttemptRef) -> dict[str, bytes]:
        """The logs at the attempt's end (kept in its folder and uploaded), by stream name."""
        streams = streams_of(self._by_role(ref, keep=True))
        for stream, data in streams.items():
            self._put(ref, stream, data)
        return {stream.value: data for stream, data in streams.items()}

    def follow(self, ref: AttemptRef, state: FollowState, *, force: bool = False) -> None:
        """Upload what changed (at most once per UPLOAD_INTERVAL_S unless ``force``) and note when
        the evaluator or the agent last printed."""
        now = time.monotonic()
        if not force and now - state.last_upload < UPLOAD_INTERVAL_S:
            return
        state.last_upload = now
        for role in (Role.EVALUATOR, Role.AGENT):
            seen = self._engine.last_output_at(container_name(self._config, ref.attempt_id, role))
            if seen is not None and (state.last_output_at is None or seen > state.last_output_at):
                state.last_output_at = seen
        for stream, data in streams_of(self._by_role(ref, keep=False)).items():
            if state.sizes.get(stream) != len(data):
                state.sizes[stream] = len(data)
                self._put(ref, stream, data)

    def _put(self, ref: AttemptRef, stream: LogStream, data: bytes) -> None:
        try:
            self._artifacts.put(attempt_log_key(ref.submission_id, ref.attempt_id, stream), data, "text/plain")
        except LbcloudError as err:
            log.warning("log upload failed, will retry: %s", err, extra={"attempt": ref.attempt_id})
