"""MUTANT no_idempotency: every request is a new booking, replays included.

The intent id is stored but never looked up (the "we'll dedupe later" path): the slot claim itself is
atomic, so there is never a second confirmed booking, but a replay of the winner adds a rejected
row for the same intent and answers 409 to the customer who holds the slot.
"""

from __future__ import annotations

from booking_app import sql
from booking_app.model import BookingRequest, Decision, Outcome
from booking_app.safety_nets import SafetyNet
from booking_app.strategies.base import Strategy


class NoIdempotency(Strategy):
    name = "no_idempotency"
    summary = "ignores intent ids: each request (replays too) inserts a new booking row"
    # The unique constraint on intent_id would refuse the second row of an intent.
    safety_nets_off = frozenset({SafetyNet.INTENT_UNIQUE})

    async def book(self, request: BookingRequest) -> Decision:
        async with self.pool.acquire() as conn, conn.transaction():
            await sql.require_customer(conn, request.customer_id)
            won = await sql.claim_slot(conn, request.slot_id)
            booking = await sql.insert_booking(conn, request, "confirmed" if won else "rejected", idempotent=False)
            assert booking is not None
            return Decision(Outcome.CREATED if won else Outcome.REJECTED, booking)
