"""Tracks: what a submission is evaluated on.

A track names a route file, a scorer version, repetitions, how the simulator and the evaluator are
started (local commands and/or container images), the pool it runs in and its time budgets. Tracks
are declared in settings; this module holds the pure, validated value the rest of lbcloud uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from lbcloud.domain.errors import ConfigError
from lbcloud.domain.limits import SubmissionLimits

TRACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class ScorerVersion(StrEnum):
    """Which official leaderboard code's scoring and file format a track follows."""

    LB10 = "lb1.0"
    LB20 = "lb2.0"
    LB21 = "lb2.1"


class SimulatorKind(StrEnum):
    """The simulator family: the GPU-free SUMO track or CARLA."""

    SUMO = "sumo"
    CARLA = "carla"


@dataclass(frozen=True, slots=True)
class LocalCommands:
    """How the local backend starts one attempt's processes.

    Each command is an argv list whose items may contain the placeholders ``{port}``, ``{routes}``,
    ``{route}`` (a one-route subset), ``{repetitions}``, ``{checkpoint}``, ``{agent}``,
    ``{agent_config}``, ``{seed}``, ``{workdir}``, and the local backend's agent policy
    (``{agent_sandbox}``, ``{agent_memory_mb}``, ``{agent_pids}``, ``{agent_cpu_s}``, ``{agent_disk_mb}``,
    ``{agent_log_bytes}``).
    """

    simulator: tuple[str, ...]
    evaluator: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str = "Exists"
    value: str | None = None
    effect: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerImages:
    """Images and commands used by the container backends for one track.

    ``contents`` holds the trusted evaluator code and private route files; ``simulator`` runs the
    simulator server; the participant's image runs ``evaluator_command`` (argv with the same
    placeholders as :class:`LocalCommands`).

    With ``agent_command`` (the Docker backend), the participant's image runs only that: an agent
    host speaking the track's agent protocol on ``{agent_socket}``, while a trusted container of
    ``evaluator_image`` (default: ``contents``) runs ``trusted_evaluator_command``.
    """

    contents: str
    simulator: str
    simulator_command: tuple[str, ...]
    evaluator_command: tuple[str, ...]
    contents_paths: tuple[str, ...] = ("/workspace",)
    simulator_port: int = 2000
    agent_command: tuple[str, ...] = ()
    trusted_evaluator_command: tuple[str, ...] = ()
    evaluator_image: str | None = None


@dataclass(frozen=True, slots=True)
class Pool:
    """Where a track's attempts run and how much of it there is.

    ``slots`` is the capacity the scheduler may fill (local: concurrent attempts; Kubernetes: the
    number of GPUs/nodes the operator lets lbcloud use for this pool).
    """

    name: str = "default"
    slots: int = 2
    gpus_per_attempt: int = 0
    cpu: str = "1"
    memory: str = "2Gi"
    simulator_cpu: str = "1"
    simulator_memory: str = "2Gi"
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    priority_class: str | None = None
    kueue_queue: str | None = None
    price_per_hour: float = 0.0


@dataclass(frozen=True, slots=True)
class Qualification:
    """A gate: a team must have a finished submission on ``track`` meeting every threshold."""

    track: str
    thresholds: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Track:
    """One evaluation track (validated on construction).

    Time budgets: an attempt may run for ``attempt_budget_s(route_length_m)`` wall seconds (no limit
    when ``wall_clock_budget`` is off, as in the official CARLA system, which has only the route's
    game-time timeout); an agent that prints nothing for ``silence_timeout_s`` is considered hung.
    ``seed_per_repetition`` gives repetition ``r`` the seed ``seed + r``; off, every repetition
    uses ``seed`` (the official CARLA evaluators reuse one traffic-manager seed for all repetitions).
    """

    name: str
    simulator: SimulatorKind
    scorer: ScorerVersion
    routes_file: str
    repetitions: int = 1
    smoke_route: str | None = None
    public_routes: tuple[str, ...] = ()
    local: LocalCommands | None = None
    images: ContainerImages | None = None
    pool: Pool = field(default_factory=Pool)
    max_simulator_retries: int = 3
    max_infrastructure_retries: int = 5
    setup_timeout_s: float = 60.0
    silence_timeout_s: float = 300.0
    budget_base_s: float = 120.0
    budget_s_per_km: float = 600.0
    wall_clock_budget: bool = True
    seed_per_repetition: bool = True
    simulation_ratio_hint: float = 1.0
    read_only_root: bool = True
    qualification: Qualification | None = None
    seed: int = 0
    description: str = ""
    limits: SubmissionLimits = field(default_factory=SubmissionLimits)

    def __post_init__(self) -> None:
        if not TRACK_NAME.match(self.name):
            raise ConfigError(f"track name {self.name!r} must be 1-63 letters, digits, '-', '_' or '.'")
        if self.repetitions < 1:
            raise ConfigError(f"track {self.name}: repetitions must be >= 1, got {self.repetitions}")
        if self.max_simulator_retries < 0 or self.max_infrastructure_retries < 0:
            raise ConfigError(f"track {self.name}: retry limits must be >= 0")
        if self.pool.slots < 1:
            raise ConfigError(f"track {self.name}: pool {self.pool.name} needs at least one slot")
        if self.local is None and self.images is None:
            raise ConfigError(f"track {self.name}: give local commands, container images, or both")
        if self.images is not None and bool(self.images.agent_command) != bool(self.images.trusted_evaluator_command):
            raise ConfigError(f"track {self.name}: images.agent_command and trusted_evaluator_command go together")

    def seed_for(self, repetition: int) -> int:
        """The simulator seed of one repetition."""
        return self.seed + repetition if self.seed_per_repetition else self.seed

    def attempt_budget_s(self, route_length_m: float) -> float:
        """Wall-clock budget of one attempt on a route of this length (0: no wall-clock budget)."""
        if not self.wall_clock_budget:
            return 0.0
        return self.budget_base_s + self.budget_s_per_km * max(route_length_m, 0.0) / 1000.0
