"""The connection pool and the one place database failures become answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import asyncpg

from booking_app.config import Settings
from booking_app.errors import DatabaseUnavailable

# Failures after which the outcome is unknown and a retry may succeed: connection loss, server
# shutdown or overload, timeouts, serialization/deadlock aborts. Everything else is a bug (500).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,  # connection closed / does not exist, pool closing
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # 57: admin shutdown, cannot connect now, cancel
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # 40: serialization failure, deadlock
)


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate transient database failures into a 503 at the edge of each request."""
    try:
        yield
    except TRANSIENT_ERRORS as exc:
        raise DatabaseUnavailable(type(exc).__name__) from exc


async def create_pool(settings: Settings, max_size: int | None = None) -> asyncpg.Pool:
    """A lazily filled pool: min_size=0 so the app starts (and answers 503) while the database is down."""
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=0,
        max_size=max_size or settings.pool_max_size,
        timeout=settings.db_timeout_s,  # connect timeout
        command_timeout=settings.db_timeout_s,
        # An acknowledged booking must survive a crash of the database host too: never trust a
        # server-wide default that may have been relaxed.
        server_settings={"synchronous_commit": "on", "application_name": f"booking-app/{settings.strategy}"},
    )


async def ping(pool: asyncpg.Pool, timeout_s: float,
               round_trip: Callable[[asyncpg.Connection], Awaitable[object]] | None = None) -> bool:
    """A real round trip within timeout_s: the health probe. SELECT 1, or the caller's own
    `round_trip` when it has a query to make anyway."""
    try:
        async with asyncio.timeout(timeout_s):
            async with pool.acquire() as conn:
                if round_trip is not None:
                    await round_trip(conn)
                    return True
                return await conn.fetchval("SELECT 1") == 1
    except TRANSIENT_ERRORS:
        return False
    except asyncpg.PostgresError:
        return False
