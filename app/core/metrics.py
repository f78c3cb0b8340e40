"""Prometheus metrics: one registry per app, so several apps in one process do not collide."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from app.reports.model import Report

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.validations = Counter(
            "datagate_validations",
            "Validations finished, by verdict, data source (upload, reference) and mode.",
            ["status", "source", "mode"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "datagate_validation_duration_seconds",
            "Engine time of a validation (read, checks, report).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
            registry=self.registry,
        )
        self.rows = Counter(
            "datagate_rows_validated", "Rows of data validated.", registry=self.registry
        )
        self.rejected = Counter(
            "datagate_requests_rejected",
            "Validation requests refused before they ran, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "datagate_queue_depth",
            "Validations waiting: queued jobs plus waiting sync requests.",
            registry=self.registry,
        )
        self.running = Gauge(
            "datagate_validations_running", "Validations running now.", registry=self.registry
        )
        self.notifications = Counter(
            "datagate_notifications",
            "Notifications (DATAGATE_NOTIFY) and OpenLineage events (kind `openlineage`) by "
            "target kind and outcome: `sent`, or `undelivered` after its retries (also logged).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.worker_restarts = Gauge(
            "datagate_worker_restarts",
            "Worker processes replaced (crash, timeout, recycling) since start.",
            registry=self.registry,
        )

    def track(
        self,
        *,
        queue_depth: Callable[[], float],
        running: Callable[[], float],
        worker_restarts: Callable[[], float],
    ) -> None:
        self.queue_depth.set_function(queue_depth)
        self.running.set_function(running)
        self.worker_restarts.set_function(worker_restarts)

    def observe(self, report: Report, *, mode: str) -> None:
        source = "reference" if report.dataset.source else "upload"
        self.validations.labels(report.status, source, mode).inc()
        self.duration.observe(report.duration_ms / 1000)
        self.rows.inc(report.dataset.rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
