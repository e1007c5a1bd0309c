"""The cluster spec: the one short YAML file an operator writes to describe the whole cloud.

``load_spec(path)`` reads and validates it; every problem becomes one :class:`ConfigError` line that
names the file and the field (``cluster.yaml: gpu_pools[0] (g5): min (3) is greater than max (1)``).
``lbcloud cluster init`` writes :data:`EXAMPLE_SPEC_FILE`, a commented example.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from lbcloud.cluster.node_pools import SYSTEM_POOL, GpuImage, GpuPool, ImageKind, SpecModel, SystemPool
from lbcloud.domain.errors import ConfigError
from lbcloud.domain.tracks import TRACK_NAME

SUPPORTED_KUBERNETES_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33")
CLUSTER_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]{0,62}$")
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
IAM_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:(role|user|assumed-role)/[\w+=,.@/-]+$")
SQS_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[\w-]+(\.fifo)?$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

EXAMPLE_SPEC_FILE = "cluster-spec.example.yaml"


class Storage(SpecModel):
    """Where the dispatcher keeps logs and results (the only thing it may touch in S3)."""

    bucket: str
    prefix: str = "lbcloud/"

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, bucket: str) -> str:
        if not BUCKET.match(bucket):
            raise ValueError(f"{bucket!r} is not a valid S3 bucket name")
        return bucket

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        prefix = prefix.strip("/")
        return f"{prefix}/" if prefix else ""


class Database(SpecModel):
    """The PostgreSQL URL is a secret: the spec names the environment variable holding it."""

    url_env: str = "LBCLOUD_DATABASE_URL"


class EvalAI(SpecModel):
    """The EvalAI challenge lbcloud serves (its token comes from ``token_env`` at ``cluster up``)."""

    base_url: str = "https://eval.ai"
    challenge_id: int
    token_env: str = "EVALAI_TOKEN"
    phase_tracks: dict[int, str] = Field(default_factory=dict)
    sqs_queue_arn: str | None = None
    sqs_queue_url: str | None = None

    @field_validator("sqs_queue_arn")
    @classmethod
    def _arn(cls, arn: str | None) -> str | None:
        if arn is not None and not SQS_ARN.match(arn):
            raise ValueError(f"{arn!r} is not an SQS queue ARN")
        return arn

    @model_validator(mode="after")
    def _queue_pair(self) -> EvalAI:
        if (self.sqs_queue_arn is None) != (self.sqs_queue_url is None):
            raise ValueError("give both sqs_queue_arn and sqs_queue_url, or neither")
        return self


class TrackPlacement(SpecModel):
    """Which pool runs a track (its routes, images and scorer live under ``settings.tracks``)."""

    name: str
    pool: str
    gpus_per_attempt: int = Field(default=1, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not TRACK_NAME.match(name):
            raise ValueError(f"track name {name!r} must be 1-63 letters, digits, '-', '_' or '.'")
        return name


class Logs(SpecModel):
    """Ship every container's log lines to CloudWatch Logs with a Fluent Bit DaemonSet."""

    enabled: bool = True
    retention_days: int = Field(default=30, ge=1)


class ClusterSpec(SpecModel):
    """The whole cloud: one EKS cluster, its pools, GPU image, add-ons and lbcloud itself."""

    name: str
    region: str
    kubernetes_version: str = "1.29"
    image: str
    namespace: str = "lbcloud"
    web_replicas: int = Field(default=2, ge=1)
    system_pool: SystemPool = Field(default_factory=SystemPool)
    gpu_image: GpuImage | None = None
    gpu_pools: list[GpuPool] = Field(default_factory=list)
    admins: list[str] = Field(default_factory=list)
    storage: Storage
    database: Database = Field(default_factory=Database)
    operator_token_env: str = "LBCLOUD_OPERATOR_TOKEN"
    evalai: EvalAI | None = None
    tracks: list[TrackPlacement] = Field(default_factory=list)
    logs: Logs = Field(default_factory=Logs)
    prices: dict[str, float] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _cluster_name(cls, name: str) -> str:
        if not CLUSTER_NAME.match(name):
            raise ValueError(f"cluster name {name!r} must start with a letter; letters, digits and '-' only")
        return name

    @field_validator("region")
    @classmethod
    def _region(cls, region: str) -> str:
        if not REGION.match(region):
            raise ValueError(f"{region!r} is not an AWS region (e.g. us-east-1)")
        return region

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version(cls, version: object) -> str:
        text = f"{version}"
        if text not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ValueError(
                f"Kubernetes {text} is not supported; use one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}"
            )
        return text

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        if not NAMESPACE.match(namespace):
            raise ValueError(f"namespace {namespace!r} must be a DNS label (lowercase letters, digits, '-')")
        return namespace

    @field_validator("admins")
    @classmethod
    def _admins(cls, admins: list[str]) -> list[str]:
        for arn in admins:
            if not IAM_ARN.match(arn):
                raise ValueError(f"{arn!r} is not an IAM role or user ARN")
        return admins

    @field_validator("operator_token_env")
    @classmethod
    def _env(cls, name: str) -> str:
        if not ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        return name

    @model_validator(mode="after")
    def _cross_checks(self) -> ClusterSpec:
        names = [p.name for p in self.gpu_pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate GPU pool names: {', '.join(dupes)}")
        for i, pool in enumerate(self.gpu_pools):
            kind = pool.image or (self.gpu_image.kind if self.gpu_image else None)
            if kind is None:
                raise ValueError(
                    f"gpu_pools[{i}] ({pool.name}): no GPU node image chosen; "
                    "set gpu_image.kind (eks-accelerated or custom) or the pool's image"
                )
            if kind is ImageKind.CUSTOM and self.gpu_image is None:
                raise ValueError(f"gpu_pools[{i}] ({pool.name}): image custom needs a gpu_image section (driver)")
        pools = {SYSTEM_POOL, *names}
        for i, track in enumerate(self.tracks):
            if track.pool not in pools:
                raise ValueError(
                    f"tracks[{i}] ({track.name}): unknown pool {track.pool!r}; pools: {', '.join(sorted(pools))}"
                )
        for secret in _secrets_in_settings(self.settings):
            raise ValueError(
                f"settings.{secret}: secrets do not belong in the spec; name an environment variable instead"
            )
        defined = self.settings.get("tracks")
        names_defined = {t.get("name") for t in defined if isinstance(t, dict)} if isinstance(defined, list) else set()
        for i, track in enumerate(self.tracks):
            if track.name not in names_defined:
                raise ValueError(
                    f"tracks[{i}] ({track.name}): no track {track.name} under settings.tracks; "
                    "define its routes, images and scorer there"
                )
        for env in (self.database.url_env, *([self.evalai.token_env] if self.evalai else [])):
            if not ENV_NAME.match(env):
                raise ValueError(f"{env!r} is not an environment variable name")
        return self

    # derived values ---------------------------------------------------------------------------
    def image_kind(self, pool: GpuPool) -> ImageKind:
        """The image the pool's nodes boot (validated to exist on load)."""
        if pool.image is not None:
            return pool.image
        assert self.gpu_image is not None  # guaranteed by _cross_checks
        return self.gpu_image.kind

    def needs_custom_image(self) -> bool:
        return any(self.image_kind(p) is ImageKind.CUSTOM for p in self.gpu_pools)

    def pool(self, name: str) -> GpuPool | None:
        return next((p for p in self.gpu_pools if p.name == name), None)

    @property
    def kube_context(self) -> str:
        """The kubectl context ``cluster up`` creates (so no command depends on the current context)."""
        return f"lbcloud-{self.name}"


_SECRET_SETTINGS = (
    ("database_url",),
    ("evalai", "token"),
    ("web", "operator_token"),
    ("web", "team_tokens"),
    ("artifacts", "s3_secret_access_key"),
)


def _secrets_in_settings(settings: dict[str, Any]) -> list[str]:
    found = []
    for path in _SECRET_SETTINGS:
        node: Any = settings
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node:
            found.append(".".join(path))
    return found


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line naming the file, the field and the problem (plus how many more problems there are)."""
    errors = err.errors()
    first = errors[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; `lbcloud cluster init` writes an example)"
    where = _location(loc)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if message.startswith(("gpu_pools[", "tracks[")) or where == "(top level)":
        return f"{source}: {message}{more}"
    return f"{source}: {where}: {message}{more}"


def parse_spec(data: object, source: str = "cluster spec") -> ClusterSpec:
    """Validate an already-loaded mapping; raises :class:`ConfigError` with one line."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the cluster spec must be a mapping of keys to values")
    try:
        return ClusterSpec.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def load_spec(path: Path) -> ClusterSpec:
    """Read and validate a cluster spec file; raises :class:`ConfigError` with one line."""
    if not path.is_file():
        raise ConfigError(f"{path}: cluster spec not found (write an example with: lbcloud cluster init)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise ConfigError(f"{path}: {where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the cluster spec ({err})") from None
    return parse_spec(data, str(path))


def example_spec_text() -> str:
    """The commented example spec ``lbcloud cluster init`` writes."""
    return resources.files("lbcloud.cluster").joinpath("templates", EXAMPLE_SPEC_FILE).read_text(encoding="utf-8")
