"""SQL shared by the strategies, so each strategy file shows only its decision logic.

All functions take a connection; whether they run inside one transaction or several is exactly
what distinguishes the strategies.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from booking_app.errors import DecisionPending, IntentMismatch, UnknownCustomer, UnknownSlot
from booking_app.model import Booking, BookingRequest, Decision, Outcome

_COLUMNS = "id, intent_id, slot_id, customer_id, status"


@contextmanager
def foreign_keys_as_not_found() -> Iterator[None]:
    """A booking insert that names an unknown slot or customer fails its foreign key: that is a 404."""
    try:
        yield
    except asyncpg.ForeignKeyViolationError as exc:
        if "customer" in (exc.constraint_name or ""):
            raise UnknownCustomer("no such customer") from exc
        raise UnknownSlot("no such slot") from exc


async def find_by_intent(conn: asyncpg.Connection, intent_id: uuid.UUID) -> Booking | None:
    # ORDER BY: mutants without intent uniqueness may hold several rows; the first one is "the" one.
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM bookings WHERE intent_id = $1 ORDER BY created_at, id LIMIT 1", intent_id
    )
    return Booking.from_row(row) if row else None


async def earlier_decision(conn: asyncpg.Connection, request: BookingRequest) -> Decision | None:
    """The first decision of an intent already seen, or None for a new intent."""
    existing = await find_by_intent(conn, request.intent_id)
    return replay(existing, request) if existing is not None else None


async def raced_decision(conn: asyncpg.Connection, request: BookingRequest) -> Decision:
    """The decision of the same intent's request that won the insert race against ours."""
    existing = await find_by_intent(conn, request.intent_id)
    assert existing is not None, "ON CONFLICT skipped the insert, so the intent has a row"
    return replay(existing, request)


def replay(existing: Booking, request: BookingRequest) -> Decision:
    """The answer to an intent already decided: exactly its first decision, or 422 if it changed."""
    if not existing.matches(request):
        raise IntentMismatch()
    if existing.status == "confirmed":
        return Decision(Outcome.REPLAYED, existing)
    if existing.status in ("rejected", "failed"):
        return Decision(Outcome.REJECTED, existing)
    raise DecisionPending("booking exists without a decision")


async def insert_booking(
    conn: asyncpg.Connection, request: BookingRequest, status: str, *, idempotent: bool = True
) -> Booking | None:
    """Insert the booking of an intent. With `idempotent`, None when the intent already has one."""
    conflict = "ON CONFLICT (intent_id) DO NOTHING" if idempotent else ""
    with foreign_keys_as_not_found():
        row = await conn.fetchrow(
            f"INSERT INTO bookings (intent_id, slot_id, customer_id, status) VALUES ($1, $2, $3, $4) "
            f"{conflict} RETURNING {_COLUMNS}",
            request.intent_id, request.slot_id, request.customer_id, status,
        )
    return Booking.from_row(row) if row else None


async def claim_slot(conn: asyncpg.Connection, slot_id: uuid.UUID) -> bool:
    """The conditional update: True only for the one caller that turned the slot from free to booked."""
    return await conn.fetchval(
        "UPDATE slots SET state = 'booked' WHERE id = $1 AND state = 'free' RETURNING true", slot_id
    ) is True


async def mark_slot_booked(conn: asyncpg.Connection, slot_id: uuid.UUID) -> None:
    """Unconditional: what a caller does when it (wrongly) believes it already owns the slot."""
    await conn.execute("UPDATE slots SET state = 'booked' WHERE id = $1", slot_id)


async def slot_is_free(conn: asyncpg.Connection, slot_id: uuid.UUID) -> bool:
    state = await conn.fetchval("SELECT state FROM slots WHERE id = $1", slot_id)
    if state is None:
        raise UnknownSlot("no such slot")
    return state == "free"


async def require_customer(conn: asyncpg.Connection, customer_id: uuid.UUID) -> None:
    if not await conn.fetchval("SELECT true FROM customers WHERE id = $1", customer_id):
        raise UnknownCustomer("no such customer")


async def set_status(conn: asyncpg.Connection, booking_id: uuid.UUID, status: str) -> Booking:
    row = await conn.fetchrow(f"UPDATE bookings SET status = $2 WHERE id = $1 RETURNING {_COLUMNS}", booking_id, status)
    return Booking.from_row(row)


async def demote_confirmed(conn: asyncpg.Connection, slot_id: uuid.UUID) -> None:
    await conn.execute("UPDATE bookings SET status = 'rejected' WHERE slot_id = $1 AND status = 'confirmed'", slot_id)


async def decide_in_transaction(conn: asyncpg.Connection, request: BookingRequest) -> Decision:
    """The correct decision; the caller MUST run it inside one transaction and commit before answering.

    1. Claim the intent first (insert ON CONFLICT DO NOTHING): a concurrent request with the same
       intent waits on the unique index, then sees the committed first decision and replays it.
    2. Only a new intent may touch the slot: the conditional UPDATE lets exactly one transaction
       turn it free -> booked (READ COMMITTED re-checks the WHERE on the locked row).
    3. The booking's final status is written in the same transaction, so a crash at any instant
       leaves either nothing or a complete, coherent decision.
    """
    booking = await insert_booking(conn, request, "pending")
    if booking is None:
        existing = await find_by_intent(conn, request.intent_id)
        if existing is None:  # only possible if the row vanished under us: let the client retry
            raise DecisionPending("intent seen but not readable")
        return replay(existing, request)
    won = await claim_slot(conn, request.slot_id)
    booking = await set_status(conn, booking.id, "confirmed" if won else "rejected")
    return Decision(Outcome.CREATED if won else Outcome.REJECTED, booking)
