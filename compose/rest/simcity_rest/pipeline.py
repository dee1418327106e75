"""PostgREST's per-request transaction in ONE round trip: BEGIN, the SET LOCAL setup, the statement
and COMMIT go to PostgreSQL together in libpq's pipeline mode (through psycopg's libpq wrapper),
and their answers come back together.

asyncpg sends a statement only once the previous one has answered, so through it this transaction
costs a round trip per statement. The server runs a pipeline's messages in order, each after the one
before has finished, so the role and claims are set before the statement is even parsed: grants and
RLS are those of the request. A write whose row count must be checked before it may commit (a
singular write) takes a second exchange for its COMMIT or ROLLBACK.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable, Sequence
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
    """The connection could not be opened or was lost (a write may or may not have committed)."""


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


Row = tuple[bytes | None, ...]


@dataclass
class _Connection:
    # psycopg opens the connection (DNS, TLS, authentication) and owns it; we drive its libpq object.
    owner: psycopg.AsyncConnection[object]
    prepared: dict[str, bytes] = field(default_factory=dict)  # SQL -> name of its prepared statement
    names_used: int = 0

    @property
    def pg(self) -> pq.abc.PGconn:
        return self.owner.pgconn


class TransactionPool:
    """Up to `size` pipelined connections, opened on demand, one request on each at a time."""

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn = dsn
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    async def transaction(
        self, setup: Sequence[str], sql: str, params: Sequence[object], *, readonly: bool,
        before_commit: Callable[[Row], None] | None = None, timeout_s: float = 10.0,
    ) -> Row:
        """Run `sql` in one transaction set up with `setup` (SETUP_SQL's six values) and return its
        one row. `before_commit` sees the row while the transaction is still open: if it raises, the
        transaction rolls back. Raises ServerError, PipelineConnectionError, or asyncio.TimeoutError
        when no connection is free within `timeout_s`."""
        setup_params = [encode_param(v) for v in setup]
        query_params = [encode_param(p) for p in params]
        if self._slots.locked():
            await asyncio.wait_for(self._slots.acquire(), timeout_s)
        else:
            await self._slots.acquire()  # free: no timer (wait_for's own task costs more than the acquire)
        conn: _Connection | None = None
        try:
            conn = await self._take_idle() or await self._connect()
            return await _transaction(conn, setup_params, sql, query_params, readonly, before_commit)
        finally:
            if conn is not None:
                # Back to the pool only when no transaction is open and no answer is pending: not
                # after a lost connection or an exchange cut short (a cancelled request).
                pg = conn.pg
                if not self._closed and pg.status == pq.ConnStatus.OK and pg.transaction_status == pq.TransactionStatus.IDLE:
                    self._idle.append(conn)
                else:
                    await conn.owner.close()
            self._slots.release()

    async def _take_idle(self) -> _Connection | None:
        """An idle connection still alive: one the server closed meanwhile (a restart, an idle
        timeout, pg_terminate_backend) has something to read, its farewell or EOF, and is dropped
        here, before any request is sent on it (a zero-timeout poll: no round trip)."""
        while self._idle:
            conn = self._idle.pop()
            pg = conn.pg
            try:
                # A farewell message is read first and EOF next; a live connection is left with
                # nothing to read after one read of whatever notice it had.
                for _ in range(3):
                    if not select.select([pg.socket], [], [], 0)[0]:
                        break
                    pg.consume_input()
            except (psycopg.OperationalError, OSError):
                pass  # dead: its status now says so
            if pg.status == pq.ConnStatus.OK and pg.transaction_status == pq.TransactionStatus.IDLE:
                return conn
            await conn.owner.close()
        return None

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


class _Batch:
    """Statements queued on a pipelined connection, sent with one Sync: one result each comes back."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.sent = 0
        self.parses: list[tuple[int, str, bytes]] = []  # (result index, SQL, name) of statements parsed here

    def command(self, sql: bytes) -> None:
        self.conn.pg.send_query_params(sql, None)
        self.sent += 1

    def prepared(self, sql: str, values: list[bytes | None]) -> int:
        """Queue `sql` (prepared in the same batch the first time this connection meets it); its result's index."""
        conn = self.conn
        name = conn.prepared.get(sql)
        if name is None:
            name = f"simcity_{conn.names_used}".encode()
            conn.names_used += 1
            conn.pg.send_prepare(name, sql.encode())
            self.parses.append((self.sent, sql, name))
            self.sent += 1
        conn.pg.send_query_prepared(name, values)
        self.sent += 1
        return self.sent - 1

    async def run(self) -> list[pq.abc.PGresult]:
        """Send and collect; on an error roll back what is still open and raise it as ServerError."""
        pg = self.conn.pg
        pg.pipeline_sync()
        results = await _exchange(pg)
        for at, sql, name in self.parses:  # only a Parse that succeeded left a statement on the server
            if results[at].status == pq.ExecStatus.COMMAND_OK:
                self.conn.prepared[sql] = name
        failed = next((r for r in results if r.status == pq.ExecStatus.FATAL_ERROR), None)
        if failed is not None:
            if pg.transaction_status != pq.TransactionStatus.IDLE:
                await _end(self.conn, b"ROLLBACK")
            raise ServerError(failed)
        return results


async def _transaction(
    conn: _Connection, setup: list[bytes | None], sql: str, params: list[bytes | None], readonly: bool,
    before_commit: Callable[[Row], None] | None,
) -> Row:
    try:
        batch = _Batch(conn)
        if len(conn.prepared) >= MAX_PREPARED:
            batch.command(b"DEALLOCATE ALL")
            conn.prepared.clear()
        batch.command(b"BEGIN READ ONLY" if readonly else b"BEGIN READ WRITE")
        batch.prepared(SETUP_SQL, setup)
        at = batch.prepared(sql, params)
        if before_commit is None:
            batch.command(b"COMMIT")
        result = (await batch.run())[at]
        row = tuple(result.get_value(0, i) for i in range(result.nfields))
        if before_commit is not None:
            try:
                before_commit(row)
            except BaseException:
                await _end(conn, b"ROLLBACK")
                raise
            await _end(conn, b"COMMIT")
        return row
    except psycopg.OperationalError as exc:
        raise PipelineConnectionError(str(exc)) from None


async def _end(conn: _Connection, command: bytes) -> None:
    """COMMIT or ROLLBACK in an exchange of its own; a failed COMMIT raises (and has rolled back)."""
    conn.pg.send_query_params(command, None)
    conn.pg.pipeline_sync()
    [result] = await _exchange(conn.pg)
    if result.status == pq.ExecStatus.FATAL_ERROR:
        raise ServerError(result)


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
        if pg.status != pq.ConnStatus.OK:  # lost: its last result, if any, is libpq's own report of it
            raise psycopg.OperationalError(pg.get_error_message())
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
