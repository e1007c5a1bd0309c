"""Startup checks and assembly of the EvalAI integration."""

from __future__ import annotations

import pytest

from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.integration import build_evalai_integration, verify_challenge
from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.errors import ConfigError
from lbcloud.services.intake import Intake
from tests.adapters.evalai.conftest import FakeClock, make_config
from tests.adapters.evalai.standin import EvalAIStandIn


def test_a_matching_configuration_passes_with_warnings(standin: EvalAIStandIn, client: EvalAIClient) -> None:
    warnings = verify_challenge(client, client.config)
    assert warnings == ["phase 2 (phase-2) has partial evaluation disabled: participants see results only at the end"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"challenge_id": 7}, "belongs to challenge 1, not evalai.challenge_id 7"),
        ({"phase_tracks": {1: "sumo-dev", 9: "sumo-test"}}, r"names phase\(s\) \[9\]"),
        ({"phase_tracks": {}}, "phase_tracks is empty"),
        ({"queue_name": None}, "queue_name and evalai.challenge_id are required"),
    ],
)
def test_a_contradicting_configuration_fails_fast(
    standin: EvalAIStandIn, clock: FakeClock, overrides: dict[str, object], message: str
) -> None:
    config = make_config(standin, **overrides)
    with EvalAIClient(config, clock=clock) as client, pytest.raises(ConfigError, match=message):
        verify_challenge(client, config)


def test_an_unreachable_evalai_does_not_stop_startup(standin: EvalAIStandIn, clock: FakeClock) -> None:
    standin.fail(600.0, status=503)
    config = make_config(standin)
    with EvalAIClient(config, clock=clock) as client:
        assert "503" in verify_challenge(client, config)[0]


def test_the_assembly_shares_one_client_and_offers_pollers(
    standin: EvalAIStandIn, store: SqlStateStore, intake: Intake, clock: FakeClock
) -> None:
    integration = build_evalai_integration(make_config(standin), store=store, intake=intake, clock=clock)
    assert integration.source is not None and integration.source.client is integration.client
    assert integration.sink.client is integration.client and integration.watcher.client is integration.client
    assert [p.name for p in integration.pollers()] == ["evalai queue", "evalai cancellations", "evalai outbox"]
    for poller in integration.pollers():
        poller.run()  # nothing queued, nothing active: each returns quietly
    integration.close()
