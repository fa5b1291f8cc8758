"""Every Prometheus metric of the service, defined once. Each app owns a registry, so two apps
in one process (tests) never share counters."""

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class ServiceMetrics:
    """The service's metrics and the registry ``/metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "otaku_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "otaku_http_request_duration_seconds",
            "HTTP request latency by method, route template and status code.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "otaku_http_errors_total",
            "Requests that ended in an error, by route and kind (client, not_found, server...).",
            ["route", "kind"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "otaku_http_requests_in_flight",
            "Requests being served now.",
            registry=self.registry,
        )
        self.stage_latency = Histogram(
            "otaku_recommendation_stage_seconds",
            "Time spent in each stage of a recommendation, by strategy.",
            ["strategy", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model = Info(
            "otaku_model",
            "The model being served (bundle version, registry version, data).",
            registry=self.registry,
        )
        self.model_trained = Gauge(
            "otaku_model_trained_timestamp_seconds",
            "When the served model was trained (Unix time; 0 if unknown).",
            registry=self.registry,
        )
        self.warmed_users = Gauge(
            "otaku_model_warmed_users",
            "Known users whose first page of the served model is precomputed.",
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "otaku_model_loaded_timestamp_seconds",
            "When the service loaded the model it serves (Unix time).",
            registry=self.registry,
        )

    def observe_stages(self, strategy: str, timings: Mapping[str, float]) -> None:
        """Record the per-stage timings of one recommendation."""
        for stage, seconds in timings.items():
            self.stage_latency.labels(strategy, stage).observe(seconds)

    def set_model(self, labels: Mapping[str, Any], trained_at: float, loaded_at: float) -> None:
        """Describe the model now served."""
        self.model.info({key: str(value) for key, value in labels.items()})
        self.model_trained.set(trained_at)
        self.model_loaded.set(loaded_at)
