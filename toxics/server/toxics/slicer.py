"""slicer: cuts each chunk into pieces of `average_size` +/- `size_variation` bytes, `delay_us` apart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from toxics.server.toxics.base import Chunk, Stub, Toxic


@dataclass(frozen=True)
class Slicer(Toxic):
    average_size: int = 1
    size_variation: int = 0
    delay_us: int = 0

    type_name = "slicer"
    fields = {"average_size": "average_size", "size_variation": "size_variation", "delay": "delay_us"}

    def sizes(self, total: int, stub: Stub) -> Iterator[int]:
        # Variation larger than the average would allow empty pieces: keep every piece >= 1 byte.
        low = max(1, self.average_size - self.size_variation)
        high = max(low, self.average_size + self.size_variation)
        while total > 0:
            size = min(total, stub.rng.randint(low, high))
            total -= size
            yield size

    async def pipe(self, chunk: Chunk, stub: Stub) -> AsyncIterator[Chunk]:
        data = memoryview(chunk.data)
        offset = 0
        for size in self.sizes(len(data), stub):
            yield Chunk(bytes(data[offset:offset + size]), chunk.timestamp)
            offset += size
            if await stub.sleep(self.delay_us / 1_000_000.0):
                if offset < len(data):
                    yield Chunk(bytes(data[offset:]), chunk.timestamp)
                return
