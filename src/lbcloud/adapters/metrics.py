"""Prometheus metrics: the :class:`~lbcloud.services.ports.MetricsRecorder` port with prometheus-client.

Each :class:`PrometheusMetrics` owns its ``CollectorRegistry`` (several systems in one process, as in
tests, never collide). ``render()`` returns the text exposition format served at ``/metrics``.

| metric | type | labels |
|---|---|---|
| ``lbcloud_queue_depth`` | gauge | |
| ``lbcloud_attempts_started_total`` | counter | track |
| ``lbcloud_attempts_total`` | counter | track, outcome, blame |
| ``lbcloud_attempt_duration_seconds`` | histogram | track, outcome |
| ``lbcloud_route_duration_seconds`` | histogram | track |
| ``lbcloud_scheduler_decision_seconds`` | histogram | |
| ``lbcloud_scheduler_launched_total`` | counter | |
| ``lbcloud_external_errors_total`` | counter | service, kind |
| ``lbcloud_http_requests_total`` | counter | method, route, status |
| ``lbcloud_http_request_duration_seconds`` | histogram | method, route |
| ``lbcloud_sse_clients`` | gauge | |
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# attempts and routes run from seconds (SUMO) to hours (CARLA)
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, float("inf"))
DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, float("inf"))
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, float("inf"))


class PrometheusMetrics:
    """A :class:`~lbcloud.services.ports.MetricsRecorder` exporting Prometheus metrics."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._queue = Gauge("lbcloud_queue_depth", "Route tasks waiting for a slot.", registry=r)
        self._started = Counter("lbcloud_attempts_started", "Attempts started.", ["track"], registry=r)
        self._ended = Counter(
            "lbcloud_attempts", "Attempts ended, by outcome and blame.", ["track", "outcome", "blame"], registry=r
        )
        self._attempt_s = Histogram(
            "lbcloud_attempt_duration_seconds",
            "Wall time of ended attempts.",
            ["track", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._route_s = Histogram(
            "lbcloud_route_duration_seconds",
            "Wall time from a route task's first attempt to its record.",
            ["track"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._decision_s = Histogram(
            "lbcloud_scheduler_decision_seconds",
            "Time the scheduler took to decide what to launch.",
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self._launched = Counter("lbcloud_scheduler_launched", "Attempts launched by the scheduler.", registry=r)
        self._errors = Counter(
            "lbcloud_external_errors", "Errors talking to other services.", ["service", "kind"], registry=r
        )
        self._requests = Counter(
            "lbcloud_http_requests", "HTTP requests served.", ["method", "route", "status"], registry=r
        )
        self._request_s = Histogram(
            "lbcloud_http_request_duration_seconds",
            "HTTP request handling time (until the response starts).",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self._sse = Gauge("lbcloud_sse_clients", "Connected server-sent-event clients.", registry=r)

    # MetricsRecorder ------------------------------------------------------------------------------
    def queue_depth(self, pending_tasks: int) -> None:
        self._queue.set(pending_tasks)

    def attempt_started(self, track: str) -> None:
        self._started.labels(track=track).inc()

    def attempt_ended(self, track: str, outcome: str, blame: str, duration_s: float) -> None:
        self._ended.labels(track=track, outcome=outcome, blame=blame).inc()
        self._attempt_s.labels(track=track, outcome=outcome).observe(max(duration_s, 0.0))

    def route_done(self, track: str, duration_s: float) -> None:
        self._route_s.labels(track=track).observe(max(duration_s, 0.0))

    def scheduler_decision(self, seconds: float, launched: int) -> None:
        self._decision_s.observe(max(seconds, 0.0))
        if launched:
            self._launched.inc(launched)

    def external_error(self, service: str, kind: str) -> None:
        self._errors.labels(service=service, kind=kind).inc()

    # web ------------------------------------------------------------------------------------------
    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One served request; ``route`` is the route template (``/api/v1/submissions/{id}``), never
        the raw path, so label values stay bounded."""
        self._requests.labels(method=method, route=route, status=str(status)).inc()
        self._request_s.labels(method=method, route=route).observe(max(seconds, 0.0))

    def sse_clients(self, delta: int) -> None:
        self._sse.inc(delta)

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format."""
        return generate_latest(self.registry)
