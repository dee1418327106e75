"""Read-only requests in ONE round trip: BEGIN, the SET LOCAL setup, the statement and COMMIT go to
PostgreSQL together in libpq's pipeline mode (through psycopg's libpq wrapper) and their answers
come back together.

asyncpg sends a statement only once the previous one has answered, so through it this transaction
costs a round trip per statement. The server runs a pipeline's messages in order, each after the one
before has finished, so the role and claims are set before the statement is even parsed: grants and
RLS are those of the request, and all of it is one transaction ending in the same exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import pq

from simcity_rest.errors import pg_error

# The GUCs PostgREST SET LOCALs first in every transaction, in the order of their values.
REQUEST_GUCS = ("search_path", "role", "request.jwt.claims", "request.method", "request.path", "request.headers")
SETUP_SQL = "SELECT " + ", ".join(
    [f"pg_catalog.set_config('{guc}', ${n}, true)" for n, guc in enumerate(REQUEST_GUCS, 1)]
    + ["pg_catalog.set_config('request.cookies', '{}', true)"]
)
# Prepared statements kept per connection before it forgets them all (asyncpg's cache keeps as many).
MAX_PREPARED = 1024


class ServerError(Exception):
    """PostgreSQL's ErrorResponse, with the fields asyncpg's PostgresError carries too."""

    def __init__(self, result: pq.abc.PGresult) -> None:
        def text(name: pq.DiagnosticField) -> str | None:
            raw = result.error_field(name)
            return None if raw is None else raw.decode("utf-8", "replace")

        self.sqlstate = text(pq.DiagnosticField.SQLSTATE) or "XX000"
        self.message = text(pq.DiagnosticField.MESSAGE_PRIMARY) or result.error_message.decode("utf-8", "replace")
        self.detail = text(pq.DiagnosticField.MESSAGE_DETAIL)
        self.hint = text(pq.DiagnosticField.MESSAGE_HINT)
        super().__init__(self.message)


class PipelineConnectionError(Exception):
    """The connection failed or was lost (the request cannot have had an effect: it only read)."""


def encode_param(value: object) -> bytes | None:
    """A bind parameter in PostgreSQL's text format (the statement casts every one, `$n::type`).
    libpq sends parameters as C strings, so a NUL is refused here as PostgreSQL refuses it."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("bool bind parameters are not used by the builder")
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple)):
        text = "{" + ",".join(_array_element(e) for e in value) + "}"
    else:
        raise TypeError(f"unsupported bind parameter type {type(value).__name__}")
    if "\x00" in text:
        raise pg_error("22021", 'invalid byte sequence for encoding "UTF8": 0x00')
    return text.encode()


def _array_element(value: object) -> str:
    if value is None:
        return "NULL"
    if not isinstance(value, str):
        raise TypeError(f"unsupported array element type {type(value).__name__}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class _Connection:
    # psycopg opens the connection (DNS, TLS, authentication) and owns it; we drive its libpq object.
    owner: psycopg.AsyncConnection[object]
    prepared: dict[str, bytes] = field(default_factory=dict)  # SQL -> name of its prepared statement
    names_used: int = 0

    @property
    def pg(self) -> pq.abc.PGconn:
        return self.owner.pgconn


class ReadPool:
    """Up to `size` pipelined connections, opened on demand, one request on each at a time."""

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn = dsn
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    async def read(self, setup: Sequence[str], sql: str, params: Sequence[object], timeout_s: float = 10.0,
                   ) -> tuple[bytes | None, ...]:
        """Run `sql` in a read-only transaction set up with `setup` (SETUP_SQL's six values): the
        values of its one row. Raises ServerError, PipelineConnectionError, or asyncio.TimeoutError
        when no connection is free within `timeout_s`."""
        setup_params = [encode_param(v) for v in setup]
        query_params = [encode_param(p) for p in params]
        if self._slots.locked():
            await asyncio.wait_for(self._slots.acquire(), timeout_s)
        else:
            await self._slots.acquire()  # free: no timer (wait_for's own task costs more than the acquire)
        conn: _Connection | None = None
        # Back to the pool only after an exchange that ran to its end (a ServerError included: rolled
        # back), never after a lost connection or one cut short (a cancelled request): state unknown.
        finished = False
        try:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                row = await _transaction(conn, setup_params, sql, query_params)
            except ServerError:
                finished = True
                raise
            finished = True
            return row
        finally:
            if conn is not None:
                if finished and not self._closed and conn.pg.transaction_status == pq.TransactionStatus.IDLE:
                    self._idle.append(conn)
                else:
                    await conn.owner.close()
            self._slots.release()

    async def _connect(self) -> _Connection:
        try:
            owner = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        except psycopg.Error as exc:
            raise PipelineConnectionError(str(exc)) from None
        owner.pgconn.nonblocking = 1
        owner.pgconn.enter_pipeline_mode()
        return _Connection(owner)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.owner.close()


async def _transaction(conn: _Connection, setup: list[bytes | None], sql: str, params: list[bytes | None],
                       ) -> tuple[bytes | None, ...]:
    """One exchange: [DEALLOCATE ALL], BEGIN READ ONLY, [Parse] setup, [Parse] statement, COMMIT, Sync."""
    pg = conn.pg
    parses: list[tuple[int, str, bytes]] = []  # (result index, SQL, name) of statements parsed now
    sent = 0

    def send_prepared(text: str, values: list[bytes | None]) -> int:
        nonlocal sent
        name = conn.prepared.get(text)
        if name is None:
            name = f"simcity_{conn.names_used}".encode()
            conn.names_used += 1
            pg.send_prepare(name, text.encode())
            parses.append((sent, text, name))
            sent += 1
        pg.send_query_prepared(name, values)
        sent += 1
        return sent - 1

    try:
        if len(conn.prepared) >= MAX_PREPARED:
            pg.send_query_params(b"DEALLOCATE ALL", None)
            conn.prepared.clear()
            sent += 1
        pg.send_query_params(b"BEGIN READ ONLY", None)
        sent += 1
        send_prepared(SETUP_SQL, setup)
        query_at = send_prepared(sql, params)
        pg.send_query_params(b"COMMIT", None)
        pg.pipeline_sync()
        results = await _exchange(pg)
        for at, text, name in parses:  # only a Parse that succeeded left a statement on the server
            if results[at].status == pq.ExecStatus.COMMAND_OK:
                conn.prepared[text] = name
        failed = next((r for r in results if r.status == pq.ExecStatus.FATAL_ERROR), None)
        if failed is not None:
            if pg.transaction_status != pq.TransactionStatus.IDLE:
                pg.send_query_params(b"ROLLBACK", None)
                pg.pipeline_sync()
                await _exchange(pg)
            raise ServerError(failed)
        row = results[query_at]
        return tuple(row.get_value(0, i) for i in range(row.nfields))
    except psycopg.OperationalError as exc:
        raise PipelineConnectionError(str(exc)) from None


async def _exchange(pg: pq.abc.PGconn) -> list[pq.abc.PGresult]:
    """Send what is queued, then collect one result per queued statement up to the Sync's."""
    loop = asyncio.get_running_loop()
    while pg.flush() == 1:
        await _ready(loop, pg.socket, writable=True)
    results: list[pq.abc.PGresult] = []
    while True:
        if pg.is_busy():
            await _ready(loop, pg.socket, writable=False)
            pg.consume_input()
            continue
        result = pg.get_result()
        if result is None:  # the end of one statement's results
            continue
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            return results
        results.append(result)


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, writable: bool) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    add, remove = (loop.add_writer, loop.remove_writer) if writable else (loop.add_reader, loop.remove_reader)
    add(fd, wake)
    try:
        await ready
    finally:
        remove(fd)
