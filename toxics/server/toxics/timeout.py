"""timeout: swallows all data; closes the stream after `timeout_ms` without any (0 = never).

Every dropped chunk restarts the timer, so it is an idle timeout. Removing the toxic closes the
streams it was active on, as upstream does (their data is gone, so they cannot carry on).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from toxics.server.toxics.base import Chunk, Stub, Toxic


class _Timer:
    handle: Any = None


@dataclass(frozen=True)
class Timeout(Toxic):
    timeout_ms: int = 0

    type_name = "timeout"
    fields = {"timeout": "timeout_ms"}

    def new_state(self) -> _Timer:
        return _Timer()

    def start(self, stub: Stub) -> None:
        self.stop(stub)
        if self.timeout_ms > 0:
            stub.state.handle = stub.call_later(self.timeout_ms / 1000.0, stub.end_stream)

    def stop(self, stub: Stub) -> None:
        if stub.state.handle is not None:
            stub.state.handle.cancel()
            stub.state.handle = None

    def closes_on_removal(self) -> bool:
        return True

    async def pipe(self, chunk: Chunk, stub: Stub) -> AsyncIterator[Chunk]:
        self.start(stub)
        return
        yield chunk  # makes this an async generator that yields nothing: the data is dropped
