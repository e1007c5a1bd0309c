"""The Docker Engine API behind lbcloud's own errors (the ``docker`` SDK for Python).

Every call either succeeds or raises an :class:`~lbcloud.domain.errors.LbcloudError`:
:class:`Unavailable` when the engine cannot be reached or fails (infrastructure),
:class:`AgentImageError` when a team's image is missing and cannot be pulled (the team's fault).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from lbcloud.adapters.backends.docker.plans import (
    ATTEMPT_LABEL,
    BACKEND_LABEL,
    INSTANCE_LABEL,
    ROLE_LABEL,
    ContainerPlan,
    ImageFacts,
    Role,
)
from lbcloud.adapters.backends.local_supervisor import port_listening
from lbcloud.domain.errors import LbcloudError, Unavailable

log = logging.getLogger(__name__)

ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


class AgentImageError(LbcloudError):
    """A team's image cannot be used (absent here and not pullable, or malformed): the team's fault."""


@dataclass(frozen=True, slots=True)
class ContainerState:
    """What the engine says of one of an attempt's containers."""

    name: str
    role: Role
    attempt_id: int
    status: str
    """created | running | paused | restarting | removing | exited | dead"""
    exit_code: int | None
    oom_killed: bool
    pid: int
    started_at: float | None
    labels: tuple[tuple[str, str], ...]
    id: str = ""

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")

    @property
    def ended(self) -> bool:
        return self.status in ("exited", "dead")


_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$")


def _epoch(text: str | None) -> float | None:
    """Seconds since the epoch of an engine timestamp (UTC, nanoseconds); None when unset."""
    match = _TIME.match(text or "")
    if match is None or match.group(1).startswith("0001-"):
        return None
    whole = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return whole + float(f"0.{match.group(2) or '0'}")


def _own_process(pid: int, container_id: str) -> bool:
    """Whether ``pid`` here is that container's process (not a namesake of a remote engine's)."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="ascii", errors="replace") as fh:
            return container_id in fh.read()
    except OSError:
        return False


def listening_in_table(table: str, port: int) -> bool:
    """Whether a ``/proc/net/tcp``-format table has a socket listening (state 0A) on ``port``."""
    hex_port = f":{port:04X}"
    for line in table.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[1].endswith(hex_port) and parts[3] == "0A":
            return True
    return False


def _state(container: Container) -> ContainerState:
    attrs: dict[str, Any] = container.attrs
    state = attrs.get("State", {})
    labels = attrs.get("Config", {}).get("Labels") or {}
    status = str(state.get("Status", "unknown"))
    return ContainerState(
        name=str(attrs.get("Name", "")).lstrip("/"),
        role=Role(labels.get(ROLE_LABEL, Role.AGENT.value)),
        attempt_id=int(labels.get(ATTEMPT_LABEL, "0")),
        status=status,
        exit_code=int(state["ExitCode"]) if status in ("exited", "dead") and "ExitCode" in state else None,
        oom_killed=bool(state.get("OOMKilled", False)),
        pid=int(state.get("Pid") or 0),
        started_at=_epoch(state.get("StartedAt")),
        labels=tuple(sorted(labels.items())),
        id=str(attrs.get("Id", "")),
    )


class DockerEngine:
    """One Docker Engine, reached at ``base_url`` (default: ``$DOCKER_HOST``, else the local socket)."""

    def __init__(self, base_url: str | None = None, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url
        try:
            if base_url:
                self._client = docker.DockerClient(base_url=base_url, timeout=int(timeout_s))
            else:
                self._client = docker.from_env(timeout=int(timeout_s))
        except ENGINE_ERRORS as err:
            raise Unavailable(f"Docker Engine at {self._where()}: {err}") from None

    def _where(self) -> str:
        return self.base_url or "$DOCKER_HOST or the local socket"

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except ENGINE_ERRORS as err:
            raise Unavailable(f"Docker Engine at {self._where()}: {doing}: {err}") from None

    def ping(self) -> str:
        """The engine's version; raises Unavailable when it does not answer."""
        with self._errors("ping"):
            return str(self._client.version().get("Version", "?"))

    # ---------------------------------------------------------------------------------- images
    def image(self, ref: str, *, team: bool, pull_timeout_s: float = 600.0) -> ImageFacts:
        """Facts of image ``ref``, pulled once when it is not here. A team image that cannot be had
        raises AgentImageError (its tag is wrong or its registry refuses); one of ours Unavailable."""
        try:
            image = self._client.images.get(ref)
        except docker.errors.ImageNotFound:
            image = self._pull(ref, team=team, timeout_s=pull_timeout_s)
        except ENGINE_ERRORS as err:
            raise Unavailable(f"Docker Engine at {self._where()}: inspect image {ref}: {err}") from None
        config = image.attrs.get("Config") or {}
        env = []
        for item in config.get("Env") or []:
            name, _, value = str(item).partition("=")
            env.append((name, value))
        digests = image.attrs.get("RepoDigests") or []
        return ImageFacts(
            ref=ref, id=str(image.id), digest=str(digests[0]) if digests else None,
            env=tuple(env), user=str(config.get("User") or ""),
        )  # fmt: skip

    def _pull(self, ref: str, *, team: bool, timeout_s: float) -> Any:
        repository, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
        try:
            return self._client.images.pull(repository, tag=tag or None)
        except (docker.errors.APIError, docker.errors.ImageNotFound, requests.exceptions.RequestException) as err:
            explanation = getattr(err, "explanation", None) or str(err)
            if team:
                raise AgentImageError(
                    f"the image {ref} is not on this machine and could not be pulled: {explanation}"
                ) from None
            raise Unavailable(f"lbcloud's image {ref} is missing and could not be pulled: {explanation}") from None

    def extract(self, image_id: str, path: str, target: Path) -> None:
        """Copy ``path`` out of image ``image_id`` into the folder ``target`` (which must not exist).

        Written to a sibling temporary folder first and renamed, so a crash leaves no half copy."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
        container = None
        try:
            with self._errors(f"copy {path} out of {image_id[:19]}"):
                container = self._client.containers.create(image_id, command=["true"], entrypoint=[])
                stream, _ = container.get_archive(path)
                data = io.BytesIO(b"".join(stream))
            with tarfile.open(fileobj=data) as archive:
                archive.extractall(tmp, filter="data")
            # the archive holds the folder under its own name
            inner = tmp / Path(path.rstrip("/")).name
            if target.exists():  # someone else finished first
                return
            inner.rename(target)
        finally:
            if container is not None:
                with contextlib.suppress(*ENGINE_ERRORS):
                    container.remove(force=True)
            shutil.rmtree(tmp, ignore_errors=True)

    # ------------------------------------------------------------------------------ containers
    def run(self, plan: ContainerPlan) -> None:
        """Create and start the planned container."""
        with self._errors(f"start container {plan.name}"):
            container = self._client.containers.create(**plan.create_kwargs())
            try:
                container.start()
            except docker.errors.APIError:
                with contextlib.suppress(*ENGINE_ERRORS):
                    container.remove(force=True)
                raise

    def create(self, plan: ContainerPlan) -> None:
        """Create the planned container without starting it."""
        with self._errors(f"create container {plan.name}"):
            self._client.containers.create(**plan.create_kwargs())

    def start(self, name: str, *, team: bool) -> None:
        """Start a created container. A team's container the engine refuses to start (no shell, a
        user that does not exist, a broken image) raises AgentImageError; anything else Unavailable."""
        try:
            self._client.containers.get(name).start()
        except docker.errors.APIError as err:
            if team and (err.status_code in (400, 404) or "OCI runtime" in str(err)):
                raise AgentImageError(f"the agent container could not start: {err.explanation or err}") from None
            raise Unavailable(f"Docker Engine at {self._where()}: start {name}: {err}") from None
        except ENGINE_ERRORS as err:
            raise Unavailable(f"Docker Engine at {self._where()}: start {name}: {err}") from None

    def last_output_at(self, name: str) -> float | None:
        """When the container last printed a line (engine time), or None when it printed nothing."""
        try:
            tail = self._client.containers.get(name).logs(stdout=True, stderr=True, timestamps=True, tail=1)
        except docker.errors.NotFound:
            return None
        except ENGINE_ERRORS as err:
            raise Unavailable(f"Docker Engine at {self._where()}: logs of {name}: {err}") from None
        stamp = bytes(tail).split(b" ", 1)[0].decode("ascii", "replace")
        return _epoch(stamp)

    def containers(self, instance: str, attempt_id: int | None = None) -> list[ContainerState]:
        """This installation's containers (of one attempt, or all), running or not."""
        labels = [f"{BACKEND_LABEL}=docker", f"{INSTANCE_LABEL}={instance}"]
        if attempt_id is not None:
            labels.append(f"{ATTEMPT_LABEL}={attempt_id}")
        with self._errors("list containers"):
            found = self._client.containers.list(all=True, filters={"label": labels})
        return [_state(c) for c in found]

    def state(self, name: str) -> ContainerState | None:
        """The container's state, or None when it does not exist."""
        try:
            return _state(self._client.containers.get(name))
        except docker.errors.NotFound:
            return None
        except ENGINE_ERRORS as err:
            raise Unavailable(f"Docker Engine at {self._where()}: inspect {name}: {err}") from None

    def listening(self, state: ContainerState, port: int) -> bool:
        """Whether something listens on TCP ``port`` in the container's network namespace, without
        connecting (a simulator may serve one client only): the kernel's socket table, read from
        ``/proc`` when the container's process is visible here, else from inside the container."""
        if state.pid and state.id and _own_process(state.pid, state.id):
            return port_listening(port, netns_pid=state.pid)
        try:
            _, output = self._client.containers.get(state.name).exec_run(
                ["cat", "/proc/net/tcp", "/proc/net/tcp6"], stdout=True, stderr=False
            )
        except docker.errors.NotFound:
            return False
        except ENGINE_ERRORS as err:
            raise Unavailable(f"Docker Engine at {self._where()}: read {state.name}'s sockets: {err}") from None
        text = output.decode("ascii", "replace") if isinstance(output, bytes) else ""
        return listening_in_table(text, port)

    def logs(self, name: str, max_bytes: int) -> bytes:
        """The container's output (stdout and stderr interleaved), at most its last ``max_bytes``."""
        try:
            data = self._client.containers.get(name).logs(stdout=True, stderr=True)
        except docker.errors.NotFound:
            return b""
        except ENGINE_ERRORS as err:
            raise Unavailable(f"Docker Engine at {self._where()}: logs of {name}: {err}") from None
        if len(data) > max_bytes:
            note = b"[lbcloud: earlier output cut; the log is capped]\n"
            data = note + data[-(max_bytes - len(note)) :]
        return bytes(data)

    def kill(self, name: str) -> None:
        """SIGKILL the container now (nothing when it is gone or already stopped)."""
        try:
            self._client.containers.get(name).kill()
        except (docker.errors.NotFound, docker.errors.APIError):
            return  # gone, or not running (409)
        except ENGINE_ERRORS as err:
            raise Unavailable(f"Docker Engine at {self._where()}: kill {name}: {err}") from None

    def remove(self, name: str) -> None:
        """Remove the container (killing it first) and its anonymous volumes."""
        try:
            self._client.containers.get(name).remove(force=True, v=True)
        except docker.errors.NotFound:
            return
        except ENGINE_ERRORS as err:
            raise Unavailable(f"Docker Engine at {self._where()}: remove {name}: {err}") from None

    def close(self) -> None:
        with contextlib.suppress(*ENGINE_ERRORS):
            self._client.close()
