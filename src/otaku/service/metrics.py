"""Every Prometheus metric of the service, defined once. Each app owns a registry, so two apps
in one process (tests) never share counters."""

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from otaku.experiments.impressions import OUTCOMES as IMPRESSION_OUTCOMES
from otaku.experiments.impressions import ImpressionCounts
from otaku.jobs.runs import RunSummary

log = logging.getLogger(__name__)

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
        # process_start_time_seconds, memory, CPU: restarts and leaks show on any platform
        ProcessCollector(registry=self.registry)
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
        self.database_up = Gauge(
            "otaku_database_up",
            "1 when the database answered at the last scrape, else 0 (readiness ignores it).",
            registry=self.registry,
        )

        self.arm_latency = Histogram(
            "otaku_experiment_request_duration_seconds",
            "Recommendation pages served, by experiment and arm ('none': outside any), with "
            "the time each took.",
            ["experiment", "arm"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_arm(self, experiment: str, arm: str, seconds: float) -> None:
        """Count one page served by an arm, with its latency."""
        self.arm_latency.labels(experiment, arm).observe(seconds)

    def watch_impressions(self, read: Callable[[], ImpressionCounts]) -> None:
        """Export the impression log's counts (read at each scrape: nothing is counted on
        the request path for Prometheus)."""
        self.registry.register(ImpressionCollector(read))

    def watch_experiment(self, read: Callable[[], Sequence["ArmGauges"]]) -> None:
        """Export the running experiment's online metrics per arm (read from the database)."""
        self.registry.register(ExperimentCollector(read))

    def observe_stages(self, strategy: str, timings: Mapping[str, float]) -> None:
        """Record the per-stage timings of one recommendation."""
        for stage, seconds in timings.items():
            self.stage_latency.labels(strategy, stage).observe(seconds)

    def set_model(self, labels: Mapping[str, Any], trained_at: float, loaded_at: float) -> None:
        """Describe the model now served."""
        self.model.info({key: str(value) for key, value in labels.items()})
        self.model_trained.set(trained_at)
        self.model_loaded.set(loaded_at)

    def watch_database(self, reachable: Callable[[], bool]) -> None:
        """Ask ``reachable`` at every scrape for ``otaku_database_up``."""
        self.database_up.set_function(lambda: 1.0 if reachable() else 0.0)

    def watch_job_runs(self, read: Callable[[], Sequence[RunSummary]]) -> None:
        """Export the database's record of batch-job runs (retrain outcomes among them)."""
        self.registry.register(JobRunsCollector(read))


T = TypeVar("T")


class CachedRead(Generic[T]):
    """A database read done at most every ``max_age_seconds``; when it fails, the last value
    stands (a scrape never fails because of the database)."""

    def __init__(self, read: Callable[[], T], empty: T, max_age_seconds: float) -> None:
        self._read = read
        self._max_age = max_age_seconds
        self._lock = threading.Lock()
        self._value = empty
        self._read_at = float("-inf")

    def get(self) -> T:
        """The value, read again when it is older than the maximum age."""
        with self._lock:
            if time.monotonic() - self._read_at > self._max_age:
                try:
                    self._value = self._read()
                except Exception as error:  # a scrape must not fail: keep the last values
                    log.warning("metrics not readable from the database: %s", error)
                self._read_at = time.monotonic()
            return self._value


@dataclass(frozen=True)
class ArmGauges:
    """One arm's online metrics, as exported."""

    experiment: str
    arm: str
    users: int
    hit_rate: float
    mean_rating: float
    dismiss_rate: float
    coverage: float


ARM_GAUGES = {
    "users": "Users shown at least one page by the arm.",
    "hit_rate": "Share of the arm's users who rated a shown anime >= 7 within the hit window.",
    "mean_rating": "Mean rating of the anime the arm showed that were rated after.",
    "dismiss_rate": 'Share of shown anime later marked "not interested".',
    "coverage": "Share of the catalog the arm showed to anyone.",
}


class ExperimentCollector(Collector):
    """``otaku_experiment_<metric>{experiment, arm}`` for the running experiment, read from
    the database at most once a minute (the computation reads its impressions)."""

    def __init__(self, read: Callable[[], Sequence[ArmGauges]], max_age_seconds: float = 60.0):
        self._arms = CachedRead[Sequence[ArmGauges]](read, (), max_age_seconds)

    def describe(self) -> Iterator[Metric]:
        """The metric families (without reading the database)."""
        yield from self._families(())

    def collect(self) -> Iterator[Metric]:
        """The current values."""
        yield from self._families(self._arms.get())

    @staticmethod
    def _families(arms: Sequence[ArmGauges]) -> Iterator[Metric]:
        for name, help_text in ARM_GAUGES.items():
            family = GaugeMetricFamily(
                f"otaku_experiment_{name}", help_text, labels=["experiment", "arm"]
            )
            for arm in arms:
                family.add_metric([arm.experiment, arm.arm], float(getattr(arm, name)))
            yield family


class JobRunsCollector(Collector):
    """``otaku_job_runs`` and ``otaku_job_last_run_timestamp_seconds`` by job and outcome,
    read from the database at most every ``max_age_seconds``; when the database cannot be
    read, the last values are exported (a scrape never fails because of it)."""

    def __init__(self, read: Callable[[], Sequence[RunSummary]], max_age_seconds: float = 15.0):
        self._summaries = CachedRead[Sequence[RunSummary]](read, (), max_age_seconds)

    def describe(self) -> Iterator[Metric]:
        """The metric families (without reading the database)."""
        yield from self._families(())

    def collect(self) -> Iterator[Metric]:
        """The current counts."""
        yield from self._families(self._summaries.get())

    @staticmethod
    def _families(summaries: Sequence[RunSummary]) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "otaku_job_runs",
            "Batch-job runs recorded in the database, by job and outcome "
            "(retrain: promoted, kept, failed; running = started and not finished).",
            labels=["job", "outcome"],
        )
        last = GaugeMetricFamily(
            "otaku_job_last_run_timestamp_seconds",
            "When the last run of a job with that outcome started (Unix time).",
            labels=["job", "outcome"],
        )
        for summary in summaries:
            runs.add_metric([summary.job, summary.outcome], summary.runs)
            last.add_metric([summary.job, summary.outcome], summary.last_started.timestamp())
        yield runs
        yield last


class ImpressionCollector(Collector):
    """``otaku_impressions_total`` by outcome, read from the impression log at each scrape."""

    def __init__(self, read: Callable[[], ImpressionCounts]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        """One sample per outcome."""
        counts = self.read()
        family = CounterMetricFamily(
            "otaku_impressions",
            "Impressions by outcome: queued, written, dropped (the queue or pipe was full), "
            "failed (the database refused them). With forked workers, queued and dropped are "
            "this worker's; written, failed and the writer's drops are the whole server's.",
            labels=["outcome"],
        )
        for outcome in IMPRESSION_OUTCOMES:
            family.add_metric([outcome], getattr(counts, outcome))
        yield family
