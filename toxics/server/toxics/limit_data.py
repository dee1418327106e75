"""limit_data: lets exactly `bytes` bytes through on the stream, then closes it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from toxics.server.toxics.base import Chunk, EndStream, Stub, Toxic


class _Count:
    sent = 0


@dataclass(frozen=True)
class LimitData(Toxic):
    bytes: int = 0

    type_name = "limit_data"
    fields = {"bytes": "bytes"}

    def new_state(self) -> _Count:
        # Kept across updates: raising the limit lets the connection carry on from where it was.
        return _Count()

    async def pipe(self, chunk: Chunk, stub: Stub) -> AsyncIterator[Chunk]:
        remaining = max(0, self.bytes - stub.state.sent)
        data = chunk.data[:remaining]
        if data:
            stub.state.sent += len(data)
            yield Chunk(data, chunk.timestamp)
        if stub.state.sent >= self.bytes:
            raise EndStream
