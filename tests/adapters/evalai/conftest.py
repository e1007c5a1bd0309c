"""Fixtures for the EvalAI adapter tests: a fake clock, the stand-in server, a client bound to both."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.models import EvalAIConfig
from tests.adapters.evalai.standin import EvalAIStandIn


class FakeClock:
    """Implements ``lbcloud.services.ports.Clock``; ``sleep`` moves time forward instantly."""

    def __init__(self) -> None:
        self._t = 1000.0
        self._start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._t - 1000.0)

    def monotonic(self) -> float:
        with self._lock:
            return self._t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._t += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def standin(clock: FakeClock) -> Iterator[EvalAIStandIn]:
    with EvalAIStandIn(phases={1: True, 2: False}, clock=clock.monotonic) as server:
        yield server
    assert server.unknown_requests == [], f"undocumented requests: {server.unknown_requests}"


def make_config(standin: EvalAIStandIn, **overrides: object) -> EvalAIConfig:
    values: dict[str, object] = {
        "base_url": standin.base_url,
        "token": standin.host_jwt,
        "auth_scheme": "Bearer",
        "challenge_id": standin.challenge_id,
        "queue_name": standin.queue_name,
        "phase_tracks": {1: "sumo-dev", 2: "sumo-test"},
        "timeout_s": 2.0,
    }
    values.update(overrides)
    return EvalAIConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def config(standin: EvalAIStandIn) -> EvalAIConfig:
    return make_config(standin)


@pytest.fixture
def client(config: EvalAIConfig, clock: FakeClock) -> Iterator[EvalAIClient]:
    with EvalAIClient(config, clock=clock) as c:
        yield c
