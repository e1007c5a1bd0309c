"""Node pools and the GPU node image: the parts of the cluster spec that become EC2 machines."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lbcloud.cluster.prices import NVIDIA_GPU_FAMILIES, gpu_count, instance_family

INSTANCE_TYPE = re.compile(
    r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|[0-9]*xlarge|metal(-[0-9]+xl)?)$"
)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,28}[a-z0-9])?$")  # pool names: short, they prefix AWS names
DRIVER_VERSION = re.compile(r"^[0-9]{3}(\.[0-9]{1,3}){1,2}$")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
SYSTEM_POOL = "system"
POOL_LABEL = "lbcloud.io/pool"
GPU_LABEL = "lbcloud.io/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"


class SpecModel(BaseModel):
    """Base of every spec section: unknown fields are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Capacity(StrEnum):
    """How a pool buys its instances."""

    ON_DEMAND = "on-demand"
    SPOT = "spot"  # cheaper, may be reclaimed; lbcloud retries preempted routes without blame


class ImageKind(StrEnum):
    """Which machine image GPU nodes boot."""

    EKS_ACCELERATED = "eks-accelerated"  # Amazon's EKS GPU image (AL2023, current NVIDIA driver)
    CUSTOM = "custom"  # built by lbcloud with Packer: Ubuntu EKS image + pinned NVIDIA driver


class Taint(SpecModel):
    key: str
    value: str = ""
    effect: str = "NoSchedule"

    @field_validator("effect")
    @classmethod
    def _effect(cls, effect: str) -> str:
        if effect not in TAINT_EFFECTS:
            raise ValueError(f"taint effect must be one of {', '.join(TAINT_EFFECTS)}, got {effect!r}")
        return effect


def _check_instance_type(value: str) -> str:
    if not INSTANCE_TYPE.match(value):
        raise ValueError(f"{value!r} is not an EC2 instance type (expected family.size, e.g. g5.xlarge)")
    return value


class SystemPool(SpecModel):
    """The small always-on pool for lbcloud's dispatcher and web, the autoscaler and the add-ons."""

    instance_type: str = "t3.large"
    min: int = Field(default=1, ge=1)
    max: int = Field(default=2, ge=1)
    disk_gb: int = Field(default=50, ge=20)
    capacity: Capacity = Capacity.ON_DEMAND

    _instance_type = field_validator("instance_type")(_check_instance_type)

    @model_validator(mode="after")
    def _bounds(self) -> SystemPool:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class GpuPool(SpecModel):
    """One autoscaled pool of GPU instances of a single type (scales to zero when idle)."""

    name: str
    instance_type: str
    min: int = Field(default=0, ge=0)
    max: int = Field(default=4, ge=1)
    capacity: Capacity = Capacity.ON_DEMAND
    disk_gb: int = Field(default=200, ge=50)
    image: ImageKind | None = None  # default: gpu_image.kind
    gpus: int | None = Field(default=None, ge=1)  # default: from the instance table
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=lambda: [Taint(key=GPU_TAINT_KEY, value="true")])

    _instance_type = field_validator("instance_type")(_check_instance_type)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not DNS_LABEL.match(name) or name == SYSTEM_POOL:
            raise ValueError(f"pool name {name!r} must be 1-30 lowercase letters, digits or '-' (and not 'system')")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> GpuPool:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if instance_family(self.instance_type) not in NVIDIA_GPU_FAMILIES:
            raise ValueError(f"instance type {self.instance_type} has no NVIDIA GPU (use e.g. g5.xlarge)")
        if self.gpus is None and gpu_count(self.instance_type) is None:
            raise ValueError(f"GPU count of {self.instance_type} is not known; set `gpus:` for this pool")
        return self

    @property
    def gpus_per_node(self) -> int:
        return self.gpus if self.gpus is not None else (gpu_count(self.instance_type) or 1)


class GpuImage(SpecModel):
    """The GPU node image. ``custom`` pins the NVIDIA driver (CARLA 0.9.x needs the 470 series)."""

    kind: ImageKind
    nvidia_driver: str = "470.182.03"
    ubuntu_version: str = "22.04"
    ami_id: str | None = None  # set when the image was built elsewhere; otherwise found by name
    builder_instance_type: str = "g5.xlarge"
    disk_gb: int = Field(default=100, ge=30)

    _builder = field_validator("builder_instance_type")(_check_instance_type)

    @field_validator("nvidia_driver")
    @classmethod
    def _driver(cls, version: str) -> str:
        if not DRIVER_VERSION.match(version):
            raise ValueError(f"NVIDIA driver version {version!r} must look like 470.182.03")
        return version

    @field_validator("ubuntu_version")
    @classmethod
    def _ubuntu(cls, version: str) -> str:
        if version not in ("20.04", "22.04", "24.04"):
            raise ValueError(f"ubuntu_version must be 20.04, 22.04 or 24.04, got {version!r}")
        return version

    @field_validator("ami_id")
    @classmethod
    def _ami(cls, ami: str | None) -> str | None:
        if ami is not None and not re.match(r"^ami-[0-9a-f]{8,17}$", ami):
            raise ValueError(f"ami_id {ami!r} is not an AMI id (ami-0123456789abcdef0)")
        return ami
