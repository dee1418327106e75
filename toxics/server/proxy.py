"""A proxy: a listener, its upstream address, its toxics and its open connections."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from toxics.server import errors
from toxics.server.address import AddressError, bind, bound_address, port_number, split_host_port
from toxics.server.link import Connection
from toxics.server.toxic_collection import ToxicCollection

log = logging.getLogger("toxiproxy")


class Proxy:
    def __init__(self, name: str, listen: str, upstream: str, rng: random.Random) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.rng = rng
        self.toxics = ToxicCollection()
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [entry.to_json() for entry in self.toxics.entries()],
        }

    def log(self, message: str) -> None:
        log.info("proxy %s: %s", self.name, message)

    def upstream_address(self) -> tuple[str, int]:
        host, port = split_host_port(self.upstream)
        return host, port_number(port)

    async def start(self) -> None:
        """Listen (a no-op when already listening); a bind error is a 500, as upstream."""
        if self.enabled:
            return
        try:
            sock = bind(self.listen)
        except AddressError as exc:
            raise errors.internal(f"listen tcp: {exc}") from None
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise errors.internal(f"listen tcp {self.listen}: bind: {reason}") from None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self).client, sock=sock)
        self.listen = bound_address(sock)
        self.enabled = True
        self.log(f"started on {self.listen}, upstream {self.upstream}")

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        if not self.enabled:
            return
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.connections):
            conn.abort()
        self.log("terminated")

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Upstream's merge: a new address drops everything, then `enabled` decides."""
        if listen != self.listen or upstream != self.upstream:
            self.stop()
            self.listen = listen
            self.upstream = upstream
        if enabled and not self.enabled:
            await self.start()
        elif not enabled:
            self.stop()
