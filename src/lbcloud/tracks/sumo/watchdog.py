"""Run agent code with a time limit, so a hung agent ends its route instead of blocking the evaluator.

In the main thread (the CLI) a call is interrupted by a repeating ``SIGALRM`` timer: cheap enough
for every simulation step, and it also interrupts an agent that swallows the first interruption.
Elsewhere (no signals off the main thread) the call runs on a dedicated daemon thread that is
abandoned on timeout; a daemon thread never keeps the process alive.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

REPEAT_S = 0.5


class AgentTimeout(Exception):
    """The agent did not return within its time limit."""


class _Interrupted(BaseException):
    """Raised inside the agent's code by the alarm (a BaseException, so ``except Exception`` lets it pass)."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted


class AgentRunner:
    """Calls into one agent instance, each call with a timeout; ``hung`` after a timeout."""

    def __init__(self, name: str = "agent", *, use_signals: bool | None = None) -> None:
        self.name = name
        self.hung = False
        main = threading.current_thread() is threading.main_thread()
        self._signals = (main and hasattr(signal, "setitimer")) if use_signals is None else use_signals
        self._requests: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue()
        self._replies: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._thread: threading.Thread | None = None

    def call(self, timeout_s: float, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``; re-raises its exception, raises AgentTimeout after ``timeout_s`` seconds."""
        if self.hung:
            raise AgentTimeout("the agent is still busy with an earlier call")
        if self._signals:
            return self._call_with_alarm(timeout_s, fn, args)
        return self._call_on_thread(timeout_s, fn, args)

    def _call_with_alarm(self, timeout_s: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        previous_handler = signal.signal(signal.SIGALRM, _alarm)
        previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, timeout_s, REPEAT_S)
        began = time.monotonic()
        try:
            try:
                return fn(*args)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _Interrupted:  # also when the alarm lands just as the agent returns: a timeout either way
            self.hung = True
            raise AgentTimeout(f"the agent did not return within {timeout_s:g}s") from None
        except SystemExit as err:  # an agent calling sys.exit() fails its route, not the evaluator
            raise RuntimeError(f"the agent called sys.exit({err.code!r})") from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_handler)
            if previous_delay > 0:  # give back someone else's alarm (e.g. a test timeout), minus our time
                remaining = max(previous_delay - (time.monotonic() - began), 0.001)
                signal.setitimer(signal.ITIMER_REAL, remaining, previous_interval)

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

    def _call_on_thread(self, timeout_s: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._thread.start()
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
        if self._thread is not None and not self.hung:
            self._requests.put(None)
