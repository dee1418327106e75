"""The strategy interface: how POST /bookings turns a request into a decision in the database."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import ClassVar

import asyncpg

from booking_app.model import BookingRequest, Decision
from booking_app.safety_nets import SafetyNet


class Strategy(ABC):
    """One way to book. `atomic` is correct; every other one is a deliberate, realistic bug.

    Class attributes describe the strategy for the registry and the start-up code:
    `safety_nets_off` lists the schema constraints that would stop the bug before it reaches the
    database (dropped at start by booking_app.safety_nets); `default_window_ms` is the width of the
    bug's window (0: the bug needs none), overridable with MUTANT_WINDOW_MS.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    safety_nets_off: ClassVar[frozenset[SafetyNet]] = frozenset()
    default_window_ms: ClassVar[int] = 0

    def __init__(self, pool: asyncpg.Pool, window_ms: int | None = None) -> None:
        self.pool = pool
        self.window_ms = self.default_window_ms if window_ms is None else window_ms

    async def slow_step(self) -> None:
        """The realistic slow step a mutant's bug window stands for (a remote call, a flush)."""
        if self.window_ms > 0:
            await asyncio.sleep(self.window_ms / 1000)

    @abstractmethod
    async def book(self, request: BookingRequest) -> Decision:
        """Decide the request; raise booking_app.errors.ApiError for a non-booking answer."""
