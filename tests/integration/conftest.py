"""Integration fixtures: a small real subset of the shared MAL data."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from otaku.columns import Columns
from otaku.data.files import DataSources
from otaku.storage.database import Database, create_db_engine, migrate
from tests.storage_backends import postgres_database, sqlite_url


@pytest.fixture(scope="session")
def real_subset(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> DataSources:
    """60 real users, and the 600 anime they rate most, with real synopses."""
    folder = tmp_path_factory.mktemp("subset")
    ratings = pd.read_csv(shared_data / "mal2020" / "ratings.csv")
    users = np.sort(ratings[Columns.user_id].unique())[:60]
    ratings = ratings[ratings[Columns.user_id].isin(users)]
    top = ratings[Columns.anime_id].value_counts().index[:600]
    ratings = ratings[ratings[Columns.anime_id].isin(top)]
    anime = pd.read_csv(shared_data / "mal2020" / "anime.csv", dtype=str)
    anime = anime[anime["MAL_ID"].astype(int).isin(top)]
    synopses = pd.read_csv(shared_data / "mal2020" / "synopsis.csv", dtype=str)
    synopses = synopses[synopses["MAL_ID"].astype(int).isin(top)]
    anime.to_csv(folder / "anime.csv", index=False)
    synopses.to_csv(folder / "anime_with_synopsis.csv", index=False)
    ratings.to_csv(folder / "rating_complete.csv", index=False)
    return DataSources.from_directory(folder)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BackgroundServer:
    """A real uvicorn server on a free local port, in a thread of the test process."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "BackgroundServer":
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start within 30 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: the same tests run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        urls: Iterator[str] = iter([sqlite_url(tmp_path)])
    else:
        urls = postgres_database()
    url = next(urls)
    database = Database(create_db_engine(url))
    migrate(database.engine)
    try:
        yield database
    finally:
        database.dispose()
        for _ in urls:  # finishes the generator: drops the PostgreSQL database
            pass


@pytest.fixture(scope="session")
def scheduler() -> Iterator[str]:
    """A real Dask LocalCluster: two worker processes with two threads each."""
    import logging

    from distributed import LocalCluster

    # its scheduler's threads log after the tests' captured streams are closed
    logging.getLogger("distributed").setLevel(logging.WARNING)

    with LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
    ) as cluster:
        yield str(cluster.scheduler_address)
