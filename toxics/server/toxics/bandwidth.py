"""bandwidth: at most `rate_kbps` thousand bytes a second; rate 0 stalls the stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from toxics.server.toxics.base import Chunk, Stub, Toxic

_SLICE_S = 0.1


class _Clock:
    # When the link's line is next free: sleeping to an absolute time keeps the average rate
    # exact even though every sleep overshoots a little.
    free_at = 0.0


@dataclass(frozen=True)
class Bandwidth(Toxic):
    rate_kbps: int = 0

    type_name = "bandwidth"
    fields = {"rate": "rate_kbps"}

    def new_state(self) -> _Clock:
        return _Clock()

    async def pipe(self, chunk: Chunk, stub: Stub) -> AsyncIterator[Chunk]:
        if self.rate_kbps == 0:
            # Stalls until the toxic changes; then the data goes through unharmed.
            while not await stub.sleep(3600.0):
                pass
            yield chunk
            return
        bytes_per_s = self.rate_kbps * 1000
        # Big chunks go out in 100 ms slices so a slow rate still trickles instead of bursting.
        step = max(1, int(bytes_per_s * _SLICE_S))
        data = chunk.data
        clock = stub.state
        while data:
            piece, data = data[:step], data[step:]
            clock.free_at = max(clock.free_at, stub.now()) + len(piece) / bytes_per_s
            if await stub.sleep(clock.free_at - stub.now()):
                clock.free_at = stub.now()
                yield Chunk(piece + data, chunk.timestamp)
                return
            yield Chunk(piece, chunk.timestamp)
