"""simcity-rest vs a direct asyncpg connection on the SC-1 snapshot read.

Starts its own PostgreSQL and simcity-rest, seeds one slot with two bookings, then prints:
- p50/p99 of the snapshot through simcity-rest (one keep-alive HTTP client, sequential);
- p50/p99 of the same SELECT (the statement simcity-rest builds) over one direct asyncpg connection;
- requests/s with 8 concurrent readers (2,000 requests in all).
Targets: p50 < 3 ms and < 2x direct.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import asyncpg
import httpx
import jwt

from harness.postgres import LocalPostgres, free_port
from simcity_rest.querystring import parse_query
from simcity_rest.schema import SchemaCache
from simcity_rest.spawn import rest_process
from simcity_rest.sqlbuilder import Builder

SECRET = "bench-secret-0123456789abcdef-0123456789"
SELECT = "select=id,vendor_id,state,bookings(id,intent_id,slot_id,customer_id,status,created_at,updated_at)"
WARMUP = 300
SEQUENTIAL = 1000
CONCURRENT_READERS = 8
CONCURRENT_TOTAL = 2000


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _seed(pg: LocalPostgres) -> str:
    vendor, slot, c1, c2 = (str(uuid.uuid4()) for _ in range(4))
    pg.psql(sql=f"""
        insert into vendors(id, name) values ('{vendor}', 'bench');
        insert into slots(id, vendor_id, starts_at, state) values ('{slot}', '{vendor}', now(), 'booked');
        insert into customers(id, name) values ('{c1}', 'c1'), ('{c2}', 'c2');
        insert into bookings(intent_id, slot_id, customer_id, status) values
          (gen_random_uuid(), '{slot}', '{c1}', 'confirmed'), (gen_random_uuid(), '{slot}', '{c2}', 'rejected')""")
    return slot


async def _direct(pg: LocalPostgres, slot: str) -> list[float]:
    """The very statement simcity-rest runs, prepared once, over a direct connection (no HTTP, no tx)."""
    conn = await asyncpg.connect(pg.superuser_dsn)
    try:
        cache = await SchemaCache.load(conn, ("public",))
        stmt = Builder(cache, cache.table("public", "slots"), parse_query(f"id=eq.{slot}&{SELECT}")).read(
            limit=None, offset=0, count=False, singular=False,
        )
        prepared = await conn.prepare(stmt.sql)
        for _ in range(WARMUP):
            await prepared.fetchrow(*stmt.params)
        samples = []
        for _ in range(SEQUENTIAL):
            t0 = time.perf_counter()
            await prepared.fetchrow(*stmt.params)
            samples.append(time.perf_counter() - t0)
        return samples
    finally:
        await conn.close()


async def _concurrent(url: str, headers: dict[str, str]) -> float:
    per_reader = CONCURRENT_TOTAL // CONCURRENT_READERS
    limits = httpx.Limits(max_connections=CONCURRENT_READERS, max_keepalive_connections=CONCURRENT_READERS)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        async def reader() -> None:
            for _ in range(per_reader):
                r = await client.get(url)
                assert r.status_code == 200

        await asyncio.gather(*(reader() for _ in range(CONCURRENT_READERS)))  # warm connections
        t0 = time.perf_counter()
        await asyncio.gather(*(reader() for _ in range(CONCURRENT_READERS)))
        return (per_reader * CONCURRENT_READERS) / (time.perf_counter() - t0)


def main() -> None:
    key = jwt.encode({"role": "service_role"}, SECRET, algorithm="HS256")
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    with LocalPostgres() as pg:
        slot = _seed(pg)
        port = free_port()
        env = {"PGRST_DB_URI": pg.authenticator_dsn, "PGRST_JWT_SECRET": SECRET, "PGRST_DB_ANON_ROLE": "anon"}
        with rest_process(port, env):
            url = f"http://127.0.0.1:{port}/rest/v1/slots?id=eq.{slot}&{SELECT}"
            with httpx.Client(headers=headers, timeout=30) as client:
                for _ in range(WARMUP):
                    assert client.get(url).status_code == 200
                rest = []
                for _ in range(SEQUENTIAL):
                    t0 = time.perf_counter()
                    r = client.get(url)
                    rest.append(time.perf_counter() - t0)
                    assert r.status_code == 200
                assert len(r.json()[0]["bookings"]) == 2
            direct = asyncio.run(_direct(pg, slot))
            rps = asyncio.run(_concurrent(url, headers))
    rest_p50, rest_p99 = _pct(rest, 0.5) * 1e3, _pct(rest, 0.99) * 1e3
    direct_p50, direct_p99 = _pct(direct, 0.5) * 1e3, _pct(direct, 0.99) * 1e3
    print(f"SC-1 snapshot via simcity-rest : p50 {rest_p50:6.2f} ms  p99 {rest_p99:6.2f} ms  (n={SEQUENTIAL})")
    print(f"same SELECT, direct asyncpg    : p50 {direct_p50:6.2f} ms  p99 {direct_p99:6.2f} ms  (n={SEQUENTIAL})")
    print(f"ratio p50 rest/direct          : {rest_p50 / direct_p50:5.2f}x   (mean rest {statistics.mean(rest) * 1e3:.2f} ms)")
    print(f"{CONCURRENT_READERS} concurrent readers           : {rps:7.0f} requests/s ({CONCURRENT_TOTAL} requests)")
    verdict = "MET" if rest_p50 < 3.0 and rest_p50 < 2 * direct_p50 else "NOT MET"
    print(f"targets (p50 < 3 ms and < 2x direct): {verdict}")
