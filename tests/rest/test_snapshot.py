"""A snapshot is ONE statement: never torn by concurrent transactions that change slot + bookings."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx

from harness.contract import SNAPSHOT_SELECT
from harness.postgres import LocalPostgres
from simcity_rest.nodes import Query
from simcity_rest.querystring import parse_query
from simcity_rest.schema import SchemaCache
from simcity_rest.sqlbuilder import Builder
from tests.rest.conftest import Rest, World, service_headers

SNAPSHOT = f"select={SNAPSHOT_SELECT}"


def test_builder_emits_one_statement(postgres: LocalPostgres, world: World) -> None:
    async def check() -> None:
        conn = await asyncpg.connect(postgres.superuser_dsn)
        try:
            cache = await SchemaCache.load(conn, ("public",))
            query: Query = parse_query(f"id=eq.{world.slot_id}&{SNAPSHOT}")
            stmt = Builder(cache, cache.table("public", "slots"), query).read(limit=None, offset=0, count=True, singular=False)
            assert ";" not in stmt.sql and stmt.sql.startswith("SELECT ")
            assert world.slot_id not in stmt.sql  # the value travels as a bind parameter only
            # A prepared statement can hold one command only: PostgreSQL itself confirms it is one.
            prepared = await conn.prepare(stmt.sql)
            total, n, body = await prepared.fetchrow(*stmt.params)
            assert (total, n) == (1, 1) and world.booking_ids[0] in body
        finally:
            await conn.close()

    asyncio.run(check())


def test_snapshot_never_torn_under_concurrent_writes(rest: Rest, postgres: LocalPostgres, world: World) -> None:
    """A writer flips slot state and both bookings in one transaction; every snapshot must be coherent."""
    a, b = world.booking_ids
    stop = threading.Event()
    flips = [0]

    async def writer() -> None:
        conn = await asyncpg.connect(postgres.superuser_dsn)
        try:
            booked = True
            while not stop.is_set() and flips[0] < 5000:
                async with conn.transaction():
                    if booked:  # -> free: nobody confirmed
                        await conn.execute("update bookings set status = 'rejected' where id = $1", a)
                        await conn.execute("update slots set state = 'free' where id = $1", world.slot_id)
                        await conn.execute("update bookings set status = 'pending' where id = $1", b)
                    else:  # -> booked: a confirmed
                        await conn.execute("update bookings set status = 'rejected' where id = $1", b)
                        await conn.execute("update slots set state = 'booked' where id = $1", world.slot_id)
                        await conn.execute("update bookings set status = 'confirmed' where id = $1", a)
                booked = not booked
                flips[0] += 1
        finally:
            await conn.close()

    def read(n: int) -> list[str]:
        problems = []
        with httpx.Client(base_url=rest.url, headers=service_headers(), timeout=20) as client:
            for _ in range(n):
                [slot] = client.get(f"/rest/v1/slots?id=eq.{world.slot_id}&{SNAPSHOT}").json()
                statuses = sorted(x["status"] for x in slot["bookings"])
                coherent = (slot["state"], statuses) in (
                    ("booked", ["confirmed", "rejected"]), ("free", ["pending", "rejected"]),
                )
                if not coherent:
                    problems.append(f"{slot['state']} {statuses}")
        return problems

    writer_thread = threading.Thread(target=lambda: asyncio.run(writer()))
    writer_thread.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(read, [150] * 4))
    finally:
        stop.set()
        writer_thread.join(timeout=30)
    assert flips[0] > 10, "the writer did not interleave with the readers"
    assert [p for r in results for p in r] == []
