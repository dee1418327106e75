"""simcity-rest vs a direct asyncpg connection on the SC-1 snapshot read.

Starts its own PostgreSQL and simcity-rest, seeds one slot with two bookings, then prints:
- p50/p99 of the snapshot through simcity-rest (one keep-alive stdlib HTTP connection, sequential;
  http.client rather than httpx so the client's own CPU cost stays out of the figure);
- p50/p99 of the same SELECT (the statement simcity-rest builds) over one direct asyncpg connection,
  alone and wrapped in PostgREST's transaction (BEGIN, set_config setup, SELECT, COMMIT);
- requests/s with 8 concurrent readers (threads, 2,000 requests in all).
Targets: p50 < 3 ms and < 2x direct.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import threading
import statistics
import time
import uuid

import asyncpg
import jwt

from harness.postgres import LocalPostgres
from harness.stacks._net import free_port
from simcity_rest.querystring import parse_query
from simcity_rest.schema import SchemaCache
from simcity_rest.spawn import rest_process
from simcity_rest.sqlbuilder import Builder
from tests.bench.stats import percentile

SECRET = "bench-secret-0123456789abcdef-0123456789"
SELECT = "select=id,vendor_id,state,bookings(id,intent_id,slot_id,customer_id,status,created_at,updated_at)"
WARMUP = 300
SEQUENTIAL = 1000
CONCURRENT_READERS = 8
CONCURRENT_TOTAL = 2000



def _seed(pg: LocalPostgres) -> str:
    vendor, slot, c1, c2 = (str(uuid.uuid4()) for _ in range(4))
    pg.psql(sql=f"""
        insert into vendors(id, name) values ('{vendor}', 'bench');
        insert into slots(id, vendor_id, starts_at, state) values ('{slot}', '{vendor}', now(), 'booked');
        insert into customers(id, name) values ('{c1}', 'c1'), ('{c2}', 'c2');
        insert into bookings(intent_id, slot_id, customer_id, status) values
          (gen_random_uuid(), '{slot}', '{c1}', 'confirmed'), (gen_random_uuid(), '{slot}', '{c2}', 'rejected')""")
    return slot


async def _direct(pg: LocalPostgres, slot: str) -> tuple[list[float], list[float]]:
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
        samples, in_tx = [], []
        for _ in range(SEQUENTIAL):
            t0 = time.perf_counter()
            await prepared.fetchrow(*stmt.params)
            samples.append(time.perf_counter() - t0)
        setup = await conn.prepare(
            "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), "
            "set_config('request.method', $3, true), set_config('request.path', $4, true)"
        )
        for _ in range(SEQUENTIAL):
            t0 = time.perf_counter()
            async with conn.transaction(readonly=True):
                await setup.fetchrow("service_role", '{"role":"service_role"}', "GET", "/slots")
                await prepared.fetchrow(*stmt.params)
            in_tx.append(time.perf_counter() - t0)
        return samples, in_tx
    finally:
        await conn.close()


def _cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process so far (load-independent cost, unlike latency)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> bytes:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, (response.status, body)
    return body


def _concurrent(port: int, path: str, headers: dict[str, str]) -> float:
    per_reader = CONCURRENT_TOTAL // CONCURRENT_READERS
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(CONCURRENT_READERS)]
    for conn in conns:
        _get(conn, path, headers)  # connect and warm up
    barrier = threading.Barrier(CONCURRENT_READERS + 1)

    def reader(conn: http.client.HTTPConnection) -> None:
        barrier.wait()
        for _ in range(per_reader):
            _get(conn, path, headers)

    threads = [threading.Thread(target=reader, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for conn in conns:
        conn.close()
    return per_reader * CONCURRENT_READERS / elapsed


def main() -> None:
    key = jwt.encode({"role": "service_role"}, SECRET, algorithm="HS256")
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    with LocalPostgres() as pg:
        slot = _seed(pg)
        port = free_port()
        env = {"PGRST_DB_URI": pg.authenticator_dsn, "PGRST_JWT_SECRET": SECRET, "PGRST_DB_ANON_ROLE": "anon"}
        with rest_process(port, env) as server:
            assert server.pid is not None
            path = f"/rest/v1/slots?id=eq.{slot}&{SELECT}"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(WARMUP):
                _get(conn, path, headers)
            rest = []
            cpu0 = _cpu_s(server.pid)
            for _ in range(SEQUENTIAL):
                t0 = time.perf_counter()
                body = _get(conn, path, headers)
                rest.append(time.perf_counter() - t0)
            server_cpu_ms = (_cpu_s(server.pid) - cpu0) / SEQUENTIAL * 1e3
            conn.close()
            assert body.count(b'"intent_id"') == 2
            direct, direct_tx = asyncio.run(_direct(pg, slot))
            rps = _concurrent(port, path, headers)
    rest_p50, rest_p99 = percentile(rest, 0.5) * 1e3, percentile(rest, 0.99) * 1e3
    direct_p50, direct_p99 = percentile(direct, 0.5) * 1e3, percentile(direct, 0.99) * 1e3
    print(f"SC-1 snapshot via simcity-rest : p50 {rest_p50:6.2f} ms  p99 {rest_p99:6.2f} ms  (n={SEQUENTIAL})")
    print(f"same SELECT, direct asyncpg    : p50 {direct_p50:6.2f} ms  p99 {direct_p99:6.2f} ms  (n={SEQUENTIAL})")
    tx_p50, tx_p99 = percentile(direct_tx, 0.5) * 1e3, percentile(direct_tx, 0.99) * 1e3
    print(f"same, in PostgREST's transaction: p50 {tx_p50:6.2f} ms  p99 {tx_p99:6.2f} ms  (BEGIN, setup, SELECT, COMMIT)")
    print(f"ratio p50 rest/direct          : {rest_p50 / direct_p50:5.2f}x   (mean rest {statistics.mean(rest) * 1e3:.2f} ms)")
    print(f"simcity-rest CPU per request   : {server_cpu_ms:6.2f} ms (user+system, from /proc)")
    print(f"{CONCURRENT_READERS} concurrent readers           : {rps:7.0f} requests/s ({CONCURRENT_TOTAL} requests)")
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"target p50 < 3 ms                   : {verdict(rest_p50 < 3.0)}")
    print(f"target p50 < 2x direct SELECT       : {verdict(rest_p50 < 2 * direct_p50)}")
    print(f"      p50 < 2x direct, same transaction: {verdict(rest_p50 < 2 * tx_p50)}"
          "  (PostgREST's protocol is 4 round trips where the bare SELECT is 1)")
