"""Training's heavy stages on a Dask cluster (``--cluster tcp://HOST:8786`` or
``OTAKU_DASK_SCHEDULER``): the connection, the checks LightGBM's Dask training needs, and
the pieces every distributed stage shares (results of tasks as dask arrays, LightGBM's
pinned network ports).

Nothing here is home-made distribution: tasks are ``dask.distributed`` futures, training is
``lightgbm.dask``. Without a cluster every stage runs in-process as before.
"""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client, Future

log = logging.getLogger(__name__)

MIN_WORKER_THREADS = 2  # lightgbm.dask trains inside a task; the worker needs another thread


class ClusterError(RuntimeError):
    """The Dask cluster cannot be used (the message says why and what to do)."""


@dataclass(frozen=True)
class Cluster:
    """A connected Dask client and the first TCP port LightGBM's workers listen on (worker
    k on a host listens on ``lightgbm_port + k``: open those ports between workers)."""

    client: "Client"
    lightgbm_port: int = 12400

    @property
    def address(self) -> str:
        """The scheduler's address."""
        return str(self.client.scheduler_info().get("address", ""))

    def describe(self) -> dict[str, Any]:
        """What a bundle records about the cluster that trained it."""
        threads = self.client.nthreads()
        return {
            "scheduler": self.address,
            "workers": len(threads),
            "threads_per_worker": sorted(threads.values()),
            "lightgbm_port": self.lightgbm_port,
        }


def check_workers(threads: dict[str, int]) -> None:
    """Raise :class:`ClusterError` unless the cluster has workers with ≥ 2 threads each."""
    if not threads:
        raise ClusterError("the Dask cluster has no workers: start some (dask worker ADDRESS)")
    short = sorted(worker for worker, count in threads.items() if count < MIN_WORKER_THREADS)
    if short:
        raise ClusterError(
            f"Dask worker(s) {short} have fewer than {MIN_WORKER_THREADS} threads; LightGBM's "
            f"Dask training needs ≥ {MIN_WORKER_THREADS} per worker (dask worker --nthreads 2)"
        )


@contextmanager
def connected(address: str, lightgbm_port: int = 12400, timeout: float = 10.0) -> Iterator[Cluster]:
    """A :class:`Cluster` connected to the scheduler at ``address`` (giving up after
    ``timeout`` seconds; three times that for a first worker), closed on exit."""
    from distributed import Client

    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {error}") from error
    try:
        client.wait_for_workers(1, timeout=3 * timeout)
        check_workers(client.nthreads())
        log.info("training on the Dask cluster at %s: %s", address, client.nthreads())
        yield Cluster(client, lightgbm_port)
    except TimeoutError as error:
        raise ClusterError(f"the Dask scheduler at {address} has no workers") from error
    finally:
        client.close()


def stacked(
    parts: Sequence["Future"], index: int, widths: Sequence[tuple[int, ...]], dtype: Any
) -> "da.Array":
    """The ``index``-th array of each task result (a tuple), stacked into one dask array
    whose chunks are the tasks' results: the data stays on the workers that made it."""
    import dask
    import dask.array as da

    pieces = [
        da.from_delayed(dask.delayed(itemgetter(index))(part), shape=shape, dtype=dtype)
        for part, shape in zip(parts, widths, strict=True)
    ]
    return da.concatenate(pieces, axis=0)


def result_shapes(client: "Client", parts: Sequence["Future"]) -> list[tuple[tuple[int, ...], ...]]:
    """The shape of every array of each task result (a tuple of arrays): one small probe
    per task, and only the shapes travel."""
    probes = [client.submit(_shapes_of, part, pure=False) for part in parts]
    return list(client.gather(probes))


def _shapes_of(result: tuple[np.ndarray, ...]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(np.shape(array)) for array in result)


PORT_RANGE = 100  # LightGBM listens on ports first .. first + 99: open that range


def lightgbm_machines(client: "Client", parts: Sequence["Future"], first_port: int) -> str:
    """LightGBM's ``machines`` for the workers that hold the training ``parts``: each worker
    gets a port of the pinned range ``first_port .. first_port + 99`` that is free on its
    host (a port a training just used stays unusable for a minute: LightGBM's listener does
    not reuse addresses), distinct from the other workers' of that host."""
    from distributed import wait

    futures = list(parts)
    wait(futures)  # a part being computed has no holder yet
    holders: set[str] = set()
    for held in client.who_has(futures).values():
        if held:  # lightgbm.dask trains each part on the first worker that holds it
            holders.add(next(iter(held)))
    by_host: dict[str, list[str]] = {}
    for worker in sorted(holders):
        by_host.setdefault(urlparse(worker).hostname or "127.0.0.1", []).append(worker)
    machines = []
    for host, workers in by_host.items():
        probe = client.submit(
            free_ports, first_port, PORT_RANGE, len(workers), workers=[workers[0]], pure=False
        )
        ports = probe.result()
        if len(ports) < len(workers):
            last = first_port + PORT_RANGE - 1
            raise ClusterError(
                f"{host} has {len(ports)} free port(s) in {first_port}..{last} for "
                f"{len(workers)} LightGBM worker(s): free some or set OTAKU_DASK_LIGHTGBM_PORT"
            )
        machines += [f"{host}:{port}" for port in ports]
    return ",".join(machines)


def free_ports(first: int, span: int, count: int) -> list[int]:
    """Runs on a worker: the first ``count`` ports of ``first .. first + span - 1`` that a
    listener can bind on this host now."""
    import socket

    found: list[int] = []
    for port in range(first, first + span):
        with socket.socket() as probe:
            try:
                probe.bind(("", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            break
    return found


def dask_params(params: dict[str, Any]) -> dict[str, Any]:
    """Local LightGBM parameters for ``lightgbm.dask``: threads follow each worker's
    ``nthreads``, and there is no validation set to evaluate (rounds are chosen locally)."""
    return {key: value for key, value in params.items() if key not in _LOCAL_ONLY}


_LOCAL_ONLY = frozenset({"num_threads", "eval_at", "metric"})
