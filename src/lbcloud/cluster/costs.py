"""What the cluster costs per hour, from the price table (``prices.py``) and the spec's pools."""

from __future__ import annotations

from dataclasses import dataclass

from lbcloud.cluster.node_pools import SYSTEM_POOL, Capacity
from lbcloud.cluster.prices import PRICE_NOTE, hourly_price
from lbcloud.cluster.spec import ClusterSpec


@dataclass(frozen=True, slots=True)
class PoolCost:
    """One pool's hourly price per node and its range (min..max nodes)."""

    pool: str
    instance_type: str
    capacity: Capacity
    usd_per_node_hour: float | None
    min_nodes: int
    max_nodes: int

    @property
    def idle_usd_per_hour(self) -> float | None:
        return None if self.usd_per_node_hour is None else self.usd_per_node_hour * self.min_nodes

    @property
    def busy_usd_per_hour(self) -> float | None:
        return None if self.usd_per_node_hour is None else self.usd_per_node_hour * self.max_nodes


# Always-on charges besides the nodes: the EKS control plane (standard support) and the one NAT
# gateway eksctl creates for the private node subnets (plus its per-GB data charge, not counted).
EKS_CONTROL_PLANE_USD_PER_HOUR = 0.10
NAT_GATEWAY_USD_PER_HOUR = 0.045


def pool_costs(spec: ClusterSpec) -> list[PoolCost]:
    system = spec.system_pool
    costs = [
        PoolCost(
            SYSTEM_POOL,
            system.instance_type,
            system.capacity,
            hourly_price(system.instance_type, spec.prices),
            system.min,
            system.max,
        )
    ]
    for pool in spec.gpu_pools:
        price = hourly_price(pool.instance_type, spec.prices)
        costs.append(PoolCost(pool.name, pool.instance_type, pool.capacity, price, pool.min, pool.max))
    return costs


def _usd(value: float | None, digits: int = 2) -> str:
    return "unknown" if value is None else f"${value:,.{digits}f}"


def cost_lines(spec: ClusterSpec) -> list[str]:
    """A short table: per pool the node price, idle and full-scale cost per hour, then the totals."""
    lines = [f"Cost per hour ({PRICE_NOTE}):"]
    idle = busy = EKS_CONTROL_PLANE_USD_PER_HOUR + NAT_GATEWAY_USD_PER_HOUR
    unknown = False
    for cost in pool_costs(spec):
        spot = " (spot: usually much less)" if cost.capacity is Capacity.SPOT else ""
        lines.append(
            f"  {cost.pool:<16} {cost.instance_type:<13} {_usd(cost.usd_per_node_hour, 3)}/node"
            f"  idle {cost.min_nodes} node(s) {_usd(cost.idle_usd_per_hour)}"
            f"  full {cost.max_nodes} node(s) {_usd(cost.busy_usd_per_hour)}{spot}"
        )
        if cost.usd_per_node_hour is None:
            unknown = True
        else:
            idle += cost.usd_per_node_hour * cost.min_nodes
            busy += cost.usd_per_node_hour * cost.max_nodes
    lines.append(
        f"  EKS control plane {_usd(EKS_CONTROL_PLANE_USD_PER_HOUR, 3)}/hour,"
        f" NAT gateway {_usd(NAT_GATEWAY_USD_PER_HOUR, 3)}/hour (+ data)"
    )
    suffix = " (plus pools with unknown prices: add them under `prices:`)" if unknown else ""
    lines.append(
        f"  idle (every pool at its minimum; GPU pools with min 0 cost nothing): {_usd(idle)}/hour;"
        f" everything at max: {_usd(busy)}/hour{suffix}"
    )
    return lines
