"""reset_peer: on the first data (or end of stream), waits `timeout_ms`, then closes with an RST.

The RST comes from SO_LINGER 0, which is set on both sockets when a connection opens while the
toxic exists. Added to a connection already open, the same close is an ordinary FIN, as upstream.
The data that triggered it is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from toxics.server.toxics.base import Chunk, EndStream, Stub, Toxic


@dataclass(frozen=True)
class ResetPeer(Toxic):
    timeout_ms: int = 0

    type_name = "reset_peer"
    fields = {"timeout": "timeout_ms"}
    sets_linger = True

    async def pipe(self, chunk: Chunk, stub: Stub) -> AsyncIterator[Chunk]:
        # Upstream's wait here ignores interrupts: a reset once triggered always happens.
        await asyncio.sleep(self.timeout_ms / 1000.0)
        raise EndStream
        yield chunk  # an async generator that yields nothing

    async def at_end(self, stub: Stub) -> None:
        await asyncio.sleep(self.timeout_ms / 1000.0)
