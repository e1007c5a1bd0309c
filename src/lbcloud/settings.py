"""Typed settings, one place: YAML file + ``LBCLOUD_*`` environment (+ CLI overrides).

Precedence (highest first): explicit overrides, environment (``LBCLOUD_DATABASE_URL``,
``LBCLOUD_EVALAI__TOKEN``: nested fields use ``__``), the YAML file (``--config``, else
``$LBCLOUD_CONFIG``, else ``./lbcloud.yaml`` when present), defaults. The defaults run on a laptop:
SQLite and an artifact folder under ``data_dir``, the local backend, the SUMO tracks.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from lbcloud.domain.errors import ConfigError
from lbcloud.domain.limits import SubmissionLimits
from lbcloud.domain.tracks import (
    ContainerImages,
    LocalCommands,
    Pool,
    Qualification,
    ScorerVersion,
    SimulatorKind,
    Toleration,
    Track,
)

DEFAULT_CONFIG_FILE = Path("lbcloud.yaml")


def sumo_routes_file(route_set: str) -> str:
    """Path of a route set shipped with the SUMO track (``sumo-dev`` or ``sumo-test``)."""
    return str(resources.files("lbcloud.tracks.sumo") / "data" / f"{route_set}.xml")


def _sumo_local_commands() -> LocalCommands:
    lbcloud = (sys.executable, "-m", "lbcloud")
    return LocalCommands(
        simulator=(*lbcloud, "track", "sumo", "simulator", "--port", "{port}"),
        evaluator=(
            *lbcloud, "track", "sumo", "evaluate",
            "--agent", "{agent}", "--agent-config", "{agent_config}",
            "--routes", "{routes}", "--routes-subset", "{route}", "--repetitions", "{repetitions}",
            "--checkpoint", "{checkpoint}", "--port", "{port}", "--seed", "{seed}", "--scorer", "{scorer}",
            "--agent-sandbox", "{agent_sandbox}", "--agent-memory-mb", "{agent_memory_mb}",
            "--agent-pids", "{agent_pids}", "--agent-cpu-s", "{agent_cpu_s}", "--agent-disk-mb", "{agent_disk_mb}",
            "--agent-log-bytes", "{agent_log_bytes}",
        ),
    )  # fmt: skip


class TolerationSettings(BaseModel):
    key: str
    operator: str = "Exists"
    value: str | None = None
    effect: str | None = None


class PoolSettings(BaseModel):
    name: str = "default"
    slots: int = Field(default=2, ge=1)
    gpus_per_attempt: int = Field(default=0, ge=0)
    cpu: str = "1"
    memory: str = "2Gi"
    simulator_cpu: str = "1"
    simulator_memory: str = "2Gi"
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[TolerationSettings] = Field(default_factory=list)
    priority_class: str | None = None
    kueue_queue: str | None = None
    price_per_hour: float = 0.0


class ImagesSettings(BaseModel):
    contents: str
    simulator: str
    simulator_command: list[str]
    evaluator_command: list[str]
    contents_paths: list[str] = Field(default_factory=lambda: ["/workspace"])
    simulator_port: int = 2000
    agent_command: list[str] = Field(
        default_factory=list, description="Docker backend: the participant's image runs only this agent host."
    )
    trusted_evaluator_command: list[str] = Field(
        default_factory=list, description="Docker backend: the evaluator a trusted container runs beside it."
    )
    evaluator_image: str | None = Field(default=None, description="Image of that evaluator (default: contents).")


class LocalCommandsSettings(BaseModel):
    simulator: list[str]
    evaluator: list[str]


class QualificationSettings(BaseModel):
    track: str
    thresholds: dict[str, float]


class LimitsSettings(BaseModel):
    """Submissions a team may make to a track (unset: no limit)."""

    per_day: int | None = Field(default=None, ge=1, description="Per rolling 24 hours")
    total: int | None = Field(default=None, ge=1, description="In total")
    concurrent: int | None = Field(default=None, ge=1, description="Being evaluated at once")


class TrackSettings(BaseModel):
    """A track as written in settings (see :class:`lbcloud.domain.tracks.Track`)."""

    name: str
    simulator: SimulatorKind = SimulatorKind.SUMO
    scorer: ScorerVersion = ScorerVersion.LB20
    routes_file: str
    repetitions: int = 1
    smoke_route: str | None = None
    public_routes: list[str] = Field(default_factory=list)
    local: LocalCommandsSettings | None = None
    images: ImagesSettings | None = None
    pool: PoolSettings = Field(default_factory=PoolSettings)
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
    qualification: QualificationSettings | None = None
    seed: int = 0
    description: str = ""
    limits: LimitsSettings = Field(default_factory=LimitsSettings)

    def to_track(self) -> Track:
        pool = self.pool
        return Track(
            name=self.name,
            simulator=self.simulator,
            scorer=self.scorer,
            routes_file=self.routes_file,
            repetitions=self.repetitions,
            smoke_route=self.smoke_route,
            public_routes=tuple(self.public_routes),
            local=LocalCommands(tuple(self.local.simulator), tuple(self.local.evaluator)) if self.local else None,
            images=ContainerImages(
                contents=self.images.contents,
                simulator=self.images.simulator,
                simulator_command=tuple(self.images.simulator_command),
                evaluator_command=tuple(self.images.evaluator_command),
                contents_paths=tuple(self.images.contents_paths),
                simulator_port=self.images.simulator_port,
                agent_command=tuple(self.images.agent_command),
                trusted_evaluator_command=tuple(self.images.trusted_evaluator_command),
                evaluator_image=self.images.evaluator_image,
            )
            if self.images
            else None,
            pool=Pool(
                name=pool.name,
                slots=pool.slots,
                gpus_per_attempt=pool.gpus_per_attempt,
                cpu=pool.cpu,
                memory=pool.memory,
                simulator_cpu=pool.simulator_cpu,
                simulator_memory=pool.simulator_memory,
                node_selector=tuple(sorted(pool.node_selector.items())),
                tolerations=tuple(Toleration(t.key, t.operator, t.value, t.effect) for t in pool.tolerations),
                priority_class=pool.priority_class,
                kueue_queue=pool.kueue_queue,
                price_per_hour=pool.price_per_hour,
            ),
            max_simulator_retries=self.max_simulator_retries,
            max_infrastructure_retries=self.max_infrastructure_retries,
            setup_timeout_s=self.setup_timeout_s,
            silence_timeout_s=self.silence_timeout_s,
            budget_base_s=self.budget_base_s,
            budget_s_per_km=self.budget_s_per_km,
            wall_clock_budget=self.wall_clock_budget,
            seed_per_repetition=self.seed_per_repetition,
            simulation_ratio_hint=self.simulation_ratio_hint,
            read_only_root=self.read_only_root,
            qualification=Qualification(self.qualification.track, tuple(sorted(self.qualification.thresholds.items())))
            if self.qualification
            else None,
            seed=self.seed,
            description=self.description,
            limits=SubmissionLimits(self.limits.per_day, self.limits.total, self.limits.concurrent),
        )


def default_tracks() -> list[TrackSettings]:
    """The built-in SUMO tracks: ``sumo-dev`` (public warm-up) and ``sumo-test`` (route 0 is public)."""
    local = _sumo_local_commands()
    commands = LocalCommandsSettings(simulator=list(local.simulator), evaluator=list(local.evaluator))
    sumo_image = ImagesSettings(
        contents="lbcloud:latest",
        simulator="lbcloud:latest",
        simulator_command=["lbcloud", "track", "sumo", "simulator", "--port", "{port}"],
        # the pod's container has its own limits: the local backend's agent sandbox flags stay local
        evaluator_command=["lbcloud", *local.evaluator[3 : local.evaluator.index("--agent-sandbox")]],
        contents_paths=["/opt/lbcloud-track"],
        simulator_port=8813,
        # Docker backend: the team's image runs only the agent host; the evaluator is a trusted container
        agent_command=[
            "python3", "-m", "lbcloud.tracks.sumo.agent_host", "--connect", "unix:{agent_socket}", "--agent", "{agent}",
        ],
        trusted_evaluator_command=[
            "lbcloud", *local.evaluator[3 : local.evaluator.index("--agent-sandbox")],
            "--agent-socket", "{agent_socket}",
        ],
    )  # fmt: skip
    common: dict[str, Any] = {
        "simulator": SimulatorKind.SUMO,
        "scorer": ScorerVersion.LB20,
        "local": commands,
        "images": sumo_image,
        "setup_timeout_s": 20.0,
        "silence_timeout_s": 60.0,
        "budget_base_s": 60.0,
        "budget_s_per_km": 60.0,
        "simulation_ratio_hint": 20.0,
        # the agent container's root file system is read-only: the image carries the road networks of
        # the shipped route sets, and the evaluator writes only to /tmp (checked on a real node)
        "read_only_root": True,
    }
    return [
        TrackSettings(
            name="sumo-dev",
            routes_file=sumo_routes_file("sumo-dev"),
            description="SUMO warm-up track: a few short public routes",
            **common,
        ),
        TrackSettings(
            name="sumo-test",
            routes_file=sumo_routes_file("sumo-test"),
            smoke_route="0",
            public_routes=["0"],
            description="SUMO test track: routes of varied length; route 0 is public and runs first",
            **common,
        ),
    ]


class LocalBackendSettings(BaseModel):
    slots: int = Field(default=2, ge=1, description="Concurrent attempts on this machine.")
    workdir: str | None = Field(default=None, description="Attempt folders (default: <data_dir>/attempts).")
    port_range: tuple[int, int] = Field(
        default=(21000, 21999), description="Simulator ports [low, high], reserved host-wide per attempt."
    )
    cancel_grace_s: float = Field(default=1.5, ge=0.0)
    standby_attempts: int | None = Field(
        default=None, ge=0, le=8,
        description="Attempts prepared ahead (supervisor + fresh simulator started while routes run); 0: none; "
        "default: one per slot, at most 4 (two routes that end together both find one ready).",
    )  # fmt: skip

    @property
    def standbys(self) -> int:
        """How many standby attempts the local backend keeps (see ``standby_attempts``)."""
        return self.standby_attempts if self.standby_attempts is not None else min(self.slots, 4)
    port_lock_dir: str | None = Field(
        default=None, description="Host-wide port reservation folder (default: $TMPDIR/lbcloud-ports); share it "
        "between every lbcloud install on the host.",
    )  # fmt: skip
    agent_sandbox: Literal["auto", "bwrap", "none"] = Field(
        default="auto", description="auto: bubblewrap where it works; bwrap: required; none: plain processes."
    )
    allow_unsandboxed_agents: bool = Field(
        default=False, description="Accept agent files although no sandbox works here (agents can then read it all)."
    )
    agent_memory_mb: int = Field(default=4096, ge=64, description="Address space per agent process.")
    agent_pids: int = Field(default=128, ge=8, description="Processes and threads per agent.")
    agent_cpu_s: int = Field(default=3600, ge=10, description="CPU seconds per agent process.")
    agent_disk_mb: int = Field(default=512, ge=1, description="Writable space of a sandboxed agent; largest file.")
    log_limit_bytes: int = Field(default=8 * 1024 * 1024, ge=4096, description="Kept per log of an attempt.")
    min_free_mb: int = Field(default=1024, ge=0, description="No attempt starts with less free space in workdir.")

    @field_validator("port_range")
    @classmethod
    def _ordered_port_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1024 <= low <= high <= 65535:
            raise ValueError(f"must be [low, high] with 1024 <= low <= high <= 65535, not [{low}, {high}]")
        return value


class DockerSettings(BaseModel):
    """The Docker backend: one machine's Docker Engine runs each attempt as containers."""

    base_url: str | None = Field(
        default=None, description="Engine address (default: $DOCKER_HOST, else the local socket)."
    )
    slots: int = Field(default=2, ge=1, description="Concurrent attempts on this machine.")
    gpus: list[str] = Field(
        default_factory=list, description="GPU indices (or UUIDs) for tracks with gpus_per_attempt; one per slot."
    )
    workdir: str | None = Field(default=None, description="Attempt folders (default: <data_dir>/docker-attempts).")
    agent_user: str = Field(default="10001:10001", description="uid:gid of agent containers whose image runs as root.")
    pids_limit: int = Field(default=512, ge=16, description="Processes an agent container may run.")
    scratch_size: str = Field(default="1g", description="Size of the agent's writable /tmp (tmpfs).")
    log_max_bytes: int = Field(default=2_000_000, ge=10_000, description="Per-container log kept and uploaded.")
    ready_timeout_s: float = Field(default=60.0, gt=0, description="Longest wait for the simulator's port.")
    pull_timeout_s: float = Field(default=600.0, gt=0, description="Longest pull of a team's image.")


class KubernetesSettings(BaseModel):
    namespace: str = "lbcloud"
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    image: str = "lbcloud:latest"
    dispatcher_url: str = "http://lbcloud-dispatcher.lbcloud.svc:8080"
    job_ttl_s: int = 3600
    gpu_sharing: Literal["device-handoff", "dra"] = "device-handoff"
    dra_device_class: str = Field(default="gpu.nvidia.com", description="DeviceClass of the shared DRA claim.")
    kube_version: str = Field(default="1.32", description="Cluster minor version (picks the DRA API version).")
    compat: Literal["current", "1.20"] = Field(
        default="current", description="'1.20': no native sidecars or podFailurePolicy (old clusters)."
    )
    dispatcher_namespace: str | None = Field(
        default=None, description="Namespace of the dispatcher pods (NetworkPolicy egress); default: namespace."
    )
    dispatcher_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "lbcloud", "app.kubernetes.io/component": "dispatcher"},
        description="Labels of the dispatcher pods evaluation pods may reach.",
    )
    image_pull_secrets: list[str] = Field(default_factory=list)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None,
        description="Pull policy of every container (default: the cluster's); Never where images are preloaded.",
    )
    allowed_registries: list[str] = Field(default_factory=list)


class ArtifactSettings(BaseModel):
    url: str | None = Field(
        default=None, description="A folder path, or s3://bucket/prefix. Default: <data_dir>/artifacts"
    )
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    spool_dir: str | None = Field(
        default=None, description="Local outbox for uploads that failed (default: <data_dir>/outbox)"
    )


class EvalAISettings(BaseModel):
    enabled: bool = False
    base_url: str = "https://eval.ai"
    token: str | None = None
    auth_scheme: Literal["Bearer", "Token"] = "Bearer"
    challenge_id: int | None = None
    queue_name: str | None = None
    phase_tracks: dict[int, str] = Field(default_factory=dict, description="EvalAI phase pk -> track name")
    split: str = "leaderboard"
    poll_interval_s: float = 5.0
    max_poll_interval_s: float = 60.0
    partial_interval_s: float = 60.0
    cancel_poll_interval_s: float = 30.0
    requests_per_minute: int = 50
    allowed_registries: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=20.0, description="Per-request timeout of the EvalAI client.")
    max_attempts: int = Field(default=3, ge=1, description="Tries per EvalAI request (429/5xx/timeouts).")
    max_backoff_s: float = 30.0
    max_inline_wait_s: float = Field(default=10.0, description="Longest Retry-After the client waits inline.")
    auth_backoff_s: float = Field(default=300.0, description="Pause after EvalAI refused the host token.")
    max_unexpected_deliveries: int = Field(default=3, ge=1)
    outbox_dir: str | None = Field(
        default=None, description="Undelivered final results and parked messages (default: <data_dir>/evalai-outbox)"
    )


class SQSSettings(BaseModel):
    enabled: bool = False
    queue_url: str | None = None
    dead_letter_queue_url: str | None = None
    region: str = "us-east-1"
    endpoint_url: str | None = None
    wait_time_s: int = 20
    visibility_timeout_s: int = 60
    retry_visibility_s: int = Field(default=30, description="When a message returns after EvalAI was unreachable.")


class TeamProfile(BaseModel):
    """What the leaderboard shows about a team beyond its name."""

    affiliation: str | None = None
    method_url: str | None = Field(default=None, description="The method's paper or code (http or https URL)")

    @field_validator("method_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("https://", "http://")):
            raise ValueError(f"method_url must start with https:// or http://, not {url!r}")
        return url


class Deadline(BaseModel):
    name: str
    at: str = Field(description="When, as shown (e.g. 2027-05-31 23:59 UTC)")


class ChallengeSettings(BaseModel):
    """The challenge overview page (``/challenge``)."""

    title: str = "Autonomous driving leaderboard"
    description: str = Field(
        default="Submit an autonomous-driving agent; it is evaluated route by route in a closed-loop simulator "
        "and scored exactly as the official leaderboard does.",
        description="One or two paragraphs (plain text)",
    )
    rules: list[str] = Field(default_factory=list, description="One line per rule")
    deadlines: list[Deadline] = Field(default_factory=list)


class WebSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    operator_token: str | None = None
    team_tokens: dict[str, str] = Field(default_factory=dict, description="team name -> API token")
    public_url: str | None = None
    team_profiles: dict[str, TeamProfile] = Field(
        default_factory=dict, description="team name -> affiliation and method link shown on the leaderboard"
    )
    challenge: ChallengeSettings = Field(default_factory=ChallengeSettings)
    baseline_teams: list[str] = Field(
        default_factory=list, description="Teams shown on the leaderboard as baselines (marked, not ranked)"
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the API and forms accept (413 beyond)."
    )

    @model_validator(mode="after")
    def _distinct_tokens(self) -> WebSettings:
        owners: dict[str, str] = {}
        if self.operator_token:
            owners[self.operator_token] = "the operator"
        for team, token in self.team_tokens.items():
            if not token:
                raise ValueError(f"team_tokens.{team}: the token is empty")
            if token in owners:
                raise ValueError(f"team_tokens.{team}: the same token as {owners[token]}; every token must be distinct")
            owners[token] = f"team {team}"
        return self


class DispatcherSettings(BaseModel):
    owner: str | None = Field(default=None, description="Lease owner id (default: hostname-pid)")
    tick_s: float = Field(default=0.2, gt=0.0, le=60.0)
    lease_s: float = Field(default=30.0, gt=0.0)
    team_limit: int | None = Field(default=None, ge=1, description="Max concurrent attempts per team (None: no limit)")

    @model_validator(mode="after")
    def _lease_outlives_ticks(self) -> DispatcherSettings:
        if self.lease_s < 3 * self.tick_s:
            raise ValueError(f"lease_s ({self.lease_s:g}) must be at least three ticks (tick_s {self.tick_s:g})")
        return self

    speculative_smoke: bool = Field(
        default=True,
        description="Work-conserving smoke gate: idle slots run a gated submission's routes speculatively "
        "(pre-empted first, cancelled if the smoke route fails); false: nothing runs before the smoke route passed",
    )
    partial_publish_interval_s: float = Field(
        default=1.0, ge=0.0, description="Merge and publish a submission at most this often while it runs"
    )


class Settings(BaseSettings):
    """All of lbcloud's settings."""

    model_config = SettingsConfigDict(env_prefix="LBCLOUD_", env_nested_delimiter="__", extra="forbid")

    data_dir: str = Field(default=".lbcloud", description="Where the embedded defaults keep their files.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL. Default: sqlite:///<data_dir>/lbcloud.db"
    )
    backend: Literal["local", "kubernetes", "docker"] = "local"
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    local: LocalBackendSettings = Field(default_factory=LocalBackendSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    docker: DockerSettings = Field(default_factory=DockerSettings)
    evalai: EvalAISettings = Field(default_factory=EvalAISettings)
    sqs: SQSSettings = Field(default_factory=SQSSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    dispatcher: DispatcherSettings = Field(default_factory=DispatcherSettings)
    tracks: list[TrackSettings] = Field(default_factory=default_tracks)

    @field_validator("tracks")
    @classmethod
    def _unique_track_names(cls, tracks: list[TrackSettings]) -> list[TrackSettings]:
        names = [t.name for t in tracks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate track names: {', '.join(dupes)}")
        return tracks

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init kwargs carry the YAML file merged with CLI overrides (see load_settings)
        return (env_settings, init_settings)

    # derived values -----------------------------------------------------------------------------
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_path / 'lbcloud.db').resolve()}"

    @property
    def effective_artifacts_url(self) -> str:
        return self.artifacts.url or str((self.data_path / "artifacts").resolve())

    def track_map(self) -> dict[str, Track]:
        """Tracks by name (validated domain values)."""
        return {t.name: t.to_track() for t in self.tracks}

    def track(self, name: str) -> Track:
        tracks = self.track_map()
        if name not in tracks:
            raise ConfigError(f"unknown track {name!r}; known tracks: {', '.join(sorted(tracks))}")
        return tracks[name]


def _format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{source}: {where}: {first['msg']}{more}"


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``path`` (or ``$LBCLOUD_CONFIG`` / ``./lbcloud.yaml``), env and overrides.

    Raises :class:`ConfigError` with the file and the offending field on any problem.
    """
    if path is None:
        env_path = os.environ.get("LBCLOUD_CONFIG")
        path = Path(env_path) if env_path else (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None)
    data: dict[str, Any] = {}
    source = "settings"
    if path is not None:
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: settings file not found")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "?"
            raise ConfigError(f"{path}: {where}: not valid YAML ({getattr(err, 'problem', err)})") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: cannot read settings file ({err})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the settings file must be a mapping of keys to values")
        data = loaded
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None
