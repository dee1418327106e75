"""ReadsInFlight, the bound on snapshot reads sent without being waited for (pure asyncio logic:
the reads here are coroutines that wait on an event, standing in for REST's answer)."""

from __future__ import annotations

import asyncio

import pytest

from harness.errors import RestUnreachableError
from harness.runner import ReadsInFlight


class Reads:
    """Reads that end when `answer()` is called, counting how many travel at once."""

    def __init__(self) -> None:
        self.answered = asyncio.Event()
        self.travelling = self.most = 0

    async def read(self) -> None:
        self.travelling += 1
        self.most = max(self.most, self.travelling)
        try:
            await self.answered.wait()
        finally:
            self.travelling -= 1

    def answer(self) -> None:
        self.answered.set()


async def failing_read() -> None:
    raise RestUnreachableError("REST unreachable for 10 s")


def test_start_refuses_past_the_limit_and_never_waits() -> None:
    async def scenario() -> tuple[list[bool], int]:
        reads, in_flight = Reads(), ReadsInFlight(limit=3)
        started = [in_flight.start(reads.read) for _ in range(5)]
        await asyncio.sleep(0)
        most = reads.most
        reads.answer()
        await in_flight.drain()
        return started, most

    started, most = asyncio.run(scenario())
    assert started == [True, True, True, False, False]
    assert most == 3


def test_a_failed_read_started_from_a_timer_raises_at_drain() -> None:
    async def scenario() -> bool:
        in_flight = ReadsInFlight()
        loop = asyncio.get_running_loop()
        loop.call_soon(in_flight.start, failing_read)  # as Run.step_read's timer does
        await asyncio.sleep(0.01)
        reads = Reads()
        started_after = in_flight.start(reads.read)  # a callback must not raise
        reads.answer()
        with pytest.raises(RestUnreachableError):
            await in_flight.drain()
        return started_after

    assert asyncio.run(scenario())
