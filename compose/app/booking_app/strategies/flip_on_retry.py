"""MUTANT flip_on_retry: a replayed loser takes the slot over.

A first request is decided correctly. But a replay of a REJECTED intent is treated as a fresh
attempt ("maybe the slot freed up") whose claim goes through the transfer path: it demotes whoever
holds the slot and confirms itself, the usual way people "fix" the one-confirmed-per-slot unique
violation. The database stays coherent at every instant, yet the winner flips: a client told 201
now holds a rejected booking.
"""

from __future__ import annotations

from booking_app import sql
from booking_app.model import BookingRequest, Decision, Outcome
from booking_app.strategies.base import Strategy


class FlipOnRetry(Strategy):
    name = "flip_on_retry"
    summary = "a replay of a rejected intent demotes the holder and confirms itself"

    async def book(self, request: BookingRequest) -> Decision:
        async with self.pool.acquire() as conn, conn.transaction():
            existing = await sql.find_by_intent(conn, request.intent_id)
            if existing is not None and existing.matches(request) and existing.status == "rejected":
                # The bug: re-evaluate the replayed loser and hand it the slot.
                await sql.demote_confirmed(conn, request.slot_id)
                await sql.mark_slot_booked(conn, request.slot_id)
                booking = await sql.set_status(conn, existing.id, "confirmed")
                return Decision(Outcome.REPLAYED, booking)
            return await sql.decide_in_transaction(conn, request)
