"""Cost figures: from the price table, overridable, with scale-to-zero visible."""

from __future__ import annotations

from lbcloud.cluster.costs import EKS_CONTROL_PLANE_USD_PER_HOUR, NAT_GATEWAY_USD_PER_HOUR, cost_lines, pool_costs
from lbcloud.cluster.prices import KNOWN_INSTANCE_TYPES, hourly_price
from lbcloud.cluster.spec import ClusterSpec
from tests.cluster.conftest import spec_from


def test_table_covers_the_supported_types_with_gpu_counts() -> None:
    for name in ("g5.xlarge", "g5.2xlarge", "g5.4xlarge", "g5.8xlarge", "g5.12xlarge", "t3.large", "m5.large"):
        assert KNOWN_INSTANCE_TYPES[name].usd_per_hour > 0
    assert KNOWN_INSTANCE_TYPES["g5.12xlarge"].gpus == 4
    assert KNOWN_INSTANCE_TYPES["t3.large"].gpus == 0


def test_idle_cost_is_only_the_always_on_parts(example_spec: ClusterSpec) -> None:
    costs = {c.pool: c for c in pool_costs(example_spec)}
    assert costs["g5-xlarge"].idle_usd_per_hour == 0.0
    assert costs["g5-xlarge"].busy_usd_per_hour == 4 * 1.006
    lines = cost_lines(example_spec)
    assert "us-east-1 on-demand list prices" in lines[0]
    idle = EKS_CONTROL_PLANE_USD_PER_HOUR + NAT_GATEWAY_USD_PER_HOUR + 0.0832
    busy = EKS_CONTROL_PLANE_USD_PER_HOUR + NAT_GATEWAY_USD_PER_HOUR + 2 * 0.0832 + 4 * 1.006 + 2 * 5.672
    assert f"${idle:,.2f}/hour" in lines[-1]
    assert f"${busy:,.2f}/hour" in lines[-1]


def test_prices_can_be_overridden_and_unknown_ones_are_flagged() -> None:
    spec = spec_from(prices={"g5.xlarge": 2.0})
    assert hourly_price("g5.xlarge", spec.prices) == 2.0
    assert {c.pool: c for c in pool_costs(spec)}["g5-xlarge"].busy_usd_per_hour == 8.0
    unknown = spec_from(gpu_pools=[{"name": "p4", "instance_type": "p4d.24xlarge", "gpus": 8}], tracks=[], settings={})
    assert "unknown" in "\n".join(cost_lines(unknown))
    assert "add them under `prices:`" in cost_lines(unknown)[-1]
