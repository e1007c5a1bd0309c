"""What the containers of one attempt look like, decided without talking to the engine.

An attempt is two or three containers on one Docker Engine, found again by their labels:

- the **simulator** (the track's simulator image, trusted) in a network namespace of its own with no
  interface but loopback (``network_mode: none``): nothing outside the attempt can reach it and it
  reaches nothing;
- tracks with an agent protocol (``images.agent_command``, the SUMO tracks): a trusted **evaluator**
  container joins the simulator's namespace, and the **agent** (the team's image running the agent
  host) has no network at all: it talks to the evaluator over a unix socket in a folder only the
  two share, and never sees the simulator, the checkpoint or the route files;
- other tracks (CARLA, whose leaderboard runs the agent inside the evaluator): the **agent**
  container runs the evaluator and joins the simulator's namespace, reaching it on ``127.0.0.1``
  and nothing else.

The agent container is sandboxed either way: read-only root with a small writable ``/tmp``, every
capability dropped, ``no-new-privileges``, a non-root user, memory / process / CPU limits from the
track's pool, no Docker socket, no lbcloud secrets, no host path but its own attempt's (the track's
contents read-only, the route file cut to its one route).

GPU slots become device requests; the simulator command gets ``{gpu}`` (the host's GPU id) while
inside the container the slot's GPU is the only one, adapter 0.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from docker.types import DeviceRequest, LogConfig, Mount

from lbcloud.adapters.backends.kubernetes.carla_wrapper import TRUSTED_SHELL_SCRIPT
from lbcloud.domain.carla import leaderboard_environment
from lbcloud.domain.errors import ConfigError, InputError
from lbcloud.domain.tracks import ContainerImages, SimulatorKind, Track
from lbcloud.services.ports import AttemptSpec

ATTEMPT_DIR = "/lbcloud/attempt"
"""The attempt folder inside both containers (the same path, so the simulator reads the files the
evaluator writes there, e.g. the SUMO track's scenario files)."""
LINK_DIR = "/lbcloud/link"
"""The folder evaluator and agent share (agent protocol tracks): it holds the evaluator's socket."""
AGENT_SOCKET = f"{LINK_DIR}/agent.sock"
CHECKPOINT_NAME = "checkpoint.json"
SCRATCH_NAME = "tmp"
LINK_NAME = "link"
RECORDINGS_NAME = "recordings"
LABEL = "io.lbcloud"
BACKEND_LABEL = f"{LABEL}.backend"
INSTANCE_LABEL = f"{LABEL}.instance"
ATTEMPT_LABEL = f"{LABEL}.attempt"
ROLE_LABEL = f"{LABEL}.role"
GPU_LABEL = f"{LABEL}.gpu"
# the image's ~/agent_sources.sh is sourced first (the CARLA leaderboard's scripts/agent_entrypoint.sh)
AGENT_PRELUDE = 'if [ -f "$HOME/agent_sources.sh" ]; then . "$HOME/agent_sources.sh"; fi; exec '


class Role(StrEnum):
    """The containers of an attempt."""

    SIMULATOR = "simulator"
    EVALUATOR = "evaluator"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class DockerConfig:
    """The backend's settings that shape containers. ``instance`` tells apart lbcloud installations
    sharing one engine: each finds, adopts and removes only its own containers."""

    instance: str
    agent_user: str = "10001:10001"
    pids_limit: int = 512
    scratch_size: str = "1g"
    log_max_bytes: int = 2_000_000


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What the backend needs to know of an image: its id, digest (when pulled from a registry),
    environment and configured user."""

    ref: str
    id: str
    digest: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    user: str = ""

    def env_map(self) -> dict[str, str]:
        return dict(self.env)


@dataclass(frozen=True, slots=True)
class HostPaths:
    """Host folders mounted into an attempt's containers."""

    folder: Path
    """The attempt folder (agent: read-write; simulator: read-only)."""
    contents: tuple[tuple[str, Path], ...] = ()
    """(path in the contents image, host copy) pairs, mounted read-only at the same path."""
    routes: Path | None = None
    """A folder holding only the route file cut to the attempt's route, over ``<contents>/routes``."""
    link: Path | None = None
    """The folder evaluator and agent share (agent protocol tracks)."""


@dataclass(frozen=True, slots=True)
class ContainerPlan:
    """One container of an attempt, as the arguments of the engine's *create* call."""

    role: Role
    name: str
    image: str
    entrypoint: tuple[str, ...]
    command: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    environment: tuple[tuple[str, str], ...]
    mounts: tuple[tuple[Path, str, bool], ...]
    memory_bytes: int
    nano_cpus: int
    network_mode: str
    log_max_bytes: int
    user: str | None = None
    read_only: bool = False
    scratch_size: str | None = None
    pids_limit: int | None = None
    sandboxed: bool = False
    gpus: tuple[str, ...] = field(default=())

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``docker.DockerClient.containers.create``."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "name": self.name,
            "entrypoint": list(self.entrypoint),
            "command": list(self.command),
            "labels": dict(self.labels),
            "environment": dict(self.environment),
            "mounts": [Mount(target, str(source), type="bind", read_only=ro) for source, target, ro in self.mounts],
            "mem_limit": self.memory_bytes,
            "memswap_limit": self.memory_bytes,  # no swap: the limit is the limit
            "nano_cpus": self.nano_cpus,
            "network_mode": self.network_mode,
            "log_config": LogConfig(
                type=LogConfig.types.JSON, config={"max-size": str(self.log_max_bytes), "max-file": "1"}
            ),
            "ipc_mode": "private",
            "detach": True,
        }
        if self.user:
            kwargs["user"] = self.user
        if self.read_only:
            kwargs["read_only"] = True
        if self.scratch_size:
            kwargs["tmpfs"] = {"/tmp": f"rw,nosuid,nodev,size={self.scratch_size},mode=1777"}
        if self.pids_limit:
            kwargs["pids_limit"] = self.pids_limit
        if self.sandboxed:
            kwargs["cap_drop"] = ["ALL"]
            kwargs["security_opt"] = ["no-new-privileges:true"]
            kwargs["init"] = True  # reaps the agent's orphans; PID 1 is not the team's code
        if self.gpus:
            kwargs["device_requests"] = [DeviceRequest(device_ids=list(self.gpus), capabilities=[["gpu"]])]
        return kwargs


# ------------------------------------------------------------------------------------ quantities
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*$")
_MEMORY_UNITS = {
    None: 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip
_CPU = re.compile(r"^\s*(\d+(?:\.\d+)?)(m)?\s*$")


def memory_bytes(quantity: str) -> int:
    """Bytes of a Kubernetes-style memory quantity (``2Gi``, ``512Mi``, ``1G``, ``1000000``)."""
    match = _MEMORY.match(quantity)
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"memory {quantity!r}: give a positive amount such as 2Gi, 512Mi or 1G")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])


def nano_cpus(quantity: str) -> int:
    """Billionths of a CPU of a Kubernetes-style CPU quantity (``1``, ``2.5``, ``500m``)."""
    match = _CPU.match(quantity)
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"cpu {quantity!r}: give a positive amount such as 1, 2.5 or 500m")
    cpus = float(match.group(1)) / (1000 if match.group(2) else 1)
    return int(cpus * 1_000_000_000)


# -------------------------------------------------------------------------------------- naming
def container_name(config: DockerConfig, attempt_id: int, role: Role) -> str:
    return f"lbcloud-{config.instance}-a{attempt_id}-{role.value}"


def attempt_labels(spec: AttemptSpec, config: DockerConfig, role: Role, gpu: str | None) -> dict[str, str]:
    """Labels that find an attempt's containers again after a restart (and say what they run)."""
    labels = {
        BACKEND_LABEL: "docker",
        INSTANCE_LABEL: config.instance,
        ATTEMPT_LABEL: str(spec.attempt_id),
        ROLE_LABEL: role.value,
        f"{LABEL}.submission": str(spec.submission_id),
        f"{LABEL}.task": str(spec.task_id),
        f"{LABEL}.route": spec.route_id,
        f"{LABEL}.repetition": str(spec.repetition),
        f"{LABEL}.track": spec.track.name,
        f"{LABEL}.team": spec.team,
    }
    if gpu is not None:
        labels[GPU_LABEL] = gpu
    return labels


# ------------------------------------------------------------------------------------- commands
def images_of(track: Track) -> ContainerImages:
    if track.images is None:
        raise InputError(f"track {track.name} has no container images; it cannot run on the Docker backend")
    return track.images


def has_agent_protocol(track: Track) -> bool:
    """Whether the track's agent runs alone (agent host + trusted evaluator container)."""
    return bool(images_of(track).agent_command)


def routes_path(track: Track) -> str:
    """Where the agent finds the route file: ``<contents>/routes/<basename of the track's file>``."""
    return f"{contents_root(track)}/routes/{PurePosixPath(track.routes_file).name}"


def contents_root(track: Track) -> str:
    return images_of(track).contents_paths[0].rstrip("/") or "/"


class _Values(dict[str, str]):
    """Placeholder values; ``{env_NAME}`` is the agent container's ``$NAME`` when it runs (after its
    ``agent_sources.sh``), written as a marker :func:`agent_script` turns into ``"${NAME:-}"``."""

    def __missing__(self, key: str) -> str:
        if key.startswith("env_") and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key[4:]):
            return f"\0{key[4:]}\0"
        raise KeyError(key)


def trusted_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """A trusted container's argv: ``{env_NAME}`` means nothing there and is left empty."""
    return tuple(re.sub("\0[A-Za-z0-9_]*\0", "", item) for item in argv)


def agent_script(argv: Sequence[str], *, carla: bool = False) -> str:
    """The agent container's ``sh -c`` script: source ``~/agent_sources.sh`` when the image has one,
    then exec ``argv`` (each item quoted; ``{env_NAME}`` markers expanded by the shell). CARLA
    tracks do what the official ``run_leaderboard.sh`` does instead: ``~/.bashrc`` and
    ``~/agent_sources.sh`` sourced by the image's bash, then the trusted carla package, scenario
    runner and leaderboard put in front of the image's ``PYTHONPATH``."""
    words = []
    for item in argv:
        parts = item.split("\0")
        word = "".join(
            ('"${' + part + ':-}"') if i % 2 else shlex.quote(part) for i, part in enumerate(parts) if part or i % 2
        )
        words.append(word or "''")
    if carla:
        shell = '"$(command -v bash || echo sh)"'
        return f"exec {shell} -c {shlex.quote(TRUSTED_SHELL_SCRIPT)} lbcloud-agent " + " ".join(words)
    return AGENT_PRELUDE + " ".join(words)


def fill(template: Sequence[str], values: Mapping[str, str], what: str) -> tuple[str, ...]:
    """An argv template with its ``{placeholders}`` filled; unknown names fail with the item named."""
    out = []
    for item in template:
        try:
            out.append(item.format_map(values))
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(f"{what}: item {item!r}: unknown or malformed placeholder ({err})") from None
    return tuple(out)


def placeholder_values(spec: AttemptSpec, agent: ImageFacts | None, gpu: str | None) -> _Values:
    """The values of the command placeholders (see ``docs/docker.md``). The agent and its
    configuration follow the leaderboard's convention: ``$TEAM_AGENT`` / ``$TEAM_CONFIG`` of the image
    unless the submission names a configuration itself."""
    track = spec.track
    env = agent.env_map() if agent is not None else {}
    return _Values(
        {
            "port": str(images_of(track).simulator_port),
            "routes": routes_path(track),
            "route": spec.route_id,
            "repetitions": "1",
            "repetition": str(spec.repetition),
            "checkpoint": f"{ATTEMPT_DIR}/{CHECKPOINT_NAME}",
            "agent": env.get("TEAM_AGENT", ""),
            "agent_config": spec.agent.config or env.get("TEAM_CONFIG", ""),
            "seed": str(spec.seed),
            "workdir": ATTEMPT_DIR,
            "scorer": track.scorer.value,
            "contents": contents_root(track),
            "gpu": gpu or "",
            # the slot's GPU is the only one a container sees (a device request): adapter 0
            "gpu_index": "0",
            "recordings": f"{ATTEMPT_DIR}/{RECORDINGS_NAME}",
            "agent_socket": AGENT_SOCKET,
        },
    )


# ------------------------------------------------------------------------------------ the plans
def simulator_plan(
    spec: AttemptSpec, config: DockerConfig, paths: HostPaths, gpu: str | None, *, image_id: str | None = None
) -> ContainerPlan:
    """The simulator container: trusted image (``image_id`` pins the one resolved), loopback-only
    network namespace, the pool's simulator limits, the slot's GPU."""
    images = images_of(spec.track)
    argv = trusted_argv(
        fill(images.simulator_command, placeholder_values(spec, None, gpu), f"track {spec.track.name} simulator")
    )
    if not argv:
        raise ConfigError(f"track {spec.track.name}: the simulator command is empty")
    pool = spec.track.pool
    carla = spec.track.simulator is SimulatorKind.CARLA
    return ContainerPlan(
        role=Role.SIMULATOR,
        name=container_name(config, spec.attempt_id, Role.SIMULATOR),
        image=image_id or images.simulator,
        entrypoint=argv[:1],
        command=argv[1:],
        labels=tuple(attempt_labels(spec, config, Role.SIMULATOR, gpu).items()),
        environment=(("PYTHONUNBUFFERED", "1"), ("LBCLOUD_ATTEMPT", str(spec.attempt_id))),
        mounts=(
            (paths.folder, ATTEMPT_DIR, True),
            # the CARLA server writes the route's recording (--record) where the evaluator asks
            *(((paths.folder / RECORDINGS_NAME, f"{ATTEMPT_DIR}/{RECORDINGS_NAME}", False),) if carla else ()),
        ),
        memory_bytes=memory_bytes(pool.simulator_memory),
        nano_cpus=nano_cpus(pool.simulator_cpu),
        network_mode="none",
        log_max_bytes=config.log_max_bytes,
        gpus=(gpu,) if gpu is not None else (),
    )


def agent_user(image: ImageFacts, config: DockerConfig) -> str:
    """The image's own user unless it is root (or unset): then the configured unprivileged one."""
    user = image.user.strip()
    name = user.split(":", 1)[0]
    if not user or name in ("0", "root"):
        return config.agent_user
    if ":" in user and user.split(":", 1)[1] in ("0", "root"):
        return f"{name}:{config.agent_user.split(':', 1)[-1]}"
    return user


def _contents_mounts(spec: AttemptSpec, paths: HostPaths) -> list[tuple[Path, str, bool]]:
    mounts = [(host, target, True) for target, host in paths.contents]
    if paths.routes is not None:
        mounts.append((paths.routes, f"{contents_root(spec.track)}/routes", True))
    return mounts


def evaluator_plan(
    spec: AttemptSpec, config: DockerConfig, paths: HostPaths, image: ImageFacts, agent: ImageFacts, gpu: str | None
) -> ContainerPlan:
    """The trusted evaluator (agent protocol tracks): in the simulator's namespace, writing the
    checkpoint to the attempt folder, listening for the agent host on the shared socket."""
    images = images_of(spec.track)
    values = placeholder_values(spec, agent, gpu)
    argv = trusted_argv(fill(images.trusted_evaluator_command, values, f"track {spec.track.name} trusted evaluator"))
    if paths.link is None:
        raise ConfigError("an agent protocol track needs the attempt's link folder")
    pool = spec.track.pool
    return ContainerPlan(
        role=Role.EVALUATOR,
        name=container_name(config, spec.attempt_id, Role.EVALUATOR),
        image=image.id,
        entrypoint=argv[:1],
        command=argv[1:],
        labels=tuple(attempt_labels(spec, config, Role.EVALUATOR, gpu).items()),
        environment=(
            ("PYTHONUNBUFFERED", "1"),
            ("LBCLOUD_ATTEMPT", str(spec.attempt_id)),
            ("TMPDIR", f"{ATTEMPT_DIR}/{SCRATCH_NAME}"),  # scenario files the simulator reads
        ),
        mounts=((paths.folder, ATTEMPT_DIR, False), (paths.link, LINK_DIR, False), *_contents_mounts(spec, paths)),
        memory_bytes=memory_bytes(pool.simulator_memory),
        nano_cpus=nano_cpus(pool.simulator_cpu),
        network_mode=f"container:{container_name(config, spec.attempt_id, Role.SIMULATOR)}",
        log_max_bytes=config.log_max_bytes,
        read_only=True,
        scratch_size=config.scratch_size,
        pids_limit=config.pids_limit,
        sandboxed=True,
    )


def agent_plan(
    spec: AttemptSpec, config: DockerConfig, paths: HostPaths, image: ImageFacts, gpu: str | None
) -> ContainerPlan:
    """The team's container, sandboxed. Agent protocol tracks: the agent host alone, no network, only
    the shared socket folder. Others: the track's evaluator command in the simulator's namespace.
    Raises InputError when the image names no agent (``$TEAM_AGENT``)."""
    images = images_of(spec.track)
    split = has_agent_protocol(spec.track)
    carla = spec.track.simulator is SimulatorKind.CARLA and not split
    template = images.agent_command if split else images.evaluator_command
    values = placeholder_values(spec, image, gpu)
    if any("{agent}" in item for item in template) and not values["agent"]:
        raise InputError(f"image {image.ref} names no agent: set TEAM_AGENT in its Dockerfile")
    argv = fill(template, values, f"track {spec.track.name} agent")
    if not argv:
        raise ConfigError(f"track {spec.track.name}: the agent's command is empty")
    environment: tuple[tuple[str, str], ...] = (("PYTHONUNBUFFERED", "1"), ("LBCLOUD_ATTEMPT", str(spec.attempt_id)))
    if split:
        if paths.link is None:
            raise ConfigError("an agent protocol track needs the attempt's link folder")
        mounts: list[tuple[Path, str, bool]] = [(paths.link, LINK_DIR, False)]
        network = "none"
    else:
        mounts = [(paths.folder, ATTEMPT_DIR, False), *_contents_mounts(spec, paths)]
        network = f"container:{container_name(config, spec.attempt_id, Role.SIMULATOR)}"
        # files the simulator must read (scenario files) go to the shared attempt folder
        environment += (("TMPDIR", f"{ATTEMPT_DIR}/{SCRATCH_NAME}"),)
        if carla:  # the variables the official run_leaderboard.sh sets
            leaderboard = leaderboard_environment(
                spec.track, contents=contents_root(spec.track), routes=routes_path(spec.track), route=spec.route_id
            )
            environment += tuple(leaderboard.items())
    pool = spec.track.pool
    return ContainerPlan(
        role=Role.AGENT,
        name=container_name(config, spec.attempt_id, Role.AGENT),
        image=image.id,
        entrypoint=("/bin/sh", "-c", agent_script(argv, carla=carla)),
        command=(),
        labels=tuple(attempt_labels(spec, config, Role.AGENT, gpu).items()),
        environment=environment,
        mounts=tuple(mounts),
        memory_bytes=memory_bytes(pool.memory),
        nano_cpus=nano_cpus(pool.cpu),
        network_mode=network,
        log_max_bytes=config.log_max_bytes,
        user=agent_user(image, config),
        # an agent host writes only /tmp; an agent running the evaluator keeps the track's choice
        # (CARLA agents write caches and model files at run time)
        read_only=split or spec.track.read_only_root,
        scratch_size=config.scratch_size,
        pids_limit=config.pids_limit,
        sandboxed=True,
        gpus=(gpu,) if gpu is not None else (),
    )
