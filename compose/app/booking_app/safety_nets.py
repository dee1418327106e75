"""The ONE place where the app touches the schema's safety nets.

compose/db/10_schema.sql puts two constraints under the app that stop most booking bugs before they
reach the data: the partial unique index `bookings_one_confirmed_per_slot` and the unique
constraint `bookings_intent_id_key`. A mutant exists to show SimCity its damage in the DATABASE, so
a mutant whose bug one of them would block declares it in `Strategy.safety_nets_off` and start-up
drops it here. Every other net is restored if missing (a database shared with an earlier mutant
run), because `atomic` relies on `bookings_intent_id_key` for ON CONFLICT (intent_id). Never run a
mutant against a database you care about.
"""

from __future__ import annotations

import asyncio
import enum
import logging

import asyncpg

log = logging.getLogger(__name__)


# Set by `booking-app` for its workers when the database was down at start: each worker then sets
# the nets on its first database contact, before serving anything (see `NetsGate`).
PENDING_NETS_ENV = "BOOKING_SAFETY_NETS_PENDING"


class SafetyNet(enum.Enum):
    ONE_CONFIRMED_PER_SLOT = "bookings_one_confirmed_per_slot"
    INTENT_UNIQUE = "bookings_intent_id_key"


_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = $1 AND relnamespace = 'public'::regnamespace)"
_DROP = {
    SafetyNet.ONE_CONFIRMED_PER_SLOT: "DROP INDEX IF EXISTS public.bookings_one_confirmed_per_slot",
    SafetyNet.INTENT_UNIQUE: "ALTER TABLE public.bookings DROP CONSTRAINT IF EXISTS bookings_intent_id_key",
}
# Kept identical to compose/db/10_schema.sql.
_RESTORE = {
    SafetyNet.ONE_CONFIRMED_PER_SLOT: (
        "CREATE UNIQUE INDEX IF NOT EXISTS bookings_one_confirmed_per_slot "
        "ON public.bookings (slot_id) WHERE status = 'confirmed'"
    ),
    SafetyNet.INTENT_UNIQUE: "ALTER TABLE public.bookings ADD CONSTRAINT bookings_intent_id_key UNIQUE (intent_id)",
}


class SafetyNetError(RuntimeError):
    """A net could not be restored, typically because a mutant left duplicates behind."""


async def present(conn: asyncpg.Connection) -> set[SafetyNet]:
    return {net for net in SafetyNet if await conn.fetchval(_EXISTS, net.value)}


async def apply_safety_nets(conn: asyncpg.Connection, off: frozenset[SafetyNet]) -> None:
    """Make exactly the nets in `off` absent and all others present. Idempotent (runs on every start)."""
    have = await present(conn)
    # DDL takes an exclusive lock on bookings: never queue behind a long transaction for ever.
    await conn.execute("SET lock_timeout = '5s'")
    for net in SafetyNet:
        if net in off and net in have:
            log.warning("dropping safety net %s for a mutant strategy", net.value)
            await conn.execute(_DROP[net])
        elif net not in off and net not in have:
            log.warning("restoring safety net %s", net.value)
            try:
                await conn.execute(_RESTORE[net])
            except asyncpg.UniqueViolationError as exc:
                raise SafetyNetError(
                    f"cannot restore {net.value}: the bookings table holds duplicates (left by a mutant "
                    "run?); reset the database"
                ) from exc


async def disable_safety_nets(conn: asyncpg.Connection, strategy: str) -> None:
    """Drop the nets `strategy` needs off, restore the others."""
    from booking_app.strategies import strategy_class  # noqa: PLC0415 - strategies import this module

    await apply_safety_nets(conn, strategy_class(strategy).safety_nets_off)


class NetsGate:
    """Per worker: the nets are set before the first request is served, once the database answers."""

    def __init__(self, strategy: str, pending: bool) -> None:
        self.strategy = strategy
        self._ready = not pending
        self._lock = asyncio.Lock()

    async def ensure(self, pool: asyncpg.Pool) -> None:
        if self._ready:
            return
        async with self._lock:
            if not self._ready:
                async with pool.acquire() as conn:
                    await disable_safety_nets(conn, self.strategy)
                self._ready = True
