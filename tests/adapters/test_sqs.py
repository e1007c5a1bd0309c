"""The SQS source against a local AWS stand-in (moto's server on 127.0.0.1) and the EvalAI stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.models import EvalAIConfig
from lbcloud.adapters.evalai.sink import EvalAISink
from lbcloud.adapters.evalai.source import MessageHandler, ParkedMessages, Verdict
from lbcloud.adapters.sqs import REASON_ATTRIBUTE, SQSConfig, SQSSource, sqs_client
from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.submissions import SourceKind
from lbcloud.services.intake import Intake
from tests.adapters.evalai import conftest as evalai_fixtures
from tests.adapters.evalai.conftest import FakeClock
from tests.adapters.evalai.standin import EvalAIStandIn, submit_as_participant

IMAGE = "registry.local/team-alpha/agent:v1"

# fixtures shared with the EvalAI adapter tests (stand-in, client, store, intake, sink)
clock = evalai_fixtures.clock
standin = evalai_fixtures.standin
config = evalai_fixtures.config
client = evalai_fixtures.client
tracks = evalai_fixtures.tracks
store = evalai_fixtures.store
intake = evalai_fixtures.intake
outbox_dir = evalai_fixtures.outbox_dir
sink = evalai_fixtures.sink
parked = evalai_fixtures.parked


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Spy:
    """Counts calls to a boto3 client's operations."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if callable(attr):

            def call(*args: Any, **kwargs: Any) -> Any:
                self.calls.append(name)
                return attr(*args, **kwargs)

            return call
        return attr


@pytest.fixture
def sqs_config(moto_endpoint: str, request: pytest.FixtureRequest) -> SQSConfig:
    base = SQSConfig(queue_url="x", endpoint_url=moto_endpoint, access_key_id="testing", secret_access_key="testing")
    sqs = sqs_client(base)
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    queue = sqs.create_queue(QueueName=f"{name}")["QueueUrl"]
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    return SQSConfig(
        queue_url=queue,
        dead_letter_queue_url=dlq,
        endpoint_url=moto_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        wait_time_s=1,
        visibility_timeout_s=30,
        retry_visibility_s=0,
    )


@pytest.fixture
def sqs(sqs_config: SQSConfig) -> Spy:
    return Spy(sqs_client(sqs_config))


@pytest.fixture
def sqs_source(
    sqs: Spy,
    sqs_config: SQSConfig,
    client: EvalAIClient,
    intake: Intake,
    store: SqlStateStore,
    config: EvalAIConfig,
    clock: FakeClock,
    parked: ParkedMessages,
    sink: EvalAISink,
) -> SQSSource:
    handler = MessageHandler(
        client, intake, store, config, clock=clock, parked=parked, rejections=sink, source_kind=SourceKind.SQS
    )
    return SQSSource(sqs, handler, sqs_config, clock)


def depth(sqs: Spy, url: str) -> int:
    attrs = sqs.inner.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def send(sqs: Spy, url: str, body: dict[str, Any] | str) -> None:
    sqs.inner.send_message(QueueUrl=url, MessageBody=body if isinstance(body, str) else json.dumps(body))


def message_for(pk: int, phase: int = 1) -> dict[str, Any]:
    return {
        "challenge_pk": "1",
        "phase_pk": str(phase),
        "is_static_dataset_code_upload_submission": False,
        "submitted_image_uri": IMAGE,
        "submission_pk": pk,
    }


def test_a_message_is_recorded_then_deleted(
    standin: EvalAIStandIn, sqs: Spy, sqs_config: SQSConfig, sqs_source: SQSSource, store: SqlStateStore
) -> None:
    pk = submit_as_participant(standin, standin.add_participant("alpha"), IMAGE)
    send(sqs, sqs_config.queue_url, message_for(pk))
    result = sqs_source.poll_once()
    assert result.received == 1 and result.decisions[0].verdict is Verdict.ACK
    sub = store.find_submission("sqs", str(pk))
    assert sub is not None and sub.source is SourceKind.SQS and sub.agent.ref == IMAGE
    assert sqs.calls.index("change_message_visibility") < sqs.calls.index("delete_message")  # extended first
    assert depth(sqs, sqs_config.queue_url) == 0


def test_the_same_message_twice_is_recorded_once(
    standin: EvalAIStandIn, sqs: Spy, sqs_config: SQSConfig, sqs_source: SQSSource, store: SqlStateStore
) -> None:
    pk = submit_as_participant(standin, standin.add_participant("alpha"), IMAGE)
    send(sqs, sqs_config.queue_url, message_for(pk))
    send(sqs, sqs_config.queue_url, message_for(pk))
    received = 0
    for _ in range(5):
        received += sqs_source.poll_once(force=True).received
        if received >= 2:
            break
    assert received == 2
    assert [s.external_id for s in store.list_submissions()] == [str(pk)]
    assert depth(sqs, sqs_config.queue_url) == 0


def test_malformed_messages_go_to_the_dead_letter_queue_with_their_reason(
    standin: EvalAIStandIn,
    sqs: Spy,
    sqs_config: SQSConfig,
    sqs_source: SQSSource,
    store: SqlStateStore,
    parked: ParkedMessages,
) -> None:
    send(sqs, sqs_config.queue_url, "{broken")
    send(sqs, sqs_config.queue_url, {"challenge_pk": 1, "phase_pk": 77, "submission_pk": 5})
    pk = submit_as_participant(standin, standin.add_participant("alpha"), IMAGE)
    send(sqs, sqs_config.queue_url, message_for(pk))
    for _ in range(5):
        sqs_source.poll_once(force=True)
        if depth(sqs, sqs_config.queue_url) == 0:
            break
    assert depth(sqs, sqs_config.queue_url) == 0
    assert [s.external_id for s in store.list_submissions()] == [str(pk)]
    dead = sqs.inner.receive_message(
        QueueUrl=sqs_config.dead_letter_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    reasons = sorted(m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in dead)
    assert len(reasons) == 2
    assert "not JSON" in reasons[0] and "phase 77 is not mapped" in reasons[1]
    assert sorted(p.reason for p in parked.entries()) == reasons


def test_an_evalai_outage_keeps_the_message_and_backs_off(
    standin: EvalAIStandIn,
    sqs: Spy,
    sqs_config: SQSConfig,
    sqs_source: SQSSource,
    store: SqlStateStore,
    clock: FakeClock,
) -> None:
    pk = submit_as_participant(standin, standin.add_participant("alpha"), IMAGE)
    send(sqs, sqs_config.queue_url, message_for(pk))
    standin.fail(60.0, status=503)
    failed = sqs_source.poll_once()
    assert failed.error is not None and "E6" in failed.error
    assert sqs_source.poll_once().skipped  # backing off
    assert depth(sqs, sqs_config.queue_url) == 1 and store.list_submissions() == []
    clock.advance(61.0)
    for _ in range(5):
        sqs_source.poll_once(force=True)
        if store.find_submission("sqs", str(pk)) is not None:
            break
    assert store.find_submission("sqs", str(pk)) is not None
    assert depth(sqs, sqs_config.queue_url) == 0


def test_config_needs_a_queue_url() -> None:
    from lbcloud.domain.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sqs\.queue_url"):
        SQSConfig.from_mapping({"enabled": True, "queue_url": None})
    assert SQSConfig.from_mapping({"enabled": True, "queue_url": "http://q", "wait_time_s": 5}).wait_time_s == 5
