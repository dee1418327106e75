"""slow_close: the close of the stream is held back `delay_ms`."""

from __future__ import annotations

from dataclasses import dataclass

from toxics.server.toxics.base import Stub, Toxic


@dataclass(frozen=True)
class SlowClose(Toxic):
    delay_ms: int = 0

    type_name = "slow_close"
    fields = {"delay": "delay_ms"}

    async def at_end(self, stub: Stub) -> None:
        await stub.sleep(self.delay_ms / 1000.0)
