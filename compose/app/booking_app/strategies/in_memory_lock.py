"""MUTANT in_memory_lock: the slot guard lives in process memory, not in the database.

A cache of taken slots, guarded by an asyncio lock, answers "taken" fast without a database round
trip, and a slot not in the cache is booked straight away. Correct inside one process; with two or
more processes behind the port (or after a restart, which empties the cache) a process that has
not seen the winner confirms its own request: a double booking. Fast-path rejections write no row,
so every retry of a turned-away intent is another throw of that dice.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from booking_app import sql
from booking_app.model import Booking, BookingRequest, Decision, Outcome
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
            if (earlier := await sql.earlier_decision(conn, request)) is not None:
                return earlier
            async with self._lock:
                if request.slot_id in self._taken:  # the fast path: no database round trip
                    await sql.slot_is_free(conn, request.slot_id)  # still 404 for an unknown slot
                    turned_away = Booking(uuid.uuid4(), request.intent_id, request.slot_id,
                                          request.customer_id, "rejected")
                    return Decision(Outcome.REJECTED, turned_away)
                async with conn.transaction():
                    await sql.slot_is_free(conn, request.slot_id)  # 404 for an unknown slot only
                    booking = await sql.insert_booking(conn, request, "confirmed")
                    if booking is None:
                        return await sql.raced_decision(conn, request)
                    await sql.mark_slot_booked(conn, request.slot_id)
                self._taken[request.slot_id] = request.intent_id
                return Decision(Outcome.CREATED, booking)
