"""The asyncpg pool, the per-request transaction, and the schema cache with its reload triggers."""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from simcity_rest.config import Config
from simcity_rest.errors import RestError, SingularityError, UnavailableError, from_postgres, pg_error
from simcity_rest.pipeline import REQUEST_GUCS, PipelineConnectionError, ReadPool, ServerError
from simcity_rest.schema import SchemaCache
from simcity_rest.sqlbuilder import Statement

log = logging.getLogger("simcity_rest")

# PostgREST's first statement of every transaction SET LOCALs the role and the request GUCs. For a
# write it goes to the server in ONE simple-query exchange with the BEGIN (asyncpg sends a Query
# message with several statements as it is when there are no arguments), so the values are inlined
# as literals. Reads go through pipeline.py instead: the whole transaction in one exchange.


def _literal(value: str) -> str:
    """`value` as an E'' string literal: inside E'' only a backslash and a quote are special whatever
    standard_conforming_strings says, so doubling both quotes it exactly. A NUL cannot be in a
    PostgreSQL string (and would end the Query message early): refused as PostgreSQL refuses a
    NUL in a bind parameter."""
    if "\x00" in value:
        raise pg_error("22021", 'invalid byte sequence for encoding "UTF8": 0x00')
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def write_setup_sql(ctx: "Context") -> str:
    """BEGIN and the setup statement, one Query message: the transaction is open and its GUCs set
    (set_config(..., true) = SET LOCAL: nothing outlives the transaction) before the request's
    statement is even parsed, so RLS and grants are those of ctx.role."""
    calls = ", ".join(f"pg_catalog.set_config('{guc}', {_literal(v)}, true)" for guc, v in zip(REQUEST_GUCS, ctx.gucs()))
    return f"BEGIN READ WRITE; SELECT {calls}, pg_catalog.set_config('request.cookies', '{{}}', true)"


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Pool reset hook: skip asyncpg's default RESET ALL/UNLISTEN round trip on every release.

    Safe because a request changes nothing beyond its transaction (set_config(..., true) = SET LOCAL),
    and asyncpg still rolls back any transaction left open before this hook runs.
    """


# `reset=` exists from asyncpg 0.30; older versions keep their default reset (one more round trip).
_POOL_RESET: dict[str, Any] = (
    {"reset": _keep_session} if "reset" in inspect.signature(asyncpg.create_pool).parameters else {}
)


@dataclass(frozen=True)
class Context:
    """Who runs a statement and how: the GUCs of PostgREST's transaction setup."""

    search_path: str
    role: str
    claims_json: str
    method: str
    path: str
    headers_json: str
    authenticated: bool

    def gucs(self) -> tuple[str, ...]:
        """The values of pipeline.REQUEST_GUCS, in order."""
        return (self.search_path, self.role, self.claims_json, self.method, self.path, self.headers_json)


@dataclass(frozen=True)
class Result:
    total: int | None
    rows: int
    body: str | None


class Database:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.pool: asyncpg.Pool | None = None
        self.cache: SchemaCache | None = None
        self._ready = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self.reads: ReadPool | None = None
        self._listener_task: asyncio.Task[None] | None = None

    async def start(self, retry_s: float = 0.5, max_retry_s: float = 8.0) -> None:
        """Connect and load the schema cache, retrying with backoff while the database is not up
        (PostgREST waits for its database too instead of exiting)."""
        delay = retry_s
        while True:
            try:
                self.pool = await asyncpg.create_pool(
                    self.config.db_uri, min_size=1, max_size=self.config.db_pool,
                    statement_cache_size=1024, max_inactive_connection_lifetime=300, **_POOL_RESET,
                )
                await self.reload()
                self.reads = ReadPool(self.config.db_uri, self.config.db_pool)
                break
            except (OSError, asyncio.TimeoutError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError) as exc:
                log.warning("database not reachable (%s); retrying in %.1f s", exc, delay)
                if self.pool is not None:
                    self.pool.terminate()
                    self.pool = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_retry_s)
        if self.config.db_channel_enabled:
            self._listener_task = asyncio.create_task(self._listen())

    async def close(self) -> None:
        if self._listener_task is not None:
            self._listener_task.cancel()
        if self.reads is not None:
            await self.reads.close()
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), timeout=5.0)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down anyway
                self.pool.terminate()

    async def reload(self) -> None:
        """Reload the schema cache; requests arriving meanwhile wait for it (as in PostgREST)."""
        assert self.pool is not None
        async with self._reload_lock:
            self._ready.clear()
            try:
                async with self.pool.acquire() as conn:
                    self.cache = await SchemaCache.load(conn, self.config.db_schemas)
                # Cached prepared statements may describe the old shapes of tables: drop them.
                await self.pool.expire_connections()
                log.info("schema cache loaded: %d relations", len(self.cache.tables))
            finally:
                self._ready.set()

    def request_reload(self) -> None:
        asyncio.get_running_loop().create_task(self._reload_logged())

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:  # noqa: BLE001 - keep serving with the old cache, as PostgREST does
            log.exception("schema cache reload failed")

    async def _listen(self) -> None:
        """LISTEN on PGRST_DB_CHANNEL; reconnect (and reload, as PostgREST does) when it drops."""
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.config.db_uri)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c: lost.set())

                def on_notify(_c: Any, _pid: int, _channel: str, payload: str) -> None:
                    if payload in ("", "reload schema"):
                        self.request_reload()

                await conn.add_listener(self.config.db_channel, on_notify)
                await lost.wait()
            except asyncio.CancelledError:
                if conn is not None:
                    await conn.close()
                raise
            except Exception as exc:  # noqa: BLE001 - the listener must survive database restarts
                log.warning("listener connection failed: %s", exc)
            await asyncio.sleep(1.0)
            self.request_reload()

    async def schema(self) -> SchemaCache:
        if not self._ready.is_set():
            await self._ready.wait()
        assert self.cache is not None
        return self.cache

    async def run(self, stmt: Statement, ctx: Context, *, readonly: bool, singular: bool) -> Result:
        """One transaction: setup GUCs, the statement, commit (or roll back on any error)."""
        if not readonly:
            return await self._write(stmt, ctx, singular)
        result = await self._read(stmt, ctx)
        _check_singular(result, singular)
        return result

    async def _read(self, stmt: Statement, ctx: Context) -> Result:
        """BEGIN READ ONLY, setup, the statement, COMMIT: one round trip (pipeline.py). A read has
        nothing to roll back, so a singular read's row count is checked after its COMMIT."""
        assert self.reads is not None
        try:
            total, rows, body = await self.reads.read(ctx.gucs(), stmt.sql, stmt.params)
        except asyncio.TimeoutError:
            raise _pool_timeout() from None
        except PipelineConnectionError as exc:
            raise UnavailableError("Database client error. Retrying the connection.", details=str(exc)) from None
        except ServerError as exc:
            raise from_postgres(exc, ctx.authenticated) from None
        return Result(None if total is None else int(total), int(rows or 0), None if body is None else body.decode())

    async def _write(self, stmt: Statement, ctx: Context, singular: bool) -> Result:
        """BEGIN + setup in one exchange, the statement, then COMMIT, or ROLLBACK on any error (a
        singular write returning other than one row included)."""
        assert self.pool is not None
        try:
            conn = await self.pool.acquire(timeout=10.0)
        except asyncio.TimeoutError:
            raise _pool_timeout() from None
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            raise UnavailableError("Database client error. Retrying the connection.", details=str(exc)) from None
        try:
            try:
                await conn.execute(write_setup_sql(ctx))
                row = await conn.fetchrow(stmt.sql, *stmt.params)
                result = Result(row[0], row[1], row[2])
                _check_singular(result, singular)
            except BaseException:
                if conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
            return result
        except asyncpg.PostgresError as exc:
            raise from_postgres(exc, ctx.authenticated) from None
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            raise UnavailableError("Database client error. Retrying the connection.", details=str(exc)) from None
        finally:
            # Release rolls back whatever transaction is still open, so nothing of it reaches the next request.
            await self.pool.release(conn)


def _pool_timeout() -> RestError:
    return RestError("Timed out acquiring connection from connection pool.", code="PGRST003", status=504)


def _check_singular(result: Result, singular: bool) -> None:
    if singular and result.rows != 1:
        raise SingularityError(
            "JSON object requested, multiple (or no) rows returned", details=f"The result contains {result.rows} rows",
        )
