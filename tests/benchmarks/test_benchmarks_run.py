"""Every benchmark runs with small arguments and prints its figures (the full runs are in docs/benchmarks.md).

These check that the benchmarks still work, not how fast anything is.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services.docker import DockerTestEngine

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

SMALL_RUNS = {
    "control_plane": (
        ["--submissions", "20", "--seconds", "2", "--steady-ticks", "5"],
        [r"one slot frees per tick, 5 decisions: median [\d.]+ ms", r"dispatcher CPU: [\d.]+ CPU-s per minute"],
    ),
    "scheduler": (
        ["--seeds", "3"],
        [r"reference static split\s+mean [\d.]+", r"makespan / lower bound: lbcloud [\d.]+, reference [\d.]+"],
    ),
    "results": (["--sizes", "20,200"], [r"merge files \+ global record\s+[\d.]+ s\s+[\d,]+ records/s"]),
    "dispatcher_loop": (
        ["--live", "8", "--idle-seconds", "1", "--burst", "20", "--routes", "3", "--route-seconds", "0.2,0.5"],
        [r"idle tick CPU: [\d.]+ % of a core", r"collection stall: longest \d+ ms"],
    ),
    "store": (["--tasks", "100", "--transitions", "50"], [r"claim \(two racing\)\s+200 tries.*none twice"]),
    "k8s": (["--attempts", "10", "--seconds", "1"], [r"route task ready -> Job created .*n=10 median [\d.]+ ms"]),
    "evalai": (["--routes", "3", "--route-interval", "10"], [r"EvalAI requests for one 3-route submission"]),
    "agent_boundary": (
        ["--routes", "sumo-dev", "--subset", "0", "--starts", "2", "--repeats", "1"],
        [
            r"agent host\s+sim/wall\s+[\d.]+x\s+[\d.]+ ms/step\s+vs before [+-][\d.]+ ms/step",
            r"every record identical to before's \(apart from duration_system\): yes",
            r"agent start to setup\(\) answered, agent host\s+median\s+[\d.]+ ms",
        ],
    ),
}


def test_every_benchmark_has_a_small_run_here_or_an_end_to_end_test() -> None:
    # sumo, demo and sse drive real simulators for a minute or more; the suite covers their paths end to end.
    # k8s_node needs the real node: the k8s_node tier runs it on its session's node (tests/e2e/k8s_node).
    # docker needs the suite's Docker Engine (its small run is the test below)
    names = {p.stem.removeprefix("bench_") for p in BENCHMARKS.glob("bench_*.py")}
    assert names - set(SMALL_RUNS) == {"sumo", "demo", "sse", "k8s_node", "docker"}


@pytest.mark.parametrize("name", sorted(SMALL_RUNS))
def test_benchmark_runs_and_prints_its_figures(name: str) -> None:
    args, patterns = SMALL_RUNS[name]
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"bench_{name}.py"), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for pattern in patterns:
        assert re.search(pattern, done.stdout), f"{pattern!r} not in:\n{done.stdout}"


@pytest.mark.docker
@pytest.mark.sumo
def test_the_docker_benchmark_runs_on_the_suites_engine(
    docker_engine: DockerTestEngine, lbcloud_images: list[str]
) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_docker.py"), "--routes", "0", "--docker-host", docker_engine.url],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for pattern in (r"launch -> running s\s+[\d.]+\s+[\d.]+", r"sim/wall \(attempt\)\s+[\d.]+\s+[\d.]+"):
        assert re.search(pattern, done.stdout), f"{pattern!r} not in:\n{done.stdout}"
