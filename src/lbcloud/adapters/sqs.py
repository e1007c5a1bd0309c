"""The host's own SQS queue as a submission source (the reference deployment's flow), on boto3.

EvalAI (configured with the host's queue) writes its submission messages to an SQS queue the host
owns. :class:`SQSSource` long-polls it and hands each body to the shared
:class:`lbcloud.adapters.evalai.source.MessageHandler` (the same rules as the EvalAI queue):

- the message's visibility is extended while the submission is being read and recorded;
- it is deleted only after the submission is durably recorded (or deliberately skipped);
- a malformed or unusable message is *parked*: copied to the dead-letter queue with the reason as a
  message attribute, recorded for operators, then deleted;
- while EvalAI or the store is unreachable the message is made visible again after
  ``retry_visibility_s`` and the source backs off.

Long polling blocks for up to ``wait_time_s``: run :meth:`SQSSource.run` in its own thread, or call
:meth:`SQSSource.poll_once` with ``wait_time_s=0`` from the dispatcher loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from lbcloud.adapters.evalai.errors import EvalAIAuthError, EvalAIError
from lbcloud.adapters.evalai.source import Decision, MessageHandler, Verdict
from lbcloud.domain.errors import ConfigError, LbcloudError, Unavailable
from lbcloud.services.ports import Clock

log = logging.getLogger(__name__)

REASON_ATTRIBUTE = "lbcloud_parked_reason"


@dataclass(frozen=True, slots=True)
class SQSConfig:
    """What the SQS source needs, built from ``settings.sqs`` by the wiring."""

    queue_url: str
    dead_letter_queue_url: str | None = None
    region: str = "us-east-1"
    endpoint_url: str | None = None
    wait_time_s: int = 20
    visibility_timeout_s: int = 60
    retry_visibility_s: int = 30
    max_backoff_s: float = 300.0
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], **overrides: Any) -> SQSConfig:
        """Build from ``settings.sqs.model_dump()`` (unknown keys such as ``enabled`` are ignored)."""
        names = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in {**values, **overrides}.items() if k in names}
        if not kwargs.get("queue_url"):
            raise ConfigError("sqs.queue_url is not set")
        return cls(**kwargs)


def sqs_client(config: SQSConfig) -> Any:
    """A boto3 SQS client for ``config`` (credentials from the environment unless given)."""
    return boto3.client(
        "sqs",
        region_name=config.region,
        endpoint_url=config.endpoint_url,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=BotoConfig(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=config.wait_time_s + 10),
    )


@dataclass(frozen=True, slots=True)
class SQSPollResult:
    """What one :meth:`SQSSource.poll_once` did."""

    received: int = 0
    decisions: tuple[Decision, ...] = ()
    error: str | None = None
    skipped: bool = False


class SQSSource:
    """Long-polls an SQS queue of EvalAI submission messages. Never raises for outages."""

    name = "sqs queue"

    def __init__(self, sqs: Any, handler: MessageHandler, config: SQSConfig, clock: Clock) -> None:
        self.sqs = sqs
        self.handler = handler
        self.config = config
        self.clock = clock
        self._failures = 0
        self._next_due = 0.0
        self.last_error: str | None = None

    # ------------------------------------------------------------------------------------ loop
    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (for a dedicated thread)."""
        while not stop.is_set():
            result = self.poll_once()
            if result.skipped:
                stop.wait(min(1.0, max(0.0, self._next_due - self.clock.monotonic())))

    def poll_once(self, *, wait_time_s: int | None = None, force: bool = False) -> SQSPollResult:
        """Receive up to 10 messages (waiting up to ``wait_time_s``) and handle each."""
        if not force and self.clock.monotonic() < self._next_due:
            return SQSPollResult(skipped=True)
        wait = self.config.wait_time_s if wait_time_s is None else wait_time_s
        try:
            answer = self._call(
                "receive_message",
                QueueUrl=self.config.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait,
                VisibilityTimeout=self.config.visibility_timeout_s,
                AttributeNames=["ApproximateReceiveCount"],
            )
        except Unavailable as err:
            return self._backoff(str(err))
        messages = answer.get("Messages", [])
        decisions = []
        for message in messages:
            try:
                decisions.append(self._handle(message))
            except (Unavailable, EvalAIAuthError) as err:
                self._release(message, self.config.retry_visibility_s)
                for rest in messages[messages.index(message) + 1 :]:
                    self._release(rest, 0)
                return self._backoff(str(err), received=len(messages), decisions=tuple(decisions))
        self._failures = 0
        self.last_error = None
        return SQSPollResult(received=len(messages), decisions=tuple(decisions))

    def _backoff(self, error: str, *, received: int = 0, decisions: tuple[Decision, ...] = ()) -> SQSPollResult:
        self._failures += 1
        delay = min(self.config.max_backoff_s, 2.0**self._failures)
        if error != self.last_error:
            log.error("SQS source: %s (next try in %.0f s)", error, delay)
        self.last_error = error
        self._next_due = self.clock.monotonic() + delay
        return SQSPollResult(received=received, decisions=decisions, error=error)

    # ---------------------------------------------------------------------------------- messages
    def _handle(self, message: Mapping[str, Any]) -> Decision:
        handle = str(message["ReceiptHandle"])
        body = str(message.get("Body", ""))

        def heartbeat() -> None:
            self._extend(handle)

        try:
            decision = self.handler.handle(body, heartbeat=heartbeat)
        except (Unavailable, EvalAIAuthError):
            raise
        except (EvalAIError, LbcloudError) as err:
            decision = self.handler.park(body, f"could not be handled: {err}")
        if decision.verdict is Verdict.KEEP:
            self._release(message, self.config.retry_visibility_s)
            return decision
        if decision.verdict is Verdict.PARK:
            self._dead_letter(body, decision.detail)
        self._call("delete_message", QueueUrl=self.config.queue_url, ReceiptHandle=handle)
        return decision

    def _extend(self, handle: str) -> None:
        try:
            self._call(
                "change_message_visibility",
                QueueUrl=self.config.queue_url,
                ReceiptHandle=handle,
                VisibilityTimeout=self.config.visibility_timeout_s,
            )
        except Unavailable as err:
            log.warning("could not extend a message's visibility: %s", err)

    def _release(self, message: Mapping[str, Any], after_s: int) -> None:
        try:
            self._call(
                "change_message_visibility",
                QueueUrl=self.config.queue_url,
                ReceiptHandle=str(message["ReceiptHandle"]),
                VisibilityTimeout=max(0, after_s),
            )
        except Unavailable as err:
            log.warning("could not release a message: %s", err)

    def _dead_letter(self, body: str, reason: str) -> None:
        if not self.config.dead_letter_queue_url:
            log.error("parked SQS message has no dead-letter queue to go to (sqs.dead_letter_queue_url): %s", reason)
            return
        self._call(
            "send_message",
            QueueUrl=self.config.dead_letter_queue_url,
            MessageBody=body or "(empty)",
            MessageAttributes={REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1000]}},
        )

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.sqs, operation)(**kwargs)
        except (ClientError, BotoCoreError) as err:
            raise Unavailable(f"SQS {operation} on {kwargs.get('QueueUrl')}: {err}") from None
