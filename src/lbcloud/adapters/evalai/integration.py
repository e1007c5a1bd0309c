"""Assembles the EvalAI pieces around one shared client: source, SQS source, sink, watcher, checks.

The wiring (entrypoints) builds an :class:`EvalAIConfig` from settings and calls
:func:`build_evalai_integration`; the result gives the dispatcher one sink and a list of pollers
(``EvalAIIntegration.pollers()``), each a quick call that never raises for EvalAI outages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lbcloud.adapters.evalai.cancellations import CancellationWatcher
from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.errors import EvalAIAuthError, EvalAIError
from lbcloud.adapters.evalai.models import EvalAIConfig
from lbcloud.adapters.evalai.sink import EvalAISink, FinalOutbox
from lbcloud.adapters.evalai.source import (
    EvalAISource,
    MessageHandler,
    ParkedMessages,
    SubmissionDates,
    SubmissionIntake,
)
from lbcloud.domain.errors import ConfigError, Unavailable
from lbcloud.domain.submissions import SourceKind
from lbcloud.services.dispatcher import Poller
from lbcloud.services.ports import Clock, StateStore

log = logging.getLogger(__name__)


def verify_challenge(client: EvalAIClient, config: EvalAIConfig) -> list[str]:
    """Check the configuration against EvalAI (E1, E2) before starting; returns warnings.

    Raises :class:`ConfigError` when the queue belongs to another challenge, a mapped phase does not
    exist, or the challenge is not a remote docker challenge. EvalAI being unreachable or refusing the
    token is logged and left to the pollers' backoff (the check is not repeated)."""
    warnings: list[str] = []
    if not config.queue_name or config.challenge_id is None:
        raise ConfigError("evalai.queue_name and evalai.challenge_id are required (see the challenge's Manage tab)")
    if not config.phase_tracks:
        raise ConfigError("evalai.phase_tracks is empty: map each EvalAI phase pk to a track name")
    try:
        challenge = client.challenge_by_queue(config.queue_name)
        if challenge.id != config.challenge_id:
            raise ConfigError(
                f"queue {config.queue_name!r} belongs to challenge {challenge.id}, not evalai.challenge_id "
                f"{config.challenge_id}"
            )
        if not challenge.is_docker_based or not challenge.remote_evaluation:
            raise ConfigError(
                f"challenge {challenge.id} must be docker-based with remote evaluation "
                f"(is_docker_based={challenge.is_docker_based}, remote_evaluation={challenge.remote_evaluation})"
            )
        phases = {phase.id: phase for phase in client.phases(challenge.id)}
    except (Unavailable, EvalAIAuthError) as err:
        log.error("could not verify the EvalAI challenge at startup: %s", err)
        return [str(err)]
    except EvalAIError as err:
        raise ConfigError(f"EvalAI challenge check failed: {err}") from None
    missing = sorted(set(config.phase_tracks) - set(phases))
    if missing:
        known = ", ".join(f"{p.id} ({p.codename})" for p in phases.values())
        raise ConfigError(
            f"evalai.phase_tracks names phase(s) {missing} that challenge {challenge.id} lacks; its phases: {known}"
        )
    for pk in config.phase_tracks:
        if not phases[pk].is_partial_submission_evaluation_enabled:
            warnings.append(
                f"phase {pk} ({phases[pk].codename}) has partial evaluation disabled: participants "
                "see results only at the end"
            )
    if not challenge.allow_resuming_submissions:
        warnings.append(f"challenge {challenge.id} does not allow resuming submissions")
    for warning in warnings:
        log.warning("EvalAI: %s", warning)
    return warnings


@dataclass
class EvalAIIntegration:
    """The assembled EvalAI adapters (see :func:`build_evalai_integration`)."""

    client: EvalAIClient
    sink: EvalAISink
    watcher: CancellationWatcher
    parked: ParkedMessages
    source: EvalAISource | None = None
    sqs_source: Any | None = None
    extra_pollers: list[Poller] = field(default_factory=list)

    def pollers(self, tick_s: float = 0.5) -> list[Poller]:
        """Dispatcher pollers; each component keeps its own schedule, so a short ``tick_s`` is fine."""
        out: list[Poller] = []
        if self.source is not None:
            out.append(Poller("evalai queue", tick_s, self.source.poll_once))
        if self.sqs_source is not None:
            sqs = self.sqs_source
            # a short receive each poll interval; run SQSSource.run() in a thread for real long polling
            interval = max(tick_s, self.client.config.poll_interval_s)
            out.append(Poller("sqs queue", interval, lambda: sqs.poll_once(wait_time_s=0)))
        out.append(Poller("evalai cancellations", tick_s, self.watcher.poll_once))
        out.append(Poller("evalai outbox", tick_s, self.sink.flush))
        return out + self.extra_pollers

    def close(self) -> None:
        self.client.close()


def build_evalai_integration(
    config: EvalAIConfig,
    *,
    store: StateStore,
    intake: SubmissionIntake,
    clock: Clock,
    evalai_queue: bool = True,
    sqs_source_factory: Callable[[MessageHandler], Any] | None = None,
    verify: bool = True,
) -> EvalAIIntegration:
    """One client (one request budget) shared by the queue source, the SQS source (when
    ``sqs_source_factory`` is given: it receives an SQS-kind handler and returns the source), the
    cancellation watcher and the sink. Raises :class:`ConfigError` for a configuration EvalAI
    contradicts (``verify``)."""
    client = EvalAIClient(config, clock=clock)
    if verify:
        verify_challenge(client, config)
    dates = SubmissionDates()
    parked = ParkedMessages(f"{config.outbox_dir}/parked.jsonl" if config.outbox_dir else None, clock)
    sink = EvalAISink(client, store, config, clock, outbox=FinalOutbox(config.outbox_dir))
    watcher = CancellationWatcher(client, store, config, clock, dates=dates)

    def handler(kind: SourceKind) -> MessageHandler:
        return MessageHandler(
            client, intake, store, config, clock=clock, parked=parked, rejections=sink, dates=dates, source_kind=kind
        )

    source = EvalAISource(client, handler(SourceKind.EVALAI), config, clock) if evalai_queue else None
    sqs_source = sqs_source_factory(handler(SourceKind.SQS)) if sqs_source_factory is not None else None
    return EvalAIIntegration(client, sink, watcher, parked, source, sqs_source)
