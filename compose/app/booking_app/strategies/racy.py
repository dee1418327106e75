"""MUTANT racy: check-then-act. Reads "free", then books in separate statements.

Two requests that both read the slot free before either writes both confirm: a double booking.
The window is the availability/pricing check a real service does between its read and its write.
"""

from __future__ import annotations

from booking_app import sql
from booking_app.model import BookingRequest, Decision, Outcome
from booking_app.safety_nets import SafetyNet
from booking_app.strategies.base import Strategy


class Racy(Strategy):
    name = "racy"
    summary = "check-then-act: reads the slot free, then inserts confirmed and sets booked separately"
    # The partial unique index would turn the second confirmed insert into an error.
    safety_nets_off = frozenset({SafetyNet.ONE_CONFIRMED_PER_SLOT})
    default_window_ms = 50

    async def book(self, request: BookingRequest) -> Decision:
        async with self.pool.acquire() as conn:
            existing = await sql.find_by_intent(conn, request.intent_id)
            if existing is not None:
                return sql.replay(existing, request)
            free = await sql.slot_is_free(conn, request.slot_id)  # the check ...
            await self.slow_step()
            status = "confirmed" if free else "rejected"
            booking = await sql.insert_booking(conn, request, status)  # ... then the act
            if booking is None:  # the same intent raced us: answer its decision
                existing = await sql.find_by_intent(conn, request.intent_id)
                assert existing is not None
                return sql.replay(existing, request)
            if free:
                await sql.mark_slot_booked(conn, request.slot_id)
                return Decision(Outcome.CREATED, booking)
            return Decision(Outcome.REJECTED, booking)
