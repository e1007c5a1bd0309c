"""An in-memory stand-in for the API server at the :class:`KubeApi` boundary.

It keeps Jobs and pods with resourceVersions and a bounded event history (so a watch from a version
that fell out of it gets 410 Gone), runs a minimal Job controller (a Job gets one pod; a pod's
terminal phase sets the Job's condition; Foreground deletes remove pods first) and counts calls.
Tests play the kubelet through :meth:`FakeKubeApi.set_pod_status`.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

from lbcloud.adapters.backends.kubernetes.client import Kind, ObjectList, Propagation, WatchEvent, WatchExpired
from lbcloud.adapters.backends.kubernetes.manifests import Manifest
from lbcloud.domain.errors import Conflict, NotFound

TIMESTAMP = "2026-01-01T00:00:00Z"


def _matches(obj: Manifest, selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeKubeApi:
    def __init__(self, namespace: str = "lbcloud", *, history: int = 10_000) -> None:
        self.namespace = namespace
        self.objects: dict[Kind, dict[str, Manifest]] = {"jobs": {}, "pods": {}}
        self.others: dict[tuple[str, str], Manifest] = {}
        self.calls: Counter[str] = Counter()
        self.history: deque[tuple[int, Kind, str, Manifest]] = deque(maxlen=history)
        self.event_times: dict[int, float] = {}
        self._rv = itertools.count(1)
        self._last_rv = 0
        self._pod_suffix = itertools.count(1)
        self._cond = threading.Condition()
        self._closed = False

    # --------------------------------------------------------------------------- bookkeeping
    def _emit(self, kind: Kind, event_type: str, obj: Manifest) -> None:
        rv = next(self._rv)
        self._last_rv = rv
        obj["metadata"]["resourceVersion"] = str(rv)
        self.history.append((rv, kind, event_type, copy.deepcopy(obj)))
        self.event_times[rv] = time.monotonic()
        self._cond.notify_all()

    def forget_history(self) -> None:
        """Drop the event history, as etcd compaction does: older watches now get 410 Gone."""
        with self._cond:
            self.history.clear()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ------------------------------------------------------------------------------- KubeApi
    def create(self, body: Manifest) -> Manifest:
        with self._cond:
            self.calls[f"create {body['kind']}"] += 1
            obj = copy.deepcopy(body)
            name = obj["metadata"]["name"]
            obj["metadata"].setdefault("uid", f"uid-{name}")
            obj["metadata"].setdefault("creationTimestamp", TIMESTAMP)
            if body["kind"] != "Job":
                key = (str(body["kind"]), str(name))
                if key in self.others:
                    raise Conflict(f"{body['kind']} {name} already exists")
                self.others[key] = obj
                return copy.deepcopy(obj)
            if name in self.objects["jobs"]:
                raise Conflict(f"jobs.batch {name!r} already exists")
            obj["status"] = {}
            self.objects["jobs"][name] = obj
            self._emit("jobs", "ADDED", obj)
            self._start_pod(obj)
            return copy.deepcopy(obj)

    def _start_pod(self, job: Manifest) -> None:
        template = job["spec"]["template"]
        name = f"{job['metadata']['name']}-{next(self._pod_suffix):05d}"
        labels = {**template["metadata"]["labels"], "job-name": job["metadata"]["name"]}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels,
                         "annotations": copy.deepcopy(template["metadata"].get("annotations", {})),
                         "creationTimestamp": TIMESTAMP},
            "spec": copy.deepcopy(template["spec"]),
            "status": {"phase": "Pending"},
        }  # fmt: skip
        self.objects["pods"][name] = pod
        self._emit("pods", "ADDED", pod)

    def ensure(self, body: Manifest) -> None:
        with self._cond:
            self.calls[f"ensure {body['kind']}"] += 1
            self.others[(str(body["kind"]), str(body["metadata"]["name"]))] = copy.deepcopy(body)

    def delete_job(self, name: str, propagation: Propagation = "Foreground") -> bool:
        with self._cond:
            self.calls["delete Job"] += 1
            job = self.objects["jobs"].get(name)
            if job is None:
                return False
            pods = [p for p in self.objects["pods"].values() if p["metadata"]["labels"].get("job-name") == name]
            if propagation == "Foreground":
                job["metadata"]["deletionTimestamp"] = TIMESTAMP
                self._emit("jobs", "MODIFIED", job)
            else:
                del self.objects["jobs"][name]
                self._emit("jobs", "DELETED", job)
            for pod in pods:
                del self.objects["pods"][pod["metadata"]["name"]]
                self._emit("pods", "DELETED", pod)
            if propagation == "Foreground":
                del self.objects["jobs"][name]
                self._emit("jobs", "DELETED", job)
            return True

    def read_job(self, name: str) -> Manifest | None:
        with self._cond:
            self.calls["read Job"] += 1
            job = self.objects["jobs"].get(name)
            return copy.deepcopy(job) if job else None

    def list(self, kind: Kind, label_selector: str) -> ObjectList:
        with self._cond:
            self.calls[f"list {kind}"] += 1
            items = [copy.deepcopy(o) for o in self.objects[kind].values() if _matches(o, label_selector)]
            return ObjectList(items, str(self._last_rv))

    def watch(self, kind: Kind, label_selector: str, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
        with self._cond:
            self.calls[f"watch {kind}"] += 1
        since = int(resource_version or 0)
        deadline = time.monotonic() + timeout_s
        while True:
            with self._cond:
                if self._closed:
                    return
                oldest = self.history[0][0] if self.history else self._last_rv + 1
                if since + 1 < oldest:
                    raise WatchExpired(f"too old resource version: {since} ({oldest - 1})")
                batch = [
                    WatchEvent(t, copy.deepcopy(o)) for rv, k, t, o in self.history
                    if rv > since and k == kind and _matches(o, label_selector)
                ]  # fmt: skip
                if self.history:
                    since = max(since, self.history[-1][0])
                if not batch:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._cond.wait(min(remaining, 0.5))
                    continue
            yield from batch

    # ------------------------------------------------------------------------------ kubelet
    def pod_of(self, job_name: str) -> Manifest:
        with self._cond:
            pods = [p for p in self.objects["pods"].values() if p["metadata"]["labels"].get("job-name") == job_name]
            if not pods:
                raise NotFound(f"no pod for Job {job_name}")
            return copy.deepcopy(pods[-1])

    def set_pod_status(self, job_name: str, status: dict[str, Any], *, node: str | None = "node-1") -> None:
        """Play the kubelet (and the Job controller's reaction to a terminal pod phase)."""
        with self._cond:
            pods = [p for p in self.objects["pods"].values() if p["metadata"]["labels"].get("job-name") == job_name]
            pod = pods[-1]
            pod["status"] = copy.deepcopy(status)
            if node:
                pod["spec"]["nodeName"] = node
            self._emit("pods", "MODIFIED", pod)
            phase = status.get("phase")
            job = self.objects["jobs"].get(job_name)
            if job is not None and phase in ("Succeeded", "Failed"):
                condition = (
                    {"type": "Complete", "status": "True"}
                    if phase == "Succeeded"
                    else {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                          "message": "Job has reached the specified backoff limit"}
                )  # fmt: skip
                job["status"] = {"conditions": [condition], "succeeded" if phase == "Succeeded" else "failed": 1}
                self._emit("jobs", "MODIFIED", job)

    def set_job_status(self, job_name: str, status: dict[str, Any]) -> None:
        with self._cond:
            job = self.objects["jobs"][job_name]
            job["status"] = copy.deepcopy(status)
            self._emit("jobs", "MODIFIED", job)

    def delete_pods_of(self, job_name: str) -> None:
        with self._cond:
            for name, pod in list(self.objects["pods"].items()):
                if pod["metadata"]["labels"].get("job-name") == job_name:
                    del self.objects["pods"][name]
                    self._emit("pods", "DELETED", pod)

    def delete_job_silently(self, job_name: str) -> None:
        """Remove a Job as the TTL controller would, while no watcher looks (events still recorded)."""
        with self._cond:
            self.delete_pods_of(job_name)
            job = self.objects["jobs"].pop(job_name)
            self._emit("jobs", "DELETED", job)
