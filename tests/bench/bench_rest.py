"""simcity-rest vs a direct asyncpg connection on the SC-1 snapshot read.

Starts its own PostgreSQL and simcity-rest, seeds one slot with two bookings, then, in each of RUNS
runs, times back to back:
- the snapshot through simcity-rest, on one kept-alive socket whose answers httptools (the C parser
  uvicorn uses) reads, so that the client's own cost stays out of the figure as asyncpg's stays out
  of the anchor's; and the same through http.client, whose header parsing (the stdlib's email
  parser) alone cost 0.14 ms of CPU a request, shown beside it;
- the anchor: the same SELECT (the statement simcity-rest builds), prepared, over one direct asyncpg
  connection already in the service role;
- the same SELECT wrapped in PostgREST's transaction the naive way (BEGIN, setup, SELECT, COMMIT:
  a round trip each), and the way simcity-rest sends it (pipeline.py: one round trip), without HTTP;
- simcity-rest answering an OPTIONS of the same path, which touches no database: the HTTP floor
  of the same server, so that snapshot ~ that floor + the pipelined transaction + the glue between.
Every p50 is printed as the median over the runs, with its ratio to the anchor (the median of the
per-run ratios: a run's figures share the machine's load of that moment). Then simcity-rest's CPU
per request and requests/s with 8 concurrent readers (threads, 2,000 requests in all).
Targets: p50 < 3 ms and <= 2x direct.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import os
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import httptools
import jwt

from harness.postgres import LocalPostgres
from harness.stacks._net import free_port
from simcity_rest.pipeline import TransactionPool
from simcity_rest.querystring import parse_query
from simcity_rest.schema import SchemaCache
from simcity_rest.spawn import rest_process
from simcity_rest.sqlbuilder import Builder
from tests.bench.stats import percentile

SECRET = "bench-secret-0123456789abcdef-0123456789"
SELECT = "select=id,vendor_id,state,bookings(id,intent_id,slot_id,customer_id,status,created_at,updated_at)"
WARMUP = 300
RUNS = 5
PER_RUN = 400
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


class Direct:
    """The very statement simcity-rest runs over one direct connection (no HTTP), bare and in a transaction."""

    def __init__(self, conn: asyncpg.Connection, select: asyncpg.prepared_stmt.PreparedStatement, params: tuple[object, ...],
                 setup: asyncpg.prepared_stmt.PreparedStatement, sql: str, reads: TransactionPool) -> None:
        self.conn, self.select, self.params, self.setup = conn, select, params, setup
        self.sql, self.reads = sql, reads

    @classmethod
    async def open(cls, pg: LocalPostgres, slot: str) -> "Direct":
        conn = await asyncpg.connect(pg.authenticator_dsn)
        cache = await SchemaCache.load(conn, ("public",))
        stmt = Builder(cache, cache.table("public", "slots"), parse_query(f"id=eq.{slot}&{SELECT}")).read(
            limit=None, offset=0, count=False, singular=False,
        )
        # The role the REST requests run as, so the anchor pays the same grants and RLS checks.
        await conn.execute("SET ROLE service_role")
        setup = await conn.prepare(
            "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), "
            "set_config('request.method', $3, true), set_config('request.path', $4, true)"
        )
        return cls(conn, await conn.prepare(stmt.sql), tuple(stmt.params), setup, stmt.sql, TransactionPool(pg.authenticator_dsn, 1))

    async def bare(self) -> None:
        await self.select.fetchrow(*self.params)

    async def in_transaction(self) -> None:
        async with self.conn.transaction(readonly=True):
            await self.setup.fetchrow("service_role", '{"role":"service_role"}', "GET", "/slots")
            await self.select.fetchrow(*self.params)

    async def pipelined(self) -> None:
        gucs = ("public, public", "service_role", '{"role":"service_role"}', "GET", "/slots", "{}")
        await self.reads.transaction(gucs, self.sql, self.params, readonly=True)

    async def close(self) -> None:
        await self.reads.close()
        await self.conn.close()

    async def timed(self, call: Callable[[], Awaitable[None]], n: int) -> list[float]:
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - t0)
        return samples


def _cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process so far (load-independent cost, unlike latency)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LeanHttp:
    """One kept-alive connection that sends a request's ready-made bytes and reads the answer with
    httptools: next to nothing of the client in the time of an exchange."""

    def __init__(self, port: int, request: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = request
        self.chunks: list[bytes] = []
        self.complete = False

    def on_body(self, body: bytes) -> None:  # httptools' callbacks
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    def get(self) -> bytes:
        self.chunks, self.complete = [], False
        parser = httptools.HttpResponseParser(self)
        self.sock.sendall(self.request)
        while not self.complete:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionResetError("simcity-rest closed the connection")
            parser.feed_data(data)
        body = b"".join(self.chunks)
        assert parser.get_status_code() == 200, (parser.get_status_code(), body)
        return body

    def close(self) -> None:
        self.sock.close()


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


def _timed(get: Callable[[], bytes], n: int, *, rows: int = 2) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        body = get()
        samples.append(time.perf_counter() - t0)
    assert body.count(b'"intent_id"') == rows
    return samples


def _p50_ms(samples: list[float]) -> float:
    return percentile(samples, 0.5) * 1e3


def main() -> None:
    key = jwt.encode({"role": "service_role"}, SECRET, algorithm="HS256")
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    runs: dict[str, list[float]] = {"rest": [], "rest_http_client": [], "direct": [], "direct_tx": [], "pipelined": [],
                                    "options": []}
    with LocalPostgres() as pg, asyncio.Runner() as loop:
        slot = _seed(pg)
        direct = loop.run(Direct.open(pg, slot))
        port = free_port()
        env = {"PGRST_DB_URI": pg.authenticator_dsn, "PGRST_JWT_SECRET": SECRET, "PGRST_DB_ANON_ROLE": "anon"}
        try:
            with rest_process(port, env) as server:
                assert server.pid is not None
                path = f"/rest/v1/slots?id=eq.{slot}&{SELECT}"
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                lean, options = (LeanHttp(port, "".join([f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n",
                                                         *(f"{k}: {v}\r\n" for k, v in headers.items()), "\r\n"]).encode())
                                 for method in ("GET", "OPTIONS"))
                http_client_get = functools.partial(_get, conn, path, headers)
                _timed(lean.get, WARMUP)
                _timed(http_client_get, WARMUP)
                _timed(options.get, WARMUP, rows=0)
                loop.run(direct.timed(direct.bare, WARMUP))
                server_cpu_s, requests = 0.0, 0
                for _ in range(RUNS):
                    cpu0 = _cpu_s(server.pid)
                    runs["rest"].append(_p50_ms(_timed(lean.get, PER_RUN)))
                    runs["rest_http_client"].append(_p50_ms(_timed(http_client_get, PER_RUN)))
                    # The server idles but for these snapshot requests: its CPU is all theirs.
                    server_cpu_s, requests = server_cpu_s + _cpu_s(server.pid) - cpu0, requests + 2 * PER_RUN
                    runs["options"].append(_p50_ms(_timed(options.get, PER_RUN, rows=0)))
                    runs["direct"].append(_p50_ms(loop.run(direct.timed(direct.bare, PER_RUN))))
                    runs["direct_tx"].append(_p50_ms(loop.run(direct.timed(direct.in_transaction, PER_RUN))))
                    runs["pipelined"].append(_p50_ms(loop.run(direct.timed(direct.pipelined, PER_RUN))))
                server_cpu_ms = server_cpu_s / requests * 1e3
                conn.close()
                lean.close()
                options.close()
                rps = _concurrent(port, path, headers)
        finally:
            loop.run(direct.close())

    def figure(name: str) -> tuple[float, float]:
        """(median p50 over the runs, median of the per-run ratios to the direct SELECT)."""
        ratios = [value / anchor for value, anchor in zip(runs[name], runs["direct"])]
        return statistics.median(runs[name]), statistics.median(ratios)

    rest_p50, rest_ratio = figure("rest")
    http_client_p50, http_client_ratio = figure("rest_http_client")
    direct_p50, _ = figure("direct")
    tx_p50, tx_ratio = figure("direct_tx")
    pipelined_p50, pipelined_ratio = figure("pipelined")
    options_p50, options_ratio = figure("options")
    per_run = " ".join(f"{v:.2f}" for v in runs["rest"])
    print(f"medians of {RUNS} runs of {PER_RUN} sequential requests each; ratio = against the direct SELECT of the same run")
    print(f"SC-1 snapshot via simcity-rest  : p50 {rest_p50:6.2f} ms  {rest_ratio:5.2f}x   (runs: {per_run} ms)")
    print(f"the same through http.client    : p50 {http_client_p50:6.2f} ms  {http_client_ratio:5.2f}x   (its own parsing included)")
    print(f"same SELECT, direct asyncpg     : p50 {direct_p50:6.2f} ms  1.00x   (the anchor)")
    print(f"same, BEGIN/setup/SELECT/COMMIT : p50 {tx_p50:6.2f} ms  {tx_ratio:5.2f}x   (PostgREST's transaction, one round trip each)")
    print(f"same, pipelined (no HTTP)       : p50 {pipelined_p50:6.2f} ms  {pipelined_ratio:5.2f}x   (simcity-rest's one round trip)")
    print(f"simcity-rest, OPTIONS (no SQL)  : p50 {options_p50:6.2f} ms  {options_ratio:5.2f}x   (its HTTP floor)")
    print(f"simcity-rest CPU per request    : {server_cpu_ms:6.2f} ms (user+system, from /proc)")
    print(f"{CONCURRENT_READERS} concurrent readers            : {rps:7.0f} requests/s ({CONCURRENT_TOTAL} requests)")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"target p50 < 3 ms               : {verdict(rest_p50 < 3.0)}")
    print(f"target p50 <= 2x direct SELECT  : {verdict(rest_ratio <= 2.0)}")
