"""MUTANT split_tx: the slot update and the booking insert are two transactions.

The slot is claimed (and committed) first; then comes a slow step (the vendor-calendar call a real
service makes before writing the booking); then the booking is inserted. A crash in between leaves
the slot booked with no booking, for ever: every later request is rejected.
"""

from __future__ import annotations

import asyncpg

from booking_app import sql
from booking_app.model import Booking, BookingRequest, Decision, Outcome
from booking_app.strategies.base import Strategy


class SplitTx(Strategy):
    name = "split_tx"
    summary = "claims the slot in one transaction and inserts the booking in a second one"
    default_window_ms = 50

    async def book(self, request: BookingRequest) -> Decision:
        async with self.pool.acquire() as conn:
            if (earlier := await sql.earlier_decision(conn, request)) is not None:
                return earlier
            await sql.require_customer(conn, request.customer_id)
            if not await sql.claim_slot(conn, request.slot_id):  # unknown slot: the insert below 404s
                booking = await sql.insert_booking(conn, request, "rejected")
                return await self._answer(conn, request, booking, Outcome.REJECTED)
            await self.slow_step()  # transaction 1 is committed: the slot is booked, no booking yet
            booking = await sql.insert_booking(conn, request, "confirmed")
            return await self._answer(conn, request, booking, Outcome.CREATED)

    @staticmethod
    async def _answer(
        conn: asyncpg.Connection, request: BookingRequest, booking: Booking | None, outcome: Outcome
    ) -> Decision:
        if booking is None:  # the same intent raced us: answer its decision
            return await sql.raced_decision(conn, request)
        return Decision(outcome, booking)
