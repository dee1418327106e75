"""The correct strategy: one transaction per decision, committed before the answer."""

from __future__ import annotations

from booking_app import sql
from booking_app.model import BookingRequest, Decision
from booking_app.strategies.base import Strategy


class Atomic(Strategy):
    name = "atomic"
    summary = "intent insert ON CONFLICT + conditional slot update + status, in one committed transaction"

    async def book(self, request: BookingRequest) -> Decision:
        async with self.pool.acquire() as conn, conn.transaction():
            return await sql.decide_in_transaction(conn, request)
