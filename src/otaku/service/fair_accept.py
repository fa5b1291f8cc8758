"""Forked workers share out the connections of one listening socket.

With uvicorn's own accept loop, asyncio takes every pending connection in one wake-up, and
the worker that wakes first is usually the one that ran last: one worker took all 8 of a
client's connections in 3 tries of 6 (7 of 8 in two more), and the other sat idle while
requests queued behind it (the HTTP benchmark's throughput halved on such rounds). Here each
worker accepts one connection at a time and, before the next, waits a moment that grows with
the connections it already holds, so the worker holding fewer takes the next one; a worker
alone still takes every connection, just not all in one go.
"""

import asyncio
import logging
import socket
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

PAUSE_PER_CONNECTION = 0.005  # seconds a worker waits per connection it holds
LONGEST_PAUSE = 0.05


def pause_before_next_accept(open_connections: int) -> float:
    """How long a worker holding ``open_connections`` waits before accepting again."""
    return min(LONGEST_PAUSE, PAUSE_PER_CONNECTION * open_connections)


class FairAcceptServer(uvicorn.Server):
    """uvicorn serving a listening socket shared with other worker processes, accepting
    with :func:`pause_before_next_accept` instead of asyncio's take-all accept loop."""

    _accepting: "asyncio.Task[None] | None" = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is not None and len(sockets) != 1:
            raise ValueError(f"FairAcceptServer serves one listening socket, got {len(sockets)}")
        await super().startup(sockets=[])  # the app's lifespan, no listener of uvicorn's
        if self.should_exit or not sockets:
            return
        self._accepting = asyncio.get_running_loop().create_task(self._accept(sockets[0]))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
        await super().shutdown(sockets=sockets)

    def _protocol(self) -> Any:
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=asyncio.get_running_loop(),
        )

    async def _accept(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        listening.setblocking(False)
        while True:
            try:
                connection, _ = await loop.sock_accept(listening)
            except OSError as error:  # e.g. too many open files: back off, keep serving
                log.warning("accept failed: %s", error)
                await asyncio.sleep(LONGEST_PAUSE)
                continue
            try:
                await loop.connect_accepted_socket(self._protocol, connection)
            except OSError as error:  # the client went away between accept and setup
                log.info("connection dropped before it was set up: %s", error)
                connection.close()
            await asyncio.sleep(pause_before_next_accept(len(self.server_state.connections)))
