"""Recommendations inside an experiment: which arm answers, what was shown (an impression off
the request path), and the per-arm metrics. The route and the closed-loop simulation both
serve known users through :func:`recommend_known_user`, so the simulated experiment measures
the served code path."""

import logging
import threading
import time
from dataclasses import dataclass

from otaku.config import Settings
from otaku.experiments.definition import Assignment, ExperimentSpec, assign, parse_spec
from otaku.experiments.impressions import ImpressionLog, Shown
from otaku.experiments.report import experiment_report
from otaku.experiments.store import (
    ExperimentConflictError,
    RunningExperiment,
    running_experiment,
    start_experiment,
)
from otaku.experiments.writer_process import ImpressionPipe
from otaku.pipeline.engine import Engine
from otaku.pipeline.filters import ItemFilter
from otaku.pipeline.pages import DEFAULT_K, Page
from otaku.pipeline.precomputed import answers_from_precomputed
from otaku.service.logs import request_id_var
from otaku.service.metrics import ArmGauges, ServiceMetrics
from otaku.service.model import ServedModel
from otaku.service.users import CurrentProfile, UserDirectory
from otaku.storage.database import Database

log = logging.getLogger(__name__)

DEFAULT_STRATEGY = "default"
NO_ARM = "none"  # the metrics label of a page served outside any experiment


class OnlineExperiments:
    """The running experiment (as this process last read it) and the impression log."""

    def __init__(
        self,
        database: Database | None,
        settings: Settings,
        metrics: ServiceMetrics | None,
        impression_pipe: ImpressionPipe | None = None,
    ) -> None:
        self.settings = settings
        self.running = RunningExperiment(database, settings.experiment_poll_seconds)
        self.metrics = metrics
        self._arm_models: dict[str, Engine] = {}
        self._arm_models_lock = threading.Lock()
        self.impressions = ImpressionLog(
            database if settings.impressions else None,
            capacity=settings.impression_queue,
            pipe=impression_pipe,
        )
        if metrics is not None:
            metrics.watch_impressions(lambda: self.impressions.counts)

    def assignment(self, user_id: int | None, asked_strategy: str | None) -> Assignment | None:
        """The arm serving this request: none when the caller chose a strategy, when the user
        has no id, or when no experiment runs."""
        if asked_strategy is not None or user_id is None:
            return None
        spec = self.running.current()
        return None if spec is None else assign(spec, user_id)

    def engine_for(
        self, assignment: Assignment | None, champion: Engine, champion_version: str | None
    ) -> Engine:
        """The engine an arm is served: the champion, or the registered version it names
        (loaded from the registry the first time this process needs it; that request waits
        for the load, the next ones find it ready)."""
        wanted = assignment.model_version if assignment else None
        if wanted is None or wanted == champion_version:
            return champion
        loaded = self._arm_models.get(wanted)
        if loaded is not None:
            return loaded
        with self._arm_models_lock:
            if wanted not in self._arm_models:
                from otaku.service.model import load_served_model

                log.info("loading model version %s for arm %s", wanted, assignment)
                self._arm_models[wanted] = load_served_model(self.settings, wanted).engine
            return self._arm_models[wanted]

    def shown(
        self,
        page: Page,
        user_id: int | None,
        assignment: Assignment | None,
        model_version: str,
        started: float,
    ) -> None:
        """Record one page as shown (never blocks) and count it under its arm."""
        seconds = time.perf_counter() - started
        experiment = assignment.experiment if assignment else None
        arm = assignment.arm if assignment else None
        if self.metrics is not None:
            self.metrics.observe_arm(experiment or NO_ARM, arm or NO_ARM, seconds)
        self.impressions.record(
            Shown(
                user_id=user_id,
                experiment=experiment,
                arm=arm,
                strategy=page.strategy,
                model_version=model_version,
                first_rank=page.offset + 1,
                anime_ids=[item.anime.anime_id for item in page.items],
                latency_ms=seconds * 1000.0,
                request_id=request_id_var.get(),
            )
        )


@dataclass(frozen=True)
class ServedPage:
    """A known user's page, the profile it was built from and the arm that served it."""

    page: Page
    current: CurrentProfile
    assignment: Assignment | None
    engine: Engine  # the model that answered (an arm may name another than the champion)


def recommend_known_user(
    champion: ServedModel,
    users: UserDirectory,
    online: OnlineExperiments,
    user_id: int,
    k: int,
    offset: int = 0,
    item_filter: ItemFilter | None = None,
    asked_strategy: str | None = None,
) -> ServedPage:
    """A known user's page: the experiment's arm picks the strategy (and the model, when it
    names a version) unless the caller chose a strategy; the page is recorded as an
    impression."""
    started = time.perf_counter()
    chosen_filter = item_filter or ItemFilter()
    assignment = online.assignment(user_id, asked_strategy)
    engine = online.engine_for(assignment, champion.engine, champion.registry_version)
    strategy = assignment.strategy if assignment else (asked_strategy or DEFAULT_STRATEGY)
    stored_page = answers_from_precomputed(strategy, chosen_filter, offset + k)
    current = users.current(engine, user_id, precomputed_page=stored_page)
    page = engine.recommend_for_profile(current.profile, k, offset, chosen_filter, strategy)
    online.shown(page, user_id, assignment, engine.version, started)
    return ServedPage(page, current, assignment, engine)


def configured_experiment(settings: Settings) -> ExperimentSpec | None:
    """The experiment OTAKU_EXPERIMENT defines (ValueError naming the field when it is bad)."""
    if not settings.experiment:
        return None
    return parse_spec(settings.experiment, "OTAKU_EXPERIMENT")


def start_configured_experiment(database: Database, spec: ExperimentSpec | None) -> None:
    """Start the configured experiment unless one by that name exists or another runs (every
    server process tries; the database lets one succeed)."""
    if spec is None:
        return
    try:
        start_experiment(database, spec)
        log.info("experiment %s started (OTAKU_EXPERIMENT)", spec.name)
    except ExperimentConflictError as why:
        log.info("OTAKU_EXPERIMENT %s not started: %s", spec.name, why)


def running_arm_gauges(database: Database, window_days: float) -> list[ArmGauges]:
    """The running experiment's online metrics per arm, for Prometheus."""
    spec = running_experiment(database)
    if spec is None:
        return []
    report = experiment_report(database, spec, DEFAULT_K, window_days)
    return [
        ArmGauges(
            experiment=spec.name,
            arm=arm.arm,
            users=arm.users,
            hit_rate=arm.hit_rate.value,
            mean_rating=arm.mean_rating.value,
            dismiss_rate=arm.dismiss_rate.value,
            coverage=arm.coverage,
        )
        for arm in report.arms
    ]
