"""Road networks of the SUMO track: signalised grid towns generated with ``netgenerate``.

A town is named by its parameters (``grid5x4-150m``: 5×4 junctions, 150 m blocks, one lane per
direction, every junction a traffic light with one protected phase per approach), so a route file's
``town`` attribute is enough to regenerate the exact network on any machine. Networks are cached
under :func:`~lbcloud.tracks.sumo.binaries.cache_dir` and generated atomically.
"""

from __future__ import annotations

import re
import subprocess
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lbcloud.domain.errors import InputError, Unavailable
from lbcloud.tracks.sumo.binaries import binary, build_atomically, cache_dir, sumo_environment

TOWN = re.compile(r"^grid(?P<nx>\d{1,2})x(?P<ny>\d{1,2})-(?P<block>\d{2,4})m$")
NET_FILE = "town.net.xml"
NETWORK_VERSION = "v1"  # bump when netgenerate_args changes, so caches never serve an old network
SPEED_LIMIT = 13.89  # m/s, 50 km/h
GREEN_S = 10
YELLOW_S = 3


@dataclass(frozen=True, slots=True)
class Town:
    """A grid town: ``nx``×``ny`` signalised junctions ``block_m`` apart."""

    nx: int
    ny: int
    block_m: int

    def __post_init__(self) -> None:
        if not (2 <= self.nx <= 20 and 2 <= self.ny <= 20 and 30 <= self.block_m <= 1000):
            raise InputError(f"town {self.name}: needs 2-20 junctions per side and 30-1000 m blocks")

    @property
    def name(self) -> str:
        return f"grid{self.nx}x{self.ny}-{self.block_m}m"

    @classmethod
    def parse(cls, name: str) -> Town:
        """The town named ``name``; raises InputError for an unknown name."""
        match = TOWN.match(name)
        if match is None:
            raise InputError(f"unknown SUMO town {name!r}: expected a name like 'grid5x4-150m'")
        return cls(int(match["nx"]), int(match["ny"]), int(match["block"]))


def netgenerate_args(town: Town, output: Path) -> list[str]:
    """The ``netgenerate`` command line for ``town`` (deterministic: no random options)."""
    return [
        str(binary("netgenerate")),
        "--grid",
        "--grid.x-number", str(town.nx),
        "--grid.y-number", str(town.ny),
        "--grid.length", str(town.block_m),
        "--grid.attach-length", str(town.block_m // 2),
        "--default.lanenumber", "1",
        "--default.speed", str(SPEED_LIMIT),
        "--default.junctions.type", "traffic_light",
        "--tls.layout", "incoming",
        "--tls.green.time", str(GREEN_S),
        "--tls.yellow.time", str(YELLOW_S),
        "--no-turnarounds",
        "--seed", "0",
        "--output-file", str(output),
    ]  # fmt: skip


def network_file(town: Town) -> Path:
    """The cached network of ``town``, generating it on first use (safe under concurrency)."""

    def build(tmp: Path) -> None:
        try:
            subprocess.run(
                netgenerate_args(town, tmp / NET_FILE),
                check=True,
                capture_output=True,
                text=True,
                env=sumo_environment(),
                timeout=120,
            )
        except subprocess.CalledProcessError as err:
            raise Unavailable(f"netgenerate failed for town {town.name}: {err.stderr.strip()[-300:]}") from err

    folder = build_atomically(cache_dir() / "networks" / NETWORK_VERSION / town.name, build)
    return folder / NET_FILE


@lru_cache(maxsize=8)
def _load(path: str) -> Any:
    import sumolib

    with warnings.catch_warnings():  # sumolib's note that the optional rtree module is absent
        warnings.simplefilter("ignore", UserWarning)
        return sumolib.net.readNet(path, withInternal=False)


def road_network(town: Town) -> Any:
    """The parsed network (a ``sumolib.net.Net``) of ``town``, cached per process."""
    return _load(str(network_file(town)))
