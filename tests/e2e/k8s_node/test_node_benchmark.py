"""`benchmarks/bench_k8s_node.py` runs on the session's node and prints its figures (not how fast)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services.kube_node import KubeNode

# the first test of a session may build lbcloud's images (cold cache: a few minutes) in its setup
pytestmark = [pytest.mark.k8s_node, pytest.mark.slow, pytest.mark.timeout(1800)]
BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_k8s_node.py"


def test_node_benchmark_runs_and_prints_its_figures(node_images: KubeNode) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--routes", "sumo-dev", "--node-dir", str(node_images.state_dir)],
        capture_output=True, text=True, timeout=1500, check=False, env=node_images.env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    print(done.stdout)  # the figures, in the report of `pytest -rA`
    for pattern in (
        r"Job created -> simulator ready\s+n=3 median [\d.]+ s, p95 [\d.]+ s",
        r"simulator ready -> agent started\s+n=3 median [\d.]+ s",
        r"agent started -> record collected\s+n=3 median [\d.]+ s",
        r"overhead per attempt \(node - local\)\s+n=3 median -?[\d.]+ s",
    ):
        assert re.search(pattern, done.stdout), f"{pattern!r} not in:\n{done.stdout}"
