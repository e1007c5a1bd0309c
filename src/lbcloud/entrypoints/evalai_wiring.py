"""Wires the EvalAI and SQS adapters from settings: one sink and the dispatcher's pollers.

``evalai_integrations(system)`` matches the ``system.extras["integrations"]`` hook of
:func:`lbcloud.entrypoints.dispatch_wiring.build_dispatcher`; it returns ``([], [])`` when neither
``evalai.enabled`` nor ``sqs.enabled`` is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lbcloud.adapters.evalai.integration import EvalAIIntegration, build_evalai_integration
from lbcloud.adapters.evalai.models import EvalAIConfig
from lbcloud.adapters.evalai.source import MessageHandler
from lbcloud.adapters.sqs import SQSConfig, SQSSource, sqs_client
from lbcloud.services.dispatcher import Poller
from lbcloud.services.ports import ResultSink

if TYPE_CHECKING:
    from lbcloud.entrypoints.wiring import System


def evalai_config(system: System) -> EvalAIConfig:
    settings = system.settings
    outbox = settings.evalai.outbox_dir or str((settings.data_path / "evalai-outbox").resolve())
    return EvalAIConfig.from_mapping(settings.evalai.model_dump(), outbox_dir=outbox)


def build_integration(system: System, *, verify: bool = True) -> EvalAIIntegration | None:
    """The EvalAI integration of ``system`` (kept in ``system.extras["evalai"]``), or None if disabled."""
    settings = system.settings
    if not (settings.evalai.enabled or settings.sqs.enabled):
        return None
    existing = system.extras.get("evalai")
    if isinstance(existing, EvalAIIntegration):
        return existing
    sqs_factory = None
    if settings.sqs.enabled:
        sqs_config = SQSConfig.from_mapping(settings.sqs.model_dump())

        def sqs_factory(handler: MessageHandler) -> SQSSource:
            return SQSSource(sqs_client(sqs_config), handler, sqs_config, system.clock)

    integration = build_evalai_integration(
        evalai_config(system),
        store=system.store,
        intake=system.intake,
        clock=system.clock,
        evalai_queue=settings.evalai.enabled,
        sqs_source_factory=sqs_factory,
        verify=verify,
    )
    system.extras["evalai"] = integration
    return integration


def evalai_integrations(system: System) -> tuple[list[ResultSink], list[Poller]]:
    """Sinks and pollers for the dispatcher (``system.extras["integrations"]`` hook)."""
    integration = build_integration(system)
    if integration is None:
        return [], []
    return [integration.sink], integration.pollers()
