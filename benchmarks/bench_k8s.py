"""Control-plane figures of the Kubernetes backend (prints them; asserts nothing).

1. route task ready → Job created: the time ``KubernetesBackend.launch`` takes until the API server
   holds the Job (render + one create call);
2. watch event → state updated: from the moment the API server emits a pod change to the moment the
   dispatcher's ``poll()`` returns the resulting backend event (dispatcher loop ticking at
   ``--tick`` seconds, woken early by the watch);
3. 500 concurrent attempts on a fake API server (in memory, at the client boundary): the dispatcher
   side's CPU (process CPU minus the fake server's own) and API calls per minute.

    python benchmarks/bench_k8s.py [--attempts 500] [--tick 0.2] [--seconds 30]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.adapters.backends.kubernetes import pod_states
from tests.adapters.backends.kubernetes.fake_api import FakeKubeApi
from tests.adapters.backends.kubernetes.memory_artifacts import MemoryArtifacts
from tests.adapters.backends.kubernetes.records import checkpoint_document
from tests.adapters.backends.kubernetes.specs import attempt_spec

from lbcloud.adapters.backends.kubernetes.backend import KubernetesBackend
from lbcloud.adapters.backends.kubernetes.client import Kind, ObjectList, WatchEvent
from lbcloud.adapters.backends.kubernetes.manifests import KubernetesConfig, Manifest
from lbcloud.services.ports import BackendEventKind
from lbcloud.services.reporting import attempt_record_key


class MeteredFakeApi(FakeKubeApi):
    """The fake API server, timing its own CPU so it can be taken out of the dispatcher's figure."""

    def __init__(self) -> None:
        super().__init__(history=200_000)
        self.server_cpu_s = 0.0
        self._cpu_lock = threading.Lock()

    def _charge(self, started: float) -> None:
        with self._cpu_lock:
            self.server_cpu_s += time.thread_time() - started

    def create(self, body: Manifest) -> Manifest:
        started = time.thread_time()
        try:
            return super().create(body)
        finally:
            self._charge(started)

    def list(self, kind: Kind, label_selector: str) -> ObjectList:
        started = time.thread_time()
        try:
            return super().list(kind, label_selector)
        finally:
            self._charge(started)

    def set_pod_status(self, job_name: str, status: dict[str, Any], *, node: str | None = "node-1") -> None:
        started = time.thread_time()
        try:
            super().set_pod_status(job_name, status, node=node)
        finally:
            self._charge(started)

    def watch(self, kind: Kind, label_selector: str, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
        stream = super().watch(kind, label_selector, resource_version, timeout_s)
        while True:
            started = time.thread_time()
            try:
                event = next(stream)
            except StopIteration:
                self._charge(started)
                return
            self._charge(started)
            yield event


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(name: str, values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (f"{name}: n={len(ms)} median {statistics.median(ms):.2f} ms, p95 {percentile(ms, 0.95):.2f} ms, "
            f"max {max(ms):.2f} ms")  # fmt: skip


def run(attempts: int, tick: float, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    api = MeteredFakeApi()
    artifacts = MemoryArtifacts()
    backend = KubernetesBackend(api, artifacts, KubernetesConfig(), watch_timeout_s=60)
    for informer in backend.informers:
        informer.synced.wait(5)

    cpu_start, wall_start = time.process_time(), time.monotonic()
    launch_s: list[float] = []
    handles: dict[int, str] = {}
    for attempt_id in range(1, attempts + 1):
        spec = attempt_spec(attempt_id, submission_id=1 + attempt_id % 25, route_id=str(attempt_id % 20))
        started = time.perf_counter()
        handles[attempt_id] = backend.launch(spec)
        launch_s.append(time.perf_counter() - started)

    # the fake kubelet: each attempt runs, then ends within `seconds` (mostly with a record)
    plan: list[tuple[float, int, str]] = []
    for attempt_id in handles:
        start = rng.uniform(0.0, seconds * 0.2)
        plan.append((start, attempt_id, "running"))
        plan.append((start + rng.uniform(seconds * 0.2, seconds * 0.8), attempt_id, rng.choice(
            ["record"] * 18 + ["crash", "evicted"])))  # fmt: skip
    plan.sort()
    emitted: dict[tuple[int, str], float] = {}
    done = threading.Event()

    def kubelet() -> None:
        origin = time.monotonic()
        for at, attempt_id, what in plan:
            delay = origin + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            handle = handles[attempt_id]
            if what == "running":
                status = pod_states.running()
            elif what == "record":
                artifacts.put(attempt_record_key(1 + attempt_id % 25, attempt_id),
                              checkpoint_document(f"RouteScenario_{attempt_id % 20}_rep0").encode())  # fmt: skip
                status = pod_states.agent_exited(0)
            elif what == "crash":
                status = pod_states.agent_exited(4)
            else:
                status = pod_states.evicted()
            emitted[(attempt_id, "ended" if what != "running" else "running")] = time.monotonic()
            api.set_pod_status(handle, status)
        done.set()

    thread = threading.Thread(target=kubelet, daemon=True)
    thread.start()
    event_s: list[float] = []
    ended = 0
    polls = 0
    while ended < attempts:
        backend.view.wakeup.wait(tick)
        polls += 1
        now = time.monotonic()
        for event in backend.poll():
            key = (event.attempt_id, "ended" if event.kind is BackendEventKind.ENDED else "running")
            if key in emitted:
                event_s.append(now - emitted[key])
            if event.kind is BackendEventKind.ENDED:
                ended += 1
        if time.monotonic() - wall_start > seconds * 4:
            print(f"gave up: {ended}/{attempts} ended", file=sys.stderr)
            break
    wall = time.monotonic() - wall_start
    cpu = time.process_time() - cpu_start
    backend.close()
    api.close()

    minutes = wall / 60.0
    calls = dict(api.calls)
    creates = calls.get("create Job", 0)
    other = sum(v for k, v in calls.items() if k != "create Job")
    dispatcher_cpu = max(0.0, cpu - api.server_cpu_s)
    print(f"Kubernetes backend control plane: {attempts} concurrent attempts, dispatcher tick {tick:g} s")
    print(figures("route task ready -> Job created (fake API, in process)", launch_s))
    print(figures("watch event -> state updated (poll returns the event)", event_s))
    print(f"run: {wall:.1f} s wall, {polls} polls, {len(event_s)} state changes")
    print(f"dispatcher CPU: {dispatcher_cpu:.2f} s ({100 * dispatcher_cpu / wall:.1f}% of one core; "
          f"fake API server {api.server_cpu_s:.2f} s excluded)")  # fmt: skip
    print(f"API calls: {sum(calls.values())} in {wall:.1f} s = {sum(calls.values()) / minutes:.0f}/min "
          f"({creates / minutes:.0f}/min Job creates, {other / minutes:.0f}/min other: {calls})")  # fmt: skip


def real_launch_latency(kubeconfig: str, namespace: str, count: int) -> None:
    """Route task ready → Job created against a real API server (e.g. kube-test-cluster)."""
    from lbcloud.adapters.backends.kubernetes.client import KubeClient

    api = KubeClient.from_config(namespace, kubeconfig=kubeconfig)
    backend = KubernetesBackend(api, MemoryArtifacts(), KubernetesConfig(namespace=namespace, compat="1.20"))
    launch_s = []
    try:
        for attempt_id in range(1, count + 1):
            started = time.perf_counter()
            backend.launch(attempt_spec(10_000 + attempt_id))
            launch_s.append(time.perf_counter() - started)
        print(figures(f"route task ready -> Job created (real API server, {namespace})", launch_s))
    finally:
        for attempt_id in range(1, count + 1):
            backend.cancel(10_000 + attempt_id, backend.api.list("jobs", f"lbcloud.io/attempt={10_000 + attempt_id}")
                           .items[0]["metadata"]["name"])  # fmt: skip
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=500)
    parser.add_argument("--tick", type=float, default=0.2, help="dispatcher loop period (settings.dispatcher.tick_s)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the simulated attempts run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kubeconfig", help="also measure Job creation against this real API server")
    parser.add_argument("--namespace", default="default")
    args = parser.parse_args()
    run(args.attempts, args.tick, args.seconds, args.seed)
    if args.kubeconfig:
        real_launch_latency(args.kubeconfig, args.namespace, 50)


if __name__ == "__main__":
    main()
