"""Fixtures of the Kubernetes backend tests: an in-memory API, an artifact store, a backend."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator

import pytest

from lbcloud.adapters.backends.kubernetes.backend import KubernetesBackend
from lbcloud.adapters.backends.kubernetes.manifests import KubernetesConfig
from lbcloud.services.ports import BackendEvent, BackendEventKind
from tests.adapters.backends.kubernetes.fake_api import FakeKubeApi
from tests.adapters.backends.kubernetes.memory_artifacts import MemoryArtifacts


@pytest.fixture
def fake_api() -> Iterator[FakeKubeApi]:
    api = FakeKubeApi()
    yield api
    api.close()


@pytest.fixture
def artifacts() -> MemoryArtifacts:
    return MemoryArtifacts()


@pytest.fixture
def make_backend(fake_api: FakeKubeApi, artifacts: MemoryArtifacts) -> Iterator[Callable[..., KubernetesBackend]]:
    made: list[KubernetesBackend] = []

    def make(**kwargs: object) -> KubernetesBackend:
        backend = KubernetesBackend(fake_api, artifacts, KubernetesConfig(), watch_timeout_s=2, **kwargs)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    yield make
    for backend in made:
        for informer in backend.informers:
            informer.stop(0)


_BACKLOG: weakref.WeakKeyDictionary[KubernetesBackend, list[BackendEvent]] = weakref.WeakKeyDictionary()


def wait_for(
    backend: KubernetesBackend,
    attempt_id: int,
    kind: BackendEventKind,
    *,
    timeout_s: float = 20.0,
    collected: list[BackendEvent] | None = None,
) -> BackendEvent:
    """Poll until ``attempt_id`` reports ``kind`` (fails the test after ``timeout_s``).

    Events polled but not asked for yet are kept for the next call, so none is lost."""
    deadline = time.monotonic() + timeout_s
    seen = collected if collected is not None else []
    backlog = _BACKLOG.setdefault(backend, [])
    while True:
        for index, event in enumerate(backlog):
            if event.attempt_id == attempt_id and event.kind is kind:
                del backlog[index]
                return event
        if time.monotonic() >= deadline:
            break
        fresh = backend.poll()
        seen.extend(fresh)
        backlog.extend(fresh)
        if not fresh:
            backend.view.wakeup.wait(0.05)
    raise AssertionError(f"attempt {attempt_id} never reported {kind.value}; saw {seen}")
