"""A 20-route submission's EvalAI request count stays bounded and under EvalAI's 60 requests/min."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_evalai.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_evalai", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_twenty_routes_cost_a_bounded_number_of_requests() -> None:
    figures = load_bench().run(routes=20, route_interval=60.0, partial_interval=60.0)
    own: Counter[str] = figures["own"]
    # one E7, at most one E9 per route (each after one E6 re-read), E6 + E8 + E6 at the end, E6 at intake
    assert own["E7"] == 1 and own["E8"] == 1
    assert own["E9"] <= 19 and own["E6"] == own["E9"] + 3
    assert sum(own.values()) <= 3 * 20 + 5
    assert figures["peak"] < 60


def test_partials_are_throttled_when_routes_finish_quickly() -> None:
    figures = load_bench().run(routes=20, route_interval=5.0, partial_interval=60.0)
    own: Counter[str] = figures["own"]
    assert own["E9"] <= 2  # 95 s of routes: at most one partial per 60 s
