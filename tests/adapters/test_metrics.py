"""PrometheusMetrics: the MetricsRecorder port exported in Prometheus text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from lbcloud.adapters.metrics import PrometheusMetrics
from lbcloud.services.ports import MetricsRecorder


def _samples(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_implements_the_metrics_recorder_port() -> None:
    recorder: MetricsRecorder = PrometheusMetrics()
    recorder.queue_depth(3)


def test_queue_depth_is_a_gauge_that_follows_the_last_value() -> None:
    metrics = PrometheusMetrics()
    metrics.queue_depth(7)
    metrics.queue_depth(2)
    assert _samples(metrics)[("lbcloud_queue_depth", ())] == 2


def test_attempts_are_counted_by_outcome_and_blame_with_a_duration_histogram() -> None:
    metrics = PrometheusMetrics()
    metrics.attempt_started("sumo-dev")
    metrics.attempt_ended("sumo-dev", "failed", "simulator", 12.0)
    metrics.attempt_ended("sumo-dev", "failed", "simulator", 40.0)
    metrics.attempt_ended("sumo-dev", "record", "none", 3.0)
    s = _samples(metrics)
    assert s[("lbcloud_attempts_started_total", (("track", "sumo-dev"),))] == 1
    failed = (("blame", "simulator"), ("outcome", "failed"), ("track", "sumo-dev"))
    assert s[("lbcloud_attempts_total", failed)] == 2
    hist = (("outcome", "failed"), ("track", "sumo-dev"))
    assert s[("lbcloud_attempt_duration_seconds_count", hist)] == 2
    assert s[("lbcloud_attempt_duration_seconds_sum", hist)] == 52.0
    bucket_15 = (("le", "15.0"), *hist)
    assert s[("lbcloud_attempt_duration_seconds_bucket", bucket_15)] == 1


def test_route_durations_scheduler_latency_and_external_errors_are_exported() -> None:
    metrics = PrometheusMetrics()
    metrics.route_done("sumo-test", 90.0)
    metrics.scheduler_decision(0.002, launched=3)
    metrics.scheduler_decision(0.001, launched=0)
    metrics.external_error("evalai", "timeout")
    s = _samples(metrics)
    assert s[("lbcloud_route_duration_seconds_count", (("track", "sumo-test"),))] == 1
    assert s[("lbcloud_scheduler_decision_seconds_count", ())] == 2
    assert s[("lbcloud_scheduler_launched_total", ())] == 3
    assert s[("lbcloud_external_errors_total", (("kind", "timeout"), ("service", "evalai")))] == 1


def test_each_instance_has_its_own_registry() -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.queue_depth(5)
    assert _samples(second)[("lbcloud_queue_depth", ())] == 0


def test_http_requests_are_counted_by_route_template() -> None:
    metrics = PrometheusMetrics()
    metrics.http_request("GET", "/api/v1/submissions/{submission_id}", 404, 0.01)
    labels = (("method", "GET"), ("route", "/api/v1/submissions/{submission_id}"), ("status", "404"))
    assert _samples(metrics)[("lbcloud_http_requests_total", labels)] == 1
