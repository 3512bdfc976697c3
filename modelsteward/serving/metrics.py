"""Technical metrics for Prometheus: requests, errors and latency per deployment, arm and version."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """One set of metrics per server. With ``PROMETHEUS_MULTIPROC_DIR`` set (``steward up --workers
    N`` sets it), every worker writes its own files and ``/metrics`` reports the sum over workers."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode the values live in per-process files; a private registry is still
        # what keeps two apps in one process (tests) from colliding.
        self.registry = CollectorRegistry()
        labels = ["deployment", "arm", "version"]
        self.requests = Counter(
            "steward_predictions_requests",
            "Requests answered per deployment, arm, version and outcome",
            [*labels, "status"],
            registry=self.registry,
        )
        self.model_latency = Histogram(
            "steward_model_latency_seconds",
            "Time spent in the model's predict, per deployment, arm and version",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "steward_request_latency_seconds",
            "Time from the request's arrival to its answer (decode, route, predict, encode), per protocol",
            ["deployment", "protocol", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.log_queue = Gauge(
            "steward_prediction_log_queue_rows",
            "Predictions held in memory, not yet written to the log",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.log_rows = Gauge(
            "steward_prediction_log_rows_written",
            "Predictions written to the log by this process since it started",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.log_errors = Gauge(
            "steward_prediction_log_write_errors",
            "Failed attempts to write the prediction log (retried, nothing dropped)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.log_rejected = Gauge(
            "steward_prediction_log_rows_rejected",
            "Predictions refused with 503 because the log's queue was full (back-pressure, not logged, not served)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.log_failing = Gauge(
            "steward_prediction_log_failing",
            "Workers whose prediction log writes keep failing (1 per worker while its alert is open)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.shadows_dropped = Gauge(
            "steward_shadow_requests_dropped",
            "Shadow predictions skipped because too many were waiting",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.monitor_ok = Gauge(
            "steward_monitor_ok",
            "1 when a monitor's latest result passed, 0 when it breached (absent: never run, or no data)",
            ["monitor"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.monitor_breaches = Gauge(
            "steward_monitor_breaches",
            "Breaches in a monitor's latest result",
            ["monitor"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.monitor_last_run = Gauge(
            "steward_monitor_last_run_timestamp_seconds",
            "When a monitor last finished a run",
            ["monitor"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.alerts_firing = Gauge(
            "steward_alerts_firing", "Alerts firing now", registry=self.registry, multiprocess_mode="mostrecent"
        )
        self.deliveries = Gauge(
            "steward_alert_deliveries",
            "Alert notifications by delivery status",
            ["status"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._request_children: dict[tuple[str, ...], Any] = {}

    def observe_model(self, deployment: str, arm: str, version: str, status: str, latency_ms: float) -> None:
        key = (deployment, arm, version, status)
        children = self._children.get(key)
        if children is None:
            # Looking label children up costs microseconds; the request path keeps them at hand.
            children = (
                self.requests.labels(deployment, arm, version, status),
                self.model_latency.labels(deployment, arm, version),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(latency_ms / 1000)

    def observe_request(self, deployment: str, protocol: str, status: int, seconds: float) -> None:
        key = (deployment, protocol, str(status))
        child = self._request_children.get(key)
        if child is None:
            child = self.request_latency.labels(*key)
            self._request_children[key] = child
        child.observe(seconds)

    def observe_monitoring(self, stats: dict[str, Any]) -> None:
        """Set the monitoring gauges from ``monitoring_stats()``."""
        for name, result in stats.get("monitors", {}).items():
            if result.status in ("ok", "breach"):
                self.monitor_ok.labels(name).set(1 if result.status == "ok" else 0)
            self.monitor_breaches.labels(name).set(len(result.breaches))
            self.monitor_last_run.labels(name).set(result.finished_at.timestamp())
        self.alerts_firing.set(stats.get("alerts_firing", 0))
        for status, count in stats.get("deliveries", {}).items():
            self.deliveries.labels(status).set(count)

    def render(self, stats: dict[str, float] | None = None) -> bytes:
        """The text exposition; ``stats`` are the gateway's current counters (``serving_stats()``)."""
        for key, gauge in (
            ("log_queue_rows", self.log_queue),
            ("log_rows_written", self.log_rows),
            ("log_write_errors", self.log_errors),
            ("log_rows_rejected", self.log_rejected),
            ("log_failing", self.log_failing),
            ("shadows_dropped", self.shadows_dropped),
        ):
            if stats and key in stats:
                gauge.set(stats[key])
        if self.multiprocess:
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
