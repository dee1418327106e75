"""MUTANT in_memory_lock: the slot guard lives in process memory, not in the database.

An asyncio lock and a "taken" map make the decision correct inside one process. With two or more
processes behind the port (or after a restart, which empties the map) each process happily
confirms its own first request: a double booking.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from booking_app import sql
from booking_app.model import BookingRequest, Decision, Outcome
from booking_app.safety_nets import SafetyNet
from booking_app.strategies.base import Strategy


class InMemoryLock(Strategy):
    name = "in_memory_lock"
    summary = "a process-local asyncio lock and taken-set guard the slot"
    # The partial unique index would turn the second process's confirmed insert into an error.
    safety_nets_off = frozenset({SafetyNet.ONE_CONFIRMED_PER_SLOT})

    def __init__(self, pool: asyncpg.Pool, window_ms: int | None = None) -> None:
        super().__init__(pool, window_ms)
        self._lock = asyncio.Lock()  # per process: that is the bug
        self._taken: dict[uuid.UUID, uuid.UUID] = {}

    async def book(self, request: BookingRequest) -> Decision:
        async with self.pool.acquire() as conn:
            existing = await sql.find_by_intent(conn, request.intent_id)
            if existing is not None:
                return sql.replay(existing, request)
            async with self._lock:
                taken = request.slot_id in self._taken
                async with conn.transaction():
                    await sql.slot_is_free(conn, request.slot_id)  # 404 for an unknown slot only
                    booking = await sql.insert_booking(conn, request, "rejected" if taken else "confirmed")
                    if booking is None:
                        existing = await sql.find_by_intent(conn, request.intent_id)
                        assert existing is not None
                        return sql.replay(existing, request)
                    if taken:
                        return Decision(Outcome.REJECTED, booking)
                    await sql.mark_slot_booked(conn, request.slot_id)
                self._taken[request.slot_id] = request.intent_id
                return Decision(Outcome.CREATED, booking)
