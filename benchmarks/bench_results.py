"""Results engine speed: score, write, read and merge 20, 1,000 and 100,000 route records.

Run:  python benchmarks/bench_results.py [--sizes 20,1000,100000] [--workers 10]

For each size it prints records per second and the peak traced memory (tracemalloc) of each phase:
scoring records with ``build_route_record``, writing worker files with ``dumps_results``, reading
them back with ``parse_results``, merging the files (``merge_results``, complete: global record
included), and building the same document from route records (``merge_route_records``).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lbcloud.domain.results.merge import ExpectedInstances, MergeInput, merge_results, merge_route_records
from lbcloud.domain.results.model import ResultFormat, ResultsFile, RouteRecord, route_id_for
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.routes import split_routes
from lbcloud.domain.results.scoring import (
    ROUTE_TIMEOUT_MESSAGE,
    InfractionEvent,
    build_route_record,
    collision_message,
    min_speed_message,
    off_road_message,
)
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.tracks import ScorerVersion

T = TypeVar("T")
SENSORS = ("carla_camera", "carla_camera", "carla_lidar", "carla_gnss", "carla_imu", "carla_speedometer")


def make_records(n: int, seed: int = 7) -> list[RouteRecord]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        events: list[InfractionEvent] = []
        for _ in range(rng.randint(0, 4)):
            kind = rng.random()
            if kind < 0.4:
                p = round(rng.uniform(30, 99), 2)
                events.append(InfractionEvent("min_speed_infractions", min_speed_message(p), p))
            elif kind < 0.7:
                events.append(
                    InfractionEvent("collisions_vehicle", collision_message("vehicle.audi.tt", i, 1.0, 2.0, 0.5))
                )
            elif kind < 0.8 and not any(e.kind == "outside_route_lanes" for e in events):
                q = rng.uniform(0, 5)
                events.append(InfractionEvent("outside_route_lanes", off_road_message(q * 30, q), q))
            else:
                events.append(InfractionEvent("route_timeout", ROUTE_TIMEOUT_MESSAGE))
        rc: int | float = 100 if rng.random() < 0.6 else round(rng.uniform(0, 99.9), 2)
        records.append(
            build_route_record(
                index=i,
                route_id=route_id_for(i, 0),
                route_completion=rc,
                events=events,
                route_length=rng.uniform(500, 12000),
                duration_game=rng.uniform(50, 3000),
                duration_system=rng.uniform(150, 9000),
                scorer=ScorerVersion.LB20,
            )
        )
    return records


def measure(fn: Callable[[], T]) -> tuple[T, float, int]:
    """(result, seconds, peak traced bytes); timed once without tracing, then traced for memory."""
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def row(phase: str, n: int, seconds: float, peak: int) -> None:
    rate = n / seconds if seconds > 0 else float("inf")
    print(f"  {phase:<34} {seconds:9.3f} s  {rate:12,.0f} records/s  peak {peak / 2**20:9.1f} MiB")


def bench(n: int, workers: int) -> None:
    print(f"{n:,} route records, {min(n, workers)} worker files")
    records, seconds, peak = measure(lambda: make_records(n))
    row("score (build_route_record)", n, seconds, peak)
    shares = split_routes([r.route_id for r in records], workers)
    files: list[ResultsFile] = []
    start = 0
    for share in shares:
        chunk = tuple(r.with_index(i) for i, r in enumerate(records[start : start + len(share)]))
        start += len(share)
        files.append(ResultsFile(ResultFormat.V2X, chunk, (len(chunk), len(chunk)), sensors=SENSORS))
    texts, seconds, peak = measure(lambda: [dumps_results(f) for f in files])
    row("write worker files (dumps_results)", n, seconds, peak)
    parsed, seconds, peak = measure(lambda: [parse_results(t, f"w{k}.json") for k, t in enumerate(texts)])
    row("read worker files (parse_results)", n, seconds, peak)
    inputs = [MergeInput(f"partial_agent_results{k + 1}.json", p) for k, p in enumerate(parsed)]
    expected = ExpectedInstances.for_routes([str(i) for i in range(n)])
    outcome, seconds, peak = measure(lambda: merge_results(inputs, expected))
    assert outcome.complete and outcome.results.entry_status == "Finished"
    row("merge files + global record", n, seconds, peak)
    _, seconds, peak = measure(lambda: merge_route_records(records, sensors=SENSORS, expected=expected))
    row("merge route records + global record", n, seconds, peak)
    text, seconds, peak = measure(lambda: dumps_results(outcome.results))
    row("write merged file", n, seconds, peak)
    print(f"  merged file: {len(text) / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="20,1000,100000")
    parser.add_argument("--workers", type=int, default=10)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    for size in (int(s) for s in args.sizes.split(",")):
        bench(size, args.workers)
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"process peak RSS: {max_rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
