"""The ONE place where the app touches the schema's safety nets.

compose/db/10_schema.sql puts two constraints under the app that stop most booking bugs before they
reach the data: the partial unique index `bookings_one_confirmed_per_slot` and the unique
constraint `bookings_intent_id_key`. A mutant exists to show SimCity its damage in the DATABASE, so
a mutant whose bug one of them would block declares it in `Strategy.safety_nets_off`, and each
worker drops it before serving anything (`NetsGate`). Every other net is restored if missing (a
database shared with an earlier mutant run), because `atomic` relies on `bookings_intent_id_key`
for ON CONFLICT (intent_id). Never run a mutant against a database you care about.

The nets are set by the workers on their first database contact, not by the master before it
listens: a start then never waits on the database (a crash-restart while the database is cut off
serves 503 at once, instead of after a connect timeout), and a database that was down at start is
handled the same way as one that was up.
"""

from __future__ import annotations

import asyncio
import enum
import logging

import asyncpg

from booking_app.errors import SafetyNetsUnset

log = logging.getLogger(__name__)


class SafetyNet(enum.Enum):
    ONE_CONFIRMED_PER_SLOT = "bookings_one_confirmed_per_slot"
    INTENT_UNIQUE = "bookings_intent_id_key"


# Which nets exist, in one round trip: the whole cost of a start whose nets are already right.
_PRESENT = "SELECT relname FROM pg_class WHERE relname = ANY($1::text[]) AND relnamespace = 'public'::regnamespace"
# Two workers of one app start together: their changes to the nets go one at a time.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('booking_app.safety_nets'))"
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
    names = await conn.fetch(_PRESENT, [net.value for net in SafetyNet])
    return {SafetyNet(row["relname"]) for row in names}


async def are_set(conn: asyncpg.Connection, off: frozenset[SafetyNet]) -> bool:
    """Whether exactly the nets in `off` are absent and all others present: one query."""
    return await present(conn) == set(SafetyNet) - off


async def apply_safety_nets(conn: asyncpg.Connection, off: frozenset[SafetyNet]) -> None:
    """Make exactly the nets in `off` absent and all others present. Idempotent (runs on every start)."""
    if await are_set(conn, off):
        return
    async with conn.transaction():
        await conn.execute(_LOCK)
        # DDL takes an exclusive lock on bookings: never queue behind a long transaction for ever.
        await conn.execute("SET LOCAL lock_timeout = '5s'")
        have = await present(conn)  # another worker may have set them meanwhile
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


class NetsGate:
    """Per worker: the nets are set before the first request is served, once the database answers.
    Nets that cannot be set (a mutant's duplicates in the table) fail every request after, with
    503 `safety_nets`: the app never serves with the wrong nets. A database error on the way
    fails that request only; the next one tries again."""

    def __init__(self, strategy: str) -> None:
        from booking_app.strategies import strategy_class  # noqa: PLC0415 - strategies import this module

        self.strategy = strategy
        self._off = strategy_class(strategy).safety_nets_off  # the nets this strategy needs absent
        self._ready = False
        self._failed: SafetyNetsUnset | None = None
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return self._ready

    async def check(self, conn: asyncpg.Connection) -> None:
        """One query: whether the nets already are what the strategy needs, and if so the gate is
        open. It is a database round trip, so /health pings with it on a worker's first contact:
        a fresh start then costs one round trip, not two (0.15 s less per crash under 150 ms of
        app-db latency)."""
        if await are_set(conn, self._off):
            self._ready = True

    async def ensure(self, pool: asyncpg.Pool) -> None:
        if self._ready:
            return
        async with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._ready:
                return
            try:
                async with pool.acquire() as conn:
                    await apply_safety_nets(conn, self._off)
            except SafetyNetError as exc:
                log.error("%s", exc)
                self._failed = SafetyNetsUnset(str(exc))
                raise self._failed from exc
            self._ready = True
