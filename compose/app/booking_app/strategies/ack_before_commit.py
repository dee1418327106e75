"""MUTANT ack_before_commit: answers 201 before its transaction is committed.

The decision is the correct one, made in one transaction, but the commit is deferred to after the
answer ("group commit": a background task commits every window_ms to save fsyncs). A crash in that
window rolls the transaction back: the client holds a 201 for a booking that never existed.
"""

from __future__ import annotations

import logging

from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from booking_app import sql
from booking_app.model import BookingRequest, Decision, Outcome
from booking_app.strategies.base import Strategy

log = logging.getLogger(__name__)


class AckBeforeCommit(Strategy):
    name = "ack_before_commit"
    summary = "answers, then commits window_ms later in a background task"
    default_window_ms = 50

    async def book(self, request: BookingRequest) -> Decision:
        conn = await self.pool.acquire()
        tx = conn.transaction()
        try:
            await tx.start()
            decision = await sql.decide_in_transaction(conn, request)
        except BaseException:
            await self._finish(conn, tx, commit=False)
            raise
        if decision.outcome is not Outcome.CREATED:  # nothing new to make durable
            await self._finish(conn, tx, commit=True)
            return decision

        async def commit_later() -> None:
            await self.slow_step()
            await self._finish(conn, tx, commit=True)

        decision.after_response = commit_later
        return decision

    async def _finish(self, conn: PoolConnectionProxy, tx: Transaction, *, commit: bool) -> None:
        try:
            if commit:
                await tx.commit()
            else:
                await tx.rollback()
        except Exception:  # the client already has its answer: nobody hears about this (the bug)
            log.exception("deferred %s failed", "commit" if commit else "rollback")
        finally:
            await self.pool.release(conn)
