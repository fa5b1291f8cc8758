"""`otaku serve --workers N`: the model is loaded once, then N worker processes are forked
from the loaded process and serve it on one shared listening socket (sharing out its
connections: :mod:`otaku.service.fair_accept`). The model's arrays are
shared copy-on-write (nothing writes to them), so an extra worker costs its own request
state, not another copy of the model.

Impressions go down a pipe to one writer process the parent forks beside the workers
(:mod:`otaku.experiments.writer_process`): no writer thread competes with requests.

The parent supervises: a worker (or the writer) that dies is replaced by a fresh fork;
when the registry's champion changes, the parent loads it, forks a new generation and lets
the old one finish its requests (uvicorn's graceful shutdown), so a swap never shows half a
model and never drops the port.
"""

import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

from otaku.config import Settings
from otaku.experiments.writer_process import ImpressionPipe
from otaku.service.model import ChampionWatcher, ModelHolder, ServedModel, load_model_to_serve

log = logging.getLogger(__name__)

STOP_SECONDS = 30.0  # a worker finishing its requests on shutdown gets this long
PR_SET_PDEATHSIG, PR_SET_NAME = 1, 15  # linux/prctl.h
WORKER_NAME, WRITER_NAME = "otaku-worker", "otaku-writer"  # what ps and /proc/PID/comm show


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound and listening on ``host:port``, inherited by every worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def share_loaded_objects() -> None:
    """Keep every object made so far out of later garbage collections, so the collector
    never writes to (and thereby copies) the pages the workers share with the parent."""
    gc.collect()
    gc.freeze()


def fork_worker(
    settings: Settings,
    sock: socket.socket,
    served: ServedModel,
    impression_pipe: ImpressionPipe | None = None,
) -> int:
    """Fork one worker process serving ``served`` on ``sock``; returns its pid."""

    def work() -> None:
        if impression_pipe is not None:
            impression_pipe.close_reading_end()
        _run_worker(settings, sock, served, impression_pipe)

    return _fork(WORKER_NAME, work)


def fork_impression_writer(
    settings: Settings, impression_pipe: ImpressionPipe, sock: socket.socket | None = None
) -> int:
    """Fork the process writing the workers' impressions (it closes its copy of the
    listening ``sock``: it serves nobody); returns its pid."""
    from otaku.experiments.writer_process import run_writer_process
    from otaku.storage.database import database_url

    def work() -> None:
        if sock is not None:
            sock.close()
        run_writer_process(
            impression_pipe, database_url(settings), capacity=settings.impression_queue
        )

    # SIGTERM waits (blocked) until the writer's handler is in place: a SIGTERM in between
    # would end it without writing what the pipe holds
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        return _fork(WRITER_NAME, work)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _fork(name: str, work: Callable[[], None]) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        # the parent's handlers first: a SIGTERM caught by the inherited Supervisor._stop
        # would set a flag nobody reads and leave this process running
        for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(handled, signal.SIG_DFL)
        _die_with(parent, name)
        work()
    except BaseException:  # a child must never return into the parent's code
        log.exception("%s %d failed", name, os.getpid())
        code = 1
    finally:
        os._exit(code)


def _die_with(parent: int, name: str) -> None:
    """Have the kernel stop this child when its parent dies, even by SIGKILL (else orphaned
    workers would keep the port and serve a model nobody supervises); and name it."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        libc.prctl(PR_SET_NAME, name.encode())
    except (OSError, AttributeError):  # not Linux: the parent's SIGTERM still stops workers
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(0)


def _run_worker(
    settings: Settings,
    sock: socket.socket,
    served: ServedModel,
    impression_pipe: ImpressionPipe | None,
) -> None:
    import uvicorn

    from otaku.service.app import create_app
    from otaku.service.fair_accept import FairAcceptServer

    app = create_app(
        settings, served=served, supervisor=os.getppid(), impression_pipe=impression_pipe
    )
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    FairAcceptServer(config).run(sockets=[sock])  # with its own graceful signal handlers


class Supervisor:
    """Keeps ``workers`` forked worker processes serving the current model."""

    def __init__(
        self, settings: Settings, sock: socket.socket, served: ServedModel, workers: int
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.settings = settings
        self.sock = sock
        self.served = served
        self.workers = workers
        self.current: set[int] = set()  # pids serving the current model
        self.retiring: set[int] = set()  # pids finishing requests of a replaced model
        self.stopping = False
        self.reload_asked = False
        self.impression_pipe = ImpressionPipe() if settings.impressions else None
        self.writer: int | None = None  # the impression writer's pid

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop the workers gracefully (SIGHUP, which
        POST /admin/reload sends: look for a new champion now)."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._ask_reload)
        share_loaded_objects()
        self._start_writer()
        self._fill()
        next_poll = time.monotonic() + self.settings.reload_poll_seconds
        while not self.stopping:
            time.sleep(0.2)
            self._reap()
            if not self.stopping:
                self._fill()
            due = self._polls() and time.monotonic() >= next_poll
            if due or self.reload_asked:
                self.reload_asked = False
                self._swap_if_new_champion()
                next_poll = time.monotonic() + self.settings.reload_poll_seconds
        self._shutdown()

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _ask_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload_asked = True

    def _fill(self) -> None:
        while len(self.current) < self.workers:
            worker = fork_worker(self.settings, self.sock, self.served, self.impression_pipe)
            self.current.add(worker)

    def _start_writer(self) -> None:
        if self.impression_pipe is not None:
            self.writer = fork_impression_writer(self.settings, self.impression_pipe, self.sock)

    def _reap(self) -> None:
        if self.writer is not None and os.waitpid(self.writer, os.WNOHANG)[0]:
            log.warning("impression writer %d ended: replacing it", self.writer)
            self._start_writer()
        for pid in list(self.current | self.retiring):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if pid in self.current and not self.stopping:
                    log.warning("server worker %d ended (status %d): replacing it", pid, status)
                self.current.discard(pid)
                self.retiring.discard(pid)

    def _polls(self) -> bool:
        return self.settings.bundle_path is None and self.settings.reload_poll_seconds > 0

    def _swap_if_new_champion(self) -> None:
        from otaku.storage.registry import champion_version

        if self.settings.bundle_path is not None:
            return  # a fixed bundle: there is no champion to follow
        try:
            version = champion_version(self.settings)
            if version is None or version == self.served.registry_version:
                return
            loaded = load_model_to_serve(self.settings, version)
        except Exception:  # the registry is down or the bundle is bad: keep serving
            log.exception("could not load the new champion; the workers keep the old one")
            return
        log.info("champion %s loaded: forking its workers", version)
        self.served = loaded
        share_loaded_objects()
        old, self.current = self.current, set()
        self._fill()
        for pid in old:
            os.kill(pid, signal.SIGTERM)
        self.retiring |= old

    def _shutdown(self) -> None:
        pids = self.current | self.retiring
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while pids and time.monotonic() < deadline:
            pids = {pid for pid in pids if os.waitpid(pid, os.WNOHANG) == (0, 0)}
            time.sleep(0.1)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self._stop_writer()

    def _stop_writer(self) -> None:
        """After the workers: the writer writes what they sent, then ends."""
        if self.writer is None:
            return
        os.kill(self.writer, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while os.waitpid(self.writer, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.writer, signal.SIGKILL)
                os.waitpid(self.writer, 0)
                break
            time.sleep(0.05)
        self.writer = None


def serve_forked(settings: Settings, host: str, port: int, workers: int) -> None:
    """Load the configured model once and serve it from ``workers`` forked processes."""
    served = load_model_to_serve(settings)  # before listening: nobody waits on a silent port
    sock = listening_socket(host, port)
    log.info("model %s loaded; forking %d server workers", served.engine.version, workers)
    Supervisor(settings, sock, served, workers).run()


class SupervisedWatcher(ChampionWatcher):
    """A forked worker's champion watcher: the supervisor watches the registry and replaces
    the workers, so a reload asked of one worker (POST /admin/reload) is passed to it and
    answers with the champion the workers will serve within seconds."""

    def __init__(self, holder: ModelHolder, settings: Settings, supervisor: int) -> None:
        super().__init__(holder, settings, on_swap=lambda _served: None)
        self.supervisor = supervisor

    def _take(self, version: str) -> str | None:
        os.kill(self.supervisor, signal.SIGHUP)
        return version

    def start(self) -> None:
        """Nothing to poll here: the supervisor polls."""
