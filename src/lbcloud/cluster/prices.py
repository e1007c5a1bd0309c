"""EC2 instance types lbcloud knows: hourly price and GPU count.

Prices are us-east-1 on-demand Linux list prices in USD per hour (spot is usually 60-70 % cheaper
but varies). They only feed the cost figures printed by ``lbcloud cluster plan`` and the operator
guide; override them per instance type with the spec's ``prices:`` mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InstanceType:
    """One EC2 instance type: its NVIDIA GPU count and on-demand list price (USD/hour, us-east-1)."""

    name: str
    gpus: int
    vcpus: int
    memory_gib: int
    usd_per_hour: float


KNOWN_INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        # system pool candidates
        InstanceType("t3.medium", 0, 2, 4, 0.0416),
        InstanceType("t3.large", 0, 2, 8, 0.0832),
        InstanceType("t3.xlarge", 0, 4, 16, 0.1664),
        InstanceType("m5.large", 0, 2, 8, 0.096),
        InstanceType("m5.xlarge", 0, 4, 16, 0.192),
        InstanceType("m5.2xlarge", 0, 8, 32, 0.384),
        # GPU pools: NVIDIA A10G (g5), T4 (g4dn), L4 (g6)
        InstanceType("g4dn.xlarge", 1, 4, 16, 0.526),
        InstanceType("g4dn.2xlarge", 1, 8, 32, 0.752),
        InstanceType("g4dn.12xlarge", 4, 48, 192, 3.912),
        InstanceType("g5.xlarge", 1, 4, 16, 1.006),
        InstanceType("g5.2xlarge", 1, 8, 32, 1.212),
        InstanceType("g5.4xlarge", 1, 16, 64, 1.624),
        InstanceType("g5.8xlarge", 1, 32, 128, 2.448),
        InstanceType("g5.12xlarge", 4, 48, 192, 5.672),
        InstanceType("g5.16xlarge", 1, 64, 256, 4.096),
        InstanceType("g5.24xlarge", 4, 96, 384, 8.144),
        InstanceType("g5.48xlarge", 8, 192, 768, 16.288),
        InstanceType("g6.xlarge", 1, 4, 16, 0.8048),
        InstanceType("g6.2xlarge", 1, 8, 32, 0.9776),
    )
}

# Instance families that carry NVIDIA GPUs (a GPU pool must use one of these).
NVIDIA_GPU_FAMILIES = frozenset({"g4dn", "g5", "g6", "g6e", "gr6", "p3", "p3dn", "p4d", "p4de", "p5", "p5e"})

PRICE_NOTE = "us-east-1 on-demand list prices (USD/hour); override with the spec's `prices:` mapping"


def instance_family(instance_type: str) -> str:
    """``g5.xlarge`` -> ``g5``."""
    return instance_type.split(".", 1)[0]


def hourly_price(instance_type: str, overrides: Mapping[str, float] | None = None) -> float | None:
    """On-demand USD/hour for ``instance_type``: the override if given, else the table, else None."""
    if overrides and instance_type in overrides:
        return overrides[instance_type]
    known = KNOWN_INSTANCE_TYPES.get(instance_type)
    return known.usd_per_hour if known else None


def gpu_count(instance_type: str) -> int | None:
    """NVIDIA GPUs per instance, or None when the type is not in the table."""
    known = KNOWN_INSTANCE_TYPES.get(instance_type)
    return known.gpus if known else None
