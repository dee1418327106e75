"""latency: each chunk leaves `latency_ms` +/- `jitter_ms` after it arrived."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from toxics.server.toxics.base import Chunk, Stub, Toxic


@dataclass(frozen=True)
class Latency(Toxic):
    latency_ms: int = 0
    jitter_ms: int = 0

    type_name = "latency"
    fields = {"latency": "latency_ms", "jitter": "jitter_ms"}

    def delay_s(self, stub: Stub) -> float:
        delay = self.latency_ms
        if self.jitter_ms > 0:
            delay += stub.rng.randrange(-self.jitter_ms, self.jitter_ms)
        return delay / 1000.0

    async def pipe(self, chunk: Chunk, stub: Stub) -> AsyncIterator[Chunk]:
        # Counted from the chunk's arrival, so chunks in flight overlap instead of queueing up.
        wait = chunk.timestamp + self.delay_s(stub) - stub.now()
        # Interrupted (toxic changed or removed): let the chunk go now; never drop it.
        await stub.sleep(wait)
        chunk.timestamp += max(wait, 0.0)
        yield chunk
