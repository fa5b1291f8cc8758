"""`otaku precompute --cluster`: the users' rankings computed as Dask tasks, one partition of
users per task. Each worker loads the served model once (the same registry version or bundle
directory the command resolved) and keeps it for the run's later tasks; the rankings come
back in partition order and the command writes them in one transaction, as locally.
"""

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from otaku.cluster import Cluster
from otaku.config import Settings
from otaku.pipeline.engine import Engine
from otaku.pipeline.precomputed import ComputedRankings

if TYPE_CHECKING:
    from distributed import Future

IN_FLIGHT_PER_THREAD = 2  # tasks queued per worker thread: results stream, memory stays flat
_LOADED: dict["ModelSource", Engine] = {}  # per worker process: the model of the current run
_LOADING = threading.Lock()


class WrongModelError(RuntimeError):
    """A worker loaded another model than the one the command ranks with."""


@dataclass(frozen=True)
class ModelSource:
    """Where a worker finds the served model: a bundle directory, or a registry version
    (the tracking URI and model name); paths must be the same on every worker."""

    bundle_path: str | None
    tracking_uri: str | None
    registered_model: str
    registry_version: str | None

    @classmethod
    def of(cls, settings: Settings, registry_version: str | None) -> "ModelSource":
        """The source of the model ``settings`` serve (paths made absolute)."""
        bundle = settings.bundle_path
        return cls(
            str(Path(bundle).resolve()) if bundle is not None else None,
            settings.tracking_uri if bundle is None else None,
            settings.registered_model,
            registry_version,
        )

    def load(self) -> Engine:
        """The model as an engine (on a worker: once per process and source)."""
        from otaku.service.model import load_served_model

        with _LOADING:
            if self not in _LOADED:
                _LOADED.clear()  # a new run's model replaces the last one
                settings = Settings(
                    bundle_path=Path(self.bundle_path) if self.bundle_path else None,
                    mlflow_tracking_uri=self.tracking_uri,
                    registered_model=self.registered_model,
                )
                _LOADED[self] = load_served_model(settings, self.registry_version).engine
            return _LOADED[self]


def ranked_on_cluster(
    cluster: Cluster, source: ModelSource, version: str, tasks: list[np.ndarray]
) -> Iterator[ComputedRankings]:
    """Each task's rankings from the cluster's workers, in task order (a bounded number of
    tasks in flight, so neither the workers nor this process hold every result at once)."""
    client = cluster.client
    window = IN_FLIGHT_PER_THREAD * sum(client.nthreads().values())
    pending: deque[Future] = deque()
    for user_ids in tasks:
        pending.append(client.submit(_rank_on_worker, source, version, user_ids, pure=False))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _rank_on_worker(source: ModelSource, version: str, user_ids: np.ndarray) -> ComputedRankings:
    from otaku.jobs.precompute import rank_users

    engine = source.load()
    if engine.version != version:
        raise WrongModelError(
            f"a worker loaded model {engine.version} from {source}, not {version}: the "
            "workers must see the same bundle directory or registry as the command"
        )
    return rank_users(engine, user_ids)
