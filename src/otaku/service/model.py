"""The model the service serves: loaded once (from a bundle path or the registry's champion)
and held behind an atomic reference, so a request keeps the engine it started with."""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from otaku.config import Settings
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.engine import Engine
from otaku.pipeline.rankings import RANKING_CACHE_SIZE
from otaku.service.schemas import prepare_summaries

log = logging.getLogger(__name__)
SwapCallback = Callable[["ServedModel"], None]


class ModelNotReadyError(RuntimeError):
    """No model is loaded (yet): the service cannot answer recommendation requests."""


def warm_order(engine: Engine, limit: int, first: Sequence[int] = ()) -> list[int]:
    """Who to warm, in order: the users in ``first`` the model knows (those who asked lately
    are the likeliest to ask again), then the known users with the most ratings. At most
    ``limit``, and never more than the ranking cache holds: warming beyond it would evict
    what was just warmed."""
    limit = min(limit, RANKING_CACHE_SIZE)
    recent = [int(user) for user in first if engine.knows_user(int(user))]
    active = engine.most_active_users(limit).tolist()
    return list(dict.fromkeys([*recent, *active]))[:limit]


class WarmUp:
    """Background computation of known users' first pages (progress readable any time)."""

    def __init__(self) -> None:
        self.total = 0
        self.warmed = 0
        self.done = False
        self._stop = threading.Event()

    def start(self, engine: Engine, limit: int, first: Sequence[int] = ()) -> threading.Thread:
        """Warm up to ``limit`` users in a daemon thread: ``first`` (the users who asked
        lately) before the most active (see :func:`warm_order`)."""
        users = warm_order(engine, limit, first)
        self.total = len(users)

        def run() -> None:
            for user_id in users:
                if self._stop.is_set():
                    break
                self.warmed += engine.warm([int(user_id)])
            self.done = True
            log.info("warmed %d user(s) of model %s", self.warmed, engine.version)

        thread = threading.Thread(target=run, name="otaku-warm-up", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Ask the warm-up to end (a swapped-out model need not finish)."""
        self._stop.set()


@dataclass(frozen=True)
class ServedModel:
    """An engine plus where it came from."""

    engine: Engine
    source: str
    registry_version: str | None
    loaded_at: float
    warm_up: WarmUp = field(default_factory=WarmUp)

    @property
    def trained_at(self) -> float:
        """When the bundle was trained (Unix time; 0 when the metadata does not say)."""
        created = self.engine.metadata.get("created_at")
        try:
            return datetime.fromisoformat(str(created)).timestamp()
        except ValueError:
            return 0.0

    def labels(self) -> dict[str, str]:
        """What the ``otaku_model_info`` metric and ``/v1/model`` report."""
        metadata = self.engine.metadata
        return {
            "version": self.engine.version,
            "registry_version": self.registry_version or "",
            "source": self.source,
            "data": str(metadata.get("data", "")),
            "data_hash": str(metadata.get("data_hash", "")),
            "simulated": str(metadata.get("simulated", "")),
        }


def load_served_model(settings: Settings, version: str | None = None) -> ServedModel:
    """The configured bundle (``OTAKU_BUNDLE_PATH``) or the registry's champion (or the given
    registry ``version``), as an engine."""
    if settings.bundle_path is not None:
        bundle = Bundle.load(settings.bundle_path)
        return ServedModel(
            Engine(bundle.models, bundle.metadata), str(settings.bundle_path), None, time.time()
        )
    from otaku.storage.registry import CHAMPION, champion_version, load_registered

    version = version or champion_version(settings)
    if version is None:
        raise ModelNotReadyError(
            f"no '{CHAMPION}' model in the registry at {settings.tracking_uri}: "
            "run `otaku train` first (or set OTAKU_BUNDLE_PATH)"
        )
    bundle = load_registered(settings, version)
    source = f"registry:{settings.registered_model}/{version}"
    return ServedModel(Engine(bundle.models, bundle.metadata), source, version, time.time())


def load_model_to_serve(settings: Settings, version: str | None = None) -> ServedModel:
    """:func:`load_served_model`, with the summary that pages show of each catalog anime built
    before the first request (once per model, shared by forked workers)."""
    served = load_served_model(settings, version)
    table = served.engine.table
    ready = prepare_summaries(table.info(item) for item in range(len(table.anime_ids)))
    log.info("prepared the summaries of %d anime", ready)
    return served


class ModelHolder:
    """The served model; swapping is one reference assignment, so readers never see half."""

    def __init__(self, served: ServedModel | None = None) -> None:
        self._served = served
        self._problem: str | None = None if served else "the model is loading"
        self._lock = threading.Lock()

    @property
    def problem(self) -> str | None:
        """Why no model is served, when none is."""
        return None if self._served else self._problem

    def current_or_none(self) -> ServedModel | None:
        """The served model, if any."""
        return self._served

    def current(self) -> ServedModel:
        """The model to answer one request with (raises :class:`ModelNotReadyError`)."""
        served = self._served
        if served is None:
            raise ModelNotReadyError(self._problem or "no model is loaded")
        return served

    def swap(self, served: ServedModel) -> None:
        """Serve ``served`` from now on; requests already running keep their engine."""
        with self._lock:
            previous = self._served
            self._served = served
            self._problem = None
        if previous is not None:
            previous.warm_up.stop()
        log.info("serving model %s (%s)", served.engine.version, served.source)

    def fail(self, problem: str) -> None:
        """Record why loading failed (kept while nothing is served)."""
        with self._lock:
            self._problem = problem


class ChampionWatcher:
    """Swaps in a new champion: when the registry alias moves (polled) or when asked."""

    def __init__(self, holder: "ModelHolder", settings: Settings, on_swap: "SwapCallback") -> None:
        self.holder = holder
        self.settings = settings
        self.on_swap = on_swap
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def reload(self, force: bool = False) -> tuple[str | None, str | None]:
        """Load the champion if it is not the one served (always with ``force``); returns the
        registry versions before and after."""
        with self._lock:
            from otaku.storage.registry import champion_version

            current = self.holder.current_or_none()
            before = current.registry_version if current else None
            wanted = champion_version(self.settings)
            if wanted is None or (wanted == before and not force):
                return before, before
            return before, self._take(wanted)

    def _take(self, version: str) -> str | None:
        """Serve registry ``version`` (the one just compared); returns what is served now."""
        served = load_model_to_serve(self.settings, version)
        self.on_swap(served)
        return served.registry_version

    def start(self) -> threading.Thread | None:
        """Poll the alias every ``reload_poll_seconds`` in a daemon thread."""

        def run() -> None:
            while not self._stop.wait(self.settings.reload_poll_seconds):
                try:
                    before, after = self.reload()
                    if before != after:
                        log.info("champion moved: version %s -> %s", before, after)
                except Exception:  # keep serving the old model; try again next time
                    log.exception("could not check or load the champion")

        thread = threading.Thread(target=run, name="otaku-champion-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
