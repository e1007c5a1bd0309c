"""Run agent code with a time limit, on a daemon thread that a hung agent cannot keep alive forever."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class AgentTimeout(Exception):
    """The agent did not return within its time limit."""


class AgentRunner:
    """Calls into one agent instance on a dedicated daemon thread, each call with a timeout.

    After a timeout the runner is ``hung``: the thread is abandoned (a daemon thread never blocks the
    process from exiting) and every later call fails at once.
    """

    def __init__(self, name: str = "agent") -> None:
        self._requests: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue()
        self._replies: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self.hung = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            fn, args = request
            try:
                self._replies.put((True, fn(*args)))
            except BaseException as err:  # the agent's own failure, reported to the caller
                self._replies.put((False, err))

    def call(self, timeout_s: float, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the agent thread; re-raises its exception, AgentTimeout after ``timeout_s``."""
        if self.hung:
            raise AgentTimeout("the agent is still busy with an earlier call")
        self._requests.put((fn, args))
        try:
            ok, value = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            self.hung = True
            raise AgentTimeout(f"the agent did not return within {timeout_s:g}s") from None
        if ok:
            return value
        if isinstance(value, Exception):
            raise value
        raise RuntimeError(f"the agent raised {type(value).__name__}: {value}")

    def close(self) -> None:
        if not self.hung:
            self._requests.put(None)
