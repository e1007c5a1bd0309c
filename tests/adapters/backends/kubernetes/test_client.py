"""KubeClient against a small HTTP server on 127.0.0.1: paths, raw JSON, error translation, watch."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client

from lbcloud.adapters.backends.kubernetes.client import KubeApiError, KubeClient, WatchExpired
from lbcloud.domain.errors import Conflict, NotFound, Unavailable

Route = tuple[int, list[dict[str, Any]] | dict[str, Any]]


class Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[tuple[str, str], Route]] = {}
    seen: ClassVar[list[tuple[str, str, Any]]] = []

    def log_message(self, *args: object) -> None:
        return

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        type(self).seen.append((self.command, self.path, body))
        path = self.path.split("?")[0]
        status, payload = type(self).routes.get((self.command, path), (404, {"message": f"{path} not found"}))
        if isinstance(payload, list):  # a watch stream: one JSON event per line
            data = b"".join(json.dumps(e).encode() + b"\n" for e in payload)
        else:
            data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 (the handler's method names)


@pytest.fixture
def server() -> Iterator[str]:
    Handler.routes = {}
    Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def kube(host: str) -> KubeClient:
    configuration = client.Configuration()
    configuration.host = host
    return KubeClient(client.ApiClient(configuration), "lbcloud", request_timeout_s=5)


JOBS = "/apis/batch/v1/namespaces/lbcloud/jobs"
JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "lb-x-a1"}, "spec": {}}


def test_create_posts_raw_json_and_returns_the_servers_object(server: str) -> None:
    Handler.routes[("POST", JOBS)] = (201, {**JOB, "metadata": {"name": "lb-x-a1", "uid": "u-1"}})
    created = kube(server).create(JOB)
    assert created["metadata"]["uid"] == "u-1"
    method, path, body = Handler.seen[0]
    assert (method, path, body) == ("POST", JOBS, JOB)


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, NotFound), (409, Conflict), (410, WatchExpired), (503, Unavailable), (403, KubeApiError)],
)
def test_http_errors_become_project_errors_with_the_servers_message(
    server: str, status: int, error: type[Exception]
) -> None:
    Handler.routes[("POST", JOBS)] = (status, {"kind": "Status", "message": "jobs.batch is forbidden: nope"})
    with pytest.raises(error, match=r"jobs\.batch is forbidden: nope"):
        kube(server).create(JOB)


def test_an_unreachable_server_is_unavailable() -> None:
    with pytest.raises(Unavailable, match="unreachable"):
        kube("http://127.0.0.1:9").list("jobs", "a=b")


def test_delete_is_foreground_and_a_missing_job_is_not_an_error(server: str) -> None:
    Handler.routes[("DELETE", f"{JOBS}/lb-x-a1")] = (200, {"kind": "Status"})
    api = kube(server)
    assert api.delete_job("lb-x-a1") is True
    assert Handler.seen[0][2]["propagationPolicy"] == "Foreground"
    assert api.delete_job("gone") is False
    assert api.read_job("gone") is None


def test_list_returns_items_and_resource_version(server: str) -> None:
    Handler.routes[("GET", "/api/v1/namespaces/lbcloud/pods")] = (
        200, {"kind": "PodList", "metadata": {"resourceVersion": "42"}, "items": [{"metadata": {"name": "p"}}]},
    )  # fmt: skip
    listed = kube(server).list("pods", "app.kubernetes.io/component=evaluation")
    assert (listed.resource_version, [i["metadata"]["name"] for i in listed.items]) == ("42", ["p"])
    query = parse_qs(urlsplit(Handler.seen[0][1]).query)
    assert query["labelSelector"] == ["app.kubernetes.io/component=evaluation"]


def test_watch_streams_events_and_raises_watch_expired_on_a_410_error_event(server: str) -> None:
    Handler.routes[("GET", JOBS)] = (200, [
        {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}},
        {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}},
    ])  # fmt: skip
    events = []
    with pytest.raises(WatchExpired, match="too old"):
        for event in kube(server).watch("jobs", "a=b", "4", timeout_s=5):
            events.append(event)
    assert [e.type for e in events] == ["ADDED", "BOOKMARK"]
    query = Handler.seen[0][1]
    assert "watch=true" in query and "resourceVersion=4" in query and "allowWatchBookmarks=true" in query


def test_ensure_replaces_an_existing_object_with_its_resource_version(server: str) -> None:
    policies = "/apis/networking.k8s.io/v1/namespaces/lbcloud/networkpolicies"
    Handler.routes[("POST", policies)] = (409, {"message": "already exists"})
    Handler.routes[("GET", f"{policies}/p")] = (200, {"metadata": {"name": "p", "resourceVersion": "7"}})
    Handler.routes[("PUT", f"{policies}/p")] = (200, {"metadata": {"name": "p"}})
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": {}}
    kube(server).ensure(body)
    put = Handler.seen[-1]
    assert put[0] == "PUT" and put[2]["metadata"]["resourceVersion"] == "7"
