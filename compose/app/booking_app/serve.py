"""Run the ASGI app under uvicorn as N processes sharing one listening socket: a pre-fork server.

The master imports everything and binds the socket once, then forks the workers (as gunicorn
does), so a start or a crash-restart costs one interpreter start, not one per worker (uvicorn's
own `workers=N` spawns each worker as a fresh interpreter that imports everything again). Each
worker makes its own event loop and database pool after the fork: nothing that holds a socket or
a thread is created before it. A worker that dies is forked again; SIGTERM, SIGINT or SIGHUP to
the master stops every worker (each finishes its requests, as uvicorn does) and then the master.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from types import FrameType

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

import booking_app.app  # noqa: F401 - imported once here, before the fork, for every worker
from booking_app.config import Settings

log = logging.getLogger("booking_app")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class NoDelayH11Protocol(H11Protocol):
    """h11 with TCP_NODELAY on every connection.

    The shared socket is bound by uvicorn's Config.bind_socket as socket(AF_INET) (proto 0), and
    asyncio only sets TCP_NODELAY on sockets whose proto is IPPROTO_TCP. Without it, Nagle plus the
    client's delayed ACK adds ~40 ms to every keep-alive answer written in two sends (headers, body).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        "booking_app.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        http=NoDelayH11Protocol,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )


def run(settings: Settings) -> None:
    config = uvicorn_config(settings)
    if settings.workers == 1:
        uvicorn.Server(config).run()
        return
    # Two or more processes share the listening socket, as in production behind a proxy.
    PreForkMaster(config, config.bind_socket(), settings.workers).run()


class PreForkMaster:
    """Forks `workers` uvicorn servers on one listening socket and keeps that many running."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, workers: int) -> None:
        self.config = config
        self.sock = sock
        self.count = workers
        self.workers: set[int] = set()
        self.stopping = False

    def run(self) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, self._stop)
        for _ in range(self.count):
            self._fork()
        while self.workers:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            self.workers.discard(pid)
            if not self.stopping:
                log.warning("worker %d ended (status %d); forking another", pid, status)
                self._fork()
        self.sock.close()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        # Forwarded, since a container's init hands the signal to this process alone; a worker
        # that already got it from its process group is not hurried by a second SIGTERM
        # (uvicorn forces an exit only on a repeated SIGINT).
        self.stopping = True
        for pid in list(self.workers):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                self.workers.discard(pid)

    def _fork(self) -> None:
        pid = os.fork()
        if pid:
            self.workers.add(pid)
            return
        code = 1
        try:
            for each in STOP_SIGNALS:
                signal.signal(each, signal.SIG_DFL)  # uvicorn installs its own while it serves
            uvicorn.Server(self.config).run(sockets=[self.sock])
            code = 0
        except BaseException:  # noqa: BLE001 - logged; a forked child must never return into the master's loop
            log.exception("worker %d failed", os.getpid())
        finally:
            os._exit(code)
