"""Run the ASGI app under uvicorn as N processes sharing one listening socket."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from booking_app.config import Settings


class NoDelayH11Protocol(H11Protocol):
    """h11 with TCP_NODELAY on every connection.

    With workers > 1 uvicorn binds the shared socket itself as socket(AF_INET) (proto 0), and asyncio
    only sets TCP_NODELAY on sockets whose proto is IPPROTO_TCP. Without it, Nagle plus the client's
    delayed ACK adds ~40 ms to every keep-alive answer written in two sends (headers, body).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def run(settings: Settings) -> None:
    uvicorn.run(
        "booking_app.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        # Two or more processes share the listening socket, as in production behind a proxy.
        workers=settings.workers if settings.workers > 1 else None,
        http=NoDelayH11Protocol,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
