"""List + watch of one kind of object in a thread, with resourceVersion bookkeeping.

:class:`Informer` lists the objects matching a label selector, hands the full list to its sink
(``relisted``), then watches from the list's resourceVersion and hands every change to the sink
(``changed``). A 410 Gone (the resourceVersion fell out of the server's window) triggers a fresh
list; an unreachable server is retried with capped exponential backoff. Stopping is prompt: the
thread checks its stop flag between events and the server ends each watch after ``watch_timeout_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lbcloud.adapters.backends.kubernetes.client import Kind, KubeApi, WatchExpired
from lbcloud.adapters.backends.kubernetes.manifests import Manifest
from lbcloud.domain.errors import LbcloudError

log = logging.getLogger(__name__)


class InformerSink(Protocol):
    def relisted(self, kind: Kind, items: list[Manifest]) -> None:
        """The complete current set of objects of ``kind`` (objects not in it are gone)."""
        ...

    def changed(self, kind: Kind, event_type: str, obj: Manifest) -> None:
        """One ADDED / MODIFIED / DELETED event."""
        ...


@dataclass(slots=True)
class InformerStats:
    lists: int = 0
    watches: int = 0
    events: int = 0
    expired: int = 0
    errors: int = 0


class Informer:
    """One list+watch loop for ``kind`` in a daemon thread (start with :meth:`start`)."""

    def __init__(
        self,
        api: KubeApi,
        kind: Kind,
        label_selector: str,
        sink: InformerSink,
        *,
        watch_timeout_s: int = 60,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        min_watch_s: float = 0.2,
        wait: Callable[[threading.Event, float], bool] | None = None,
    ) -> None:
        self.api = api
        self.kind: Kind = kind
        self.label_selector = label_selector
        self.sink = sink
        self.watch_timeout_s = watch_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.min_watch_s = min_watch_s
        self.stats = InformerStats()
        self.synced = threading.Event()
        self.resource_version = ""
        self._stop = threading.Event()
        self._wait = wait or (lambda event, seconds: event.wait(seconds))
        self._thread = threading.Thread(target=self._run, name=f"lbcloud-watch-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, join_s: float = 1.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(join_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def relist(self) -> None:
        """List everything now and hand it to the sink (also used synchronously by adopt)."""
        listed = self.api.list(self.kind, self.label_selector)
        self.stats.lists += 1
        self.resource_version = listed.resource_version
        self.sink.relisted(self.kind, listed.items)
        self.synced.set()

    def run_once(self) -> int:
        """One watch stream from the current resourceVersion, until the server ends it.

        Returns how many events it delivered."""
        self.stats.watches += 1
        delivered = 0
        for event in self.api.watch(self.kind, self.label_selector, self.resource_version, self.watch_timeout_s):
            if self._stop.is_set():
                return delivered
            version = str((event.object.get("metadata") or {}).get("resourceVersion", ""))
            if version:
                self.resource_version = version
            if event.type == "BOOKMARK":
                continue
            self.stats.events += 1
            delivered += 1
            self.sink.changed(self.kind, event.type, event.object)
        return delivered

    def _run(self) -> None:
        delay = self.backoff_s
        need_list = not self.synced.is_set()  # a list made by hand (adopt, tests) is continued from
        while not self._stop.is_set():
            try:
                if need_list:
                    self.relist()
                    need_list = False
                started = time.monotonic()
                if self.run_once() == 0 and time.monotonic() - started < self.min_watch_s:
                    # a server that ends empty watches at once must not make this loop spin
                    self._wait(self._stop, self.min_watch_s)
                delay = self.backoff_s
            except WatchExpired:
                self.stats.expired += 1
                log.info("watch of %s expired at resourceVersion %s; listing again", self.kind, self.resource_version)
                need_list = True
            except LbcloudError as err:
                self.stats.errors += 1
                log.warning("watch of %s failed: %s; retrying in %.1f s", self.kind, err, delay)
                need_list = True
                self._wait(self._stop, delay)
                delay = min(delay * 2, self.max_backoff_s)
            except Exception:  # the thread must survive anything a sink or the network throws
                self.stats.errors += 1
                log.exception("watch of %s crashed; retrying in %.1f s", self.kind, delay)
                need_list = True
                self._wait(self._stop, delay)
                delay = min(delay * 2, self.max_backoff_s)
