"""External integrations the dispatcher runs when settings enable them (EvalAI queue, SQS, EvalAI sink).

``integrations(system) -> (sinks, pollers)`` is the ``system.extras["integrations"]`` hook read by
:func:`lbcloud.entrypoints.dispatch_wiring.build_dispatcher`.
"""

from __future__ import annotations

from lbcloud.entrypoints.evalai_wiring import evalai_integrations as integrations

__all__ = ["integrations"]
