"""Fixtures for the EvalAI adapter tests: a fake clock, the stand-in server, a client bound to both."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lbcloud.adapters.agents import AgentChecker
from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.models import EvalAIConfig
from lbcloud.adapters.evalai.sink import EvalAISink, FinalOutbox
from lbcloud.adapters.evalai.source import EvalAISource, MessageHandler, ParkedMessages, SubmissionDates
from lbcloud.adapters.store import SqlStateStore, open_state_store
from lbcloud.domain.tracks import Track
from lbcloud.services.intake import Intake
from lbcloud.settings import Settings
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


# ------------------------------------------------------------------------ lbcloud side: store, intake
ALLOWED_REGISTRIES = ["registry.local"]


@pytest.fixture
def tracks() -> dict[str, Track]:
    return Settings().track_map()


@pytest.fixture
def store(tmp_path: Path, tracks: dict[str, Track]) -> Iterator[SqlStateStore]:
    opened = open_state_store(f"sqlite:///{tmp_path / 'lbcloud.db'}")
    opened.sync_tracks(list(tracks.values()))
    yield opened
    opened.close()


@pytest.fixture
def intake(store: SqlStateStore, tracks: dict[str, Track]) -> Intake:
    return Intake(store, tracks, AgentChecker(ALLOWED_REGISTRIES))


@pytest.fixture
def outbox_dir(tmp_path: Path) -> Path:
    return tmp_path / "evalai-outbox"


@pytest.fixture
def sink(
    client: EvalAIClient, store: SqlStateStore, config: EvalAIConfig, clock: FakeClock, outbox_dir: Path
) -> EvalAISink:
    return EvalAISink(client, store, config, clock, outbox=FinalOutbox(outbox_dir))


@pytest.fixture
def parked(outbox_dir: Path, clock: FakeClock) -> ParkedMessages:
    return ParkedMessages(outbox_dir / "parked.jsonl", clock)


@pytest.fixture
def dates() -> SubmissionDates:
    return SubmissionDates()


@pytest.fixture
def handler(
    client: EvalAIClient,
    intake: Intake,
    store: SqlStateStore,
    config: EvalAIConfig,
    clock: FakeClock,
    parked: ParkedMessages,
    sink: EvalAISink,
    dates: SubmissionDates,
) -> MessageHandler:
    return MessageHandler(client, intake, store, config, clock=clock, parked=parked, rejections=sink, dates=dates)


@pytest.fixture
def source(client: EvalAIClient, handler: MessageHandler, config: EvalAIConfig, clock: FakeClock) -> EvalAISource:
    return EvalAISource(client, handler, config, clock)
