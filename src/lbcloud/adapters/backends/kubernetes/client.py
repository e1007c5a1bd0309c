"""A thin adapter over the official ``kubernetes`` client: raw JSON in and out, errors translated.

:class:`KubeApi` is the boundary the backend and watchers speak to; :class:`KubeClient` implements it
with the official client (``_preload_content=False``, so no model deserialisation on hot paths).
Tests replace it with an in-memory fake or point it at a real API server.

Errors: unreachable server or 5xx → :class:`Unavailable`; 404 → :class:`NotFound`; 409 →
:class:`Conflict`; 410 on a watch → :class:`WatchExpired`; anything else → :class:`KubeApiError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from lbcloud.adapters.backends.kubernetes.manifests import Manifest
from lbcloud.domain.errors import Conflict, LbcloudError, NotFound, Unavailable

Kind = Literal["jobs", "pods"]
Propagation = Literal["Foreground", "Background"]


class KubeApiError(LbcloudError):
    """The API server refused a request (4xx other than 404/409/410)."""


class WatchExpired(LbcloudError):
    """The watch's resourceVersion is too old (410 Gone): list again."""


@dataclass(frozen=True, slots=True)
class ObjectList:
    items: list[Manifest]
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """``type`` is ADDED, MODIFIED, DELETED or BOOKMARK."""

    type: str
    object: Manifest


class KubeApi(Protocol):
    """The few calls the backend needs, on one namespace."""

    namespace: str

    def create(self, body: Manifest) -> Manifest:
        """Create a Job, NetworkPolicy or ResourceClaimTemplate; :class:`Conflict` if it exists."""
        ...

    def ensure(self, body: Manifest) -> None:
        """Create or replace a namespaced object (idempotent)."""
        ...

    def delete_job(self, name: str, propagation: Propagation = "Foreground") -> bool:
        """Delete a Job and (by propagation) its pods; False when it was already gone."""
        ...

    def read_job(self, name: str) -> Manifest | None: ...

    def list(self, kind: Kind, label_selector: str) -> ObjectList: ...

    def watch(self, kind: Kind, label_selector: str, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
        """Events after ``resource_version`` until the server ends the stream (``timeout_s``).

        Raises :class:`WatchExpired` on 410 Gone (either as an HTTP status or an ERROR event)."""
        ...


def _translate(err: Exception, what: str) -> LbcloudError:
    from kubernetes.client.exceptions import ApiException

    if isinstance(err, ApiException):
        status = int(err.status or 0)
        detail = _status_message(err.body) or str(err.reason or "")
        text = f"Kubernetes API: {what}: {status} {detail}".strip()
        if status == 404:
            return NotFound(text)
        if status == 409:
            return Conflict(text)
        if status == 410:
            return WatchExpired(text)
        if status == 0 or status >= 500 or status == 429:
            return Unavailable(text)
        return KubeApiError(text)
    return Unavailable(f"Kubernetes API unreachable: {what}: {type(err).__name__}: {err}")


def _status_message(body: Any) -> str:
    if not body:
        return ""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return str(body)[:300]
    return str(data.get("message", "")) if isinstance(data, dict) else ""


_KINDS: dict[str, tuple[str, str]] = {
    # kind -> (group/version path prefix, plural)
    "Job": ("/apis/batch/v1", "jobs"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
}


class KubeClient:
    """:class:`KubeApi` over the official client. Build with :meth:`from_config`."""

    def __init__(self, api_client: Any, namespace: str, *, request_timeout_s: float = 30.0) -> None:
        from kubernetes import client

        self.namespace = namespace
        self._api_client = api_client
        self._batch = client.BatchV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._timeout = request_timeout_s

    @classmethod
    def from_config(
        cls,
        namespace: str,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        in_cluster: bool = False,
    ) -> KubeClient:
        """Load in-cluster credentials or a kubeconfig (``$KUBECONFIG`` / ``~/.kube/config``)."""
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        configuration = client.Configuration()
        try:
            if in_cluster:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context, client_configuration=configuration
                )
        except (ConfigException, OSError) as err:
            raise Unavailable(f"cannot load Kubernetes credentials: {err}") from None
        return cls(client.ApiClient(configuration), namespace)

    def close(self) -> None:
        self._api_client.close()

    # ---------------------------------------------------------------------------------- helpers
    def _request(
        self, what: str, method: str, path: str, *, body: Manifest | None, query: list[tuple[str, str]], timeout: Any
    ) -> Any:
        """One HTTP call through the official client's serialiser, auth and connection pool."""
        from kubernetes.client.exceptions import ApiException

        try:
            request = self._api_client.param_serialize(
                method,
                path,
                query_params=query,
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._api_client.call_api(*request, _request_timeout=timeout)
        except Exception as err:
            raise _translate(err, what) from None
        if not 200 <= response.status <= 299:
            response.read()
            raise _translate(ApiException(http_resp=response), what)
        return response

    def _call(self, what: str, method: str, path: str, body: Manifest | None = None, **query: str) -> Any:
        response = self._request(what, method, path, body=body, query=list(query.items()), timeout=self._timeout)
        try:
            raw = response.read()
        except Exception as err:
            raise _translate(err, what) from None
        return json.loads(raw) if raw else None

    def _path(self, body: Manifest) -> str:
        kind = str(body.get("kind"))
        api_version = str(body.get("apiVersion"))
        if kind in _KINDS:
            prefix, plural = _KINDS[kind]
        elif kind == "ResourceClaimTemplate":
            prefix, plural = f"/apis/{api_version}", "resourceclaimtemplates"
        else:
            raise KubeApiError(f"lbcloud does not create {kind} objects")
        return f"{prefix}/namespaces/{self.namespace}/{plural}"

    # ------------------------------------------------------------------------------------- API
    def create(self, body: Manifest) -> Manifest:
        name = body.get("metadata", {}).get("name")
        result = self._call(f"create {body.get('kind')} {name}", "POST", self._path(body), body)
        return dict(result or {})

    def ensure(self, body: Manifest) -> None:
        try:
            self.create(body)
        except Conflict:
            name = body["metadata"]["name"]
            current = self._call(f"read {body['kind']} {name}", "GET", f"{self._path(body)}/{name}")
            version = current["metadata"]["resourceVersion"]
            replacement = {**body, "metadata": {**body["metadata"], "resourceVersion": version}}
            self._call(f"replace {body['kind']} {name}", "PUT", f"{self._path(body)}/{name}", replacement)

    def delete_job(self, name: str, propagation: Propagation = "Foreground") -> bool:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            self._call(f"delete Job {name}", "DELETE", f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}", body)
        except NotFound:
            return False
        return True

    def read_job(self, name: str) -> Manifest | None:
        try:
            result = self._call(f"read Job {name}", "GET", f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}")
        except NotFound:
            return None
        return dict(result)

    def _list_path(self, kind: Kind) -> str:
        if kind == "jobs":
            return f"/apis/batch/v1/namespaces/{self.namespace}/jobs"
        return f"/api/v1/namespaces/{self.namespace}/pods"

    def list(self, kind: Kind, label_selector: str) -> ObjectList:
        data = self._call(f"list {kind}", "GET", self._list_path(kind), labelSelector=label_selector)
        return ObjectList(list(data.get("items") or []), str(data.get("metadata", {}).get("resourceVersion", "")))

    def watch(self, kind: Kind, label_selector: str, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
        from kubernetes.watch.watch import iter_resp_lines

        what = f"watch {kind}"
        query = [
            ("labelSelector", label_selector),
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_s)),
        ]
        response = self._request(
            what, "GET", self._list_path(kind), body=None, query=query, timeout=(self._timeout, timeout_s + 15)
        )
        response = response.response  # the urllib3 response, streamed line by line
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if not line:
                    continue
                event = json.loads(line)
                kind_of_event = str(event.get("type", ""))
                obj = event.get("object") or {}
                if kind_of_event == "ERROR":
                    code = int(obj.get("code", 0) or 0)
                    message = f"Kubernetes API: {what}: {code} {obj.get('message', '')}"
                    if code == 410:
                        raise WatchExpired(message)
                    raise Unavailable(message)
                yield WatchEvent(kind_of_event, obj)
        except (WatchExpired, Unavailable):
            raise
        except Exception as err:
            raise _translate(err, what) from None
        finally:
            response.close()
            response.release_conn()
