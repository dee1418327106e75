"""MUTANT racy: check-then-act. Reads "free", then books on the strength of that read.

Two requests that both read the slot free before either writes both confirm: a double booking.
The write itself (booking row and slot state) is one transaction, so the ONLY bug is the race
between check and act. Its window is just its own database round trips between the read and the
write, as in a real service; MUTANT_WINDOW_MS widens it with a slow step (an availability or
pricing call) for experiments, never by default.
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
    default_window_ms = 0

    async def book(self, request: BookingRequest) -> Decision:
        async with self.pool.acquire() as conn:
            if (earlier := await sql.earlier_decision(conn, request)) is not None:
                return earlier
            free = await sql.slot_is_free(conn, request.slot_id)  # the check ...
            await self.slow_step()
            status = "confirmed" if free else "rejected"
            async with conn.transaction():  # ... then the act, on a stale read
                booking = await sql.insert_booking(conn, request, status)
                if booking is not None and free:
                    await sql.mark_slot_booked(conn, request.slot_id)
            if booking is None:  # the same intent raced us: answer its decision
                return await sql.raced_decision(conn, request)
            return Decision(Outcome.CREATED if free else Outcome.REJECTED, booking)
