"""Checks agent references at intake and computes their content digest."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lbcloud.domain.errors import InputError
from lbcloud.domain.submissions import AgentKind, AgentRef

# registry[:port]/path[:tag][@sha256:digest], lowercase path components as Docker requires
IMAGE_REFERENCE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
MAX_AGENT_BYTES = 200 * 1024 * 1024


def split_local_agent(ref: str) -> tuple[Path, str | None]:
    """``path/agent.py[:Class]`` → (path, class name or None)."""
    path, sep, cls = ref.rpartition(":")
    if sep and path and cls.isidentifier():
        return Path(path), cls
    return Path(ref), None


def _digest_path(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    total = 0
    for file in files:
        data = file.read_bytes()
        total += len(data)
        if total > MAX_AGENT_BYTES:
            raise InputError(f"agent {path}: larger than {MAX_AGENT_BYTES // (1024 * 1024)} MiB")
        h.update(str(file.relative_to(path.parent if path.is_file() else path)).encode())
        h.update(b"\0")
        h.update(data)
    return "sha256:" + h.hexdigest()


class AgentChecker:
    """Implements :class:`lbcloud.services.intake.AgentInspector` for local paths and images."""

    def __init__(
        self,
        allowed_registries: Sequence[str] = (),
        *,
        local_agents_refused: str | None = None,
        images_refused: str | None = None,
    ) -> None:
        """``local_agents_refused`` / ``images_refused``: why this server cannot run that kind of agent
        (its backend runs the other kind, or it cannot sandbox agent files), None when it can."""
        self._allowed = tuple(r.rstrip("/") for r in allowed_registries)
        self._refused = {AgentKind.LOCAL: local_agents_refused, AgentKind.IMAGE: images_refused}

    def inspect(self, agent: AgentRef) -> AgentRef:
        refused = self._refused.get(agent.kind)
        if refused is not None:
            raise InputError(f"agent {agent.ref!r}: {refused}")
        if agent.kind is AgentKind.LOCAL:
            return self._local(agent)
        return self._image(agent)

    def _local(self, agent: AgentRef) -> AgentRef:
        path, _ = split_local_agent(agent.ref)
        if not path.exists():
            raise InputError(f"agent {agent.ref!r}: {path} does not exist")
        if path.is_file() and path.suffix != ".py":
            raise InputError(f"agent {agent.ref!r}: expected a Python file (.py) or a folder, got {path.name}")
        if agent.config and not Path(agent.config).exists():
            raise InputError(f"agent config {agent.config!r} does not exist")
        try:
            digest = _digest_path(path.resolve())
        except OSError as err:
            raise InputError(f"agent {agent.ref!r}: cannot read it ({err.strerror or err})") from None
        resolved = str(path.resolve()) + (agent.ref[len(str(path)) :] if agent.ref.startswith(str(path)) else "")
        config = str(Path(agent.config).resolve()) if agent.config else None
        return replace(agent, ref=resolved, config=config, digest=digest)

    def _image(self, agent: AgentRef) -> AgentRef:
        match = IMAGE_REFERENCE.match(agent.ref)
        if not agent.ref or match is None:
            raise InputError(f"image reference {agent.ref!r} is malformed (expected registry/name[:tag][@sha256:...])")
        if self._allowed and not any(agent.ref.startswith(prefix + "/") for prefix in self._allowed):
            raise InputError(f"image {agent.ref!r} is not in an allowed registry ({', '.join(self._allowed)})")
        return replace(agent, digest=match.group("digest") or agent.digest)
