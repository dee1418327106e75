"""The per-request transaction (pipeline.py's pool), and the schema cache with its reload triggers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from simcity_rest.config import Config
from simcity_rest.errors import RestError, SingularityError, UnavailableError, from_postgres
from simcity_rest.pipeline import PipelineConnectionError, Row, ServerError, TransactionPool
from simcity_rest.schema import SchemaCache
from simcity_rest.sqlbuilder import Statement

log = logging.getLogger("simcity_rest")


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

    @classmethod
    def of(cls, row: Row) -> "Result":
        """From the statement's one row (total, rows, body), in PostgreSQL's text format."""
        total, rows, body = row
        return cls(None if total is None else int(total), int(rows or 0), None if body is None else body.decode())


class Database:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.requests = TransactionPool(config.db_uri, config.db_pool)
        self.cache: SchemaCache | None = None
        self._ready = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._listener_task: asyncio.Task[None] | None = None

    async def start(self, retry_s: float = 0.5, max_retry_s: float = 8.0) -> None:
        """Load the schema cache, retrying with backoff while the database is not up (PostgREST
        waits for its database too instead of exiting)."""
        delay = retry_s
        while True:
            try:
                await self.reload()
                break
            except (OSError, asyncio.TimeoutError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError) as exc:
                log.warning("database not reachable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_retry_s)
        if self.config.db_channel_enabled:
            self._listener_task = asyncio.create_task(self._listen())

    async def close(self) -> None:
        if self._listener_task is not None:
            self._listener_task.cancel()
        await self.requests.close()

    async def reload(self) -> None:
        """Reload the schema cache over a connection of its own; requests arriving meanwhile wait
        for it (as in PostgREST). The requests' prepared statements need no reset: the SQL built
        from a new cache is new text, and PostgreSQL re-plans old statements after DDL itself."""
        async with self._reload_lock:
            self._ready.clear()
            try:
                conn = await asyncio.wait_for(asyncpg.connect(self.config.db_uri), timeout=30.0)
                try:
                    self.cache = await SchemaCache.load(conn, self.config.db_schemas)
                finally:
                    await conn.close()
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
        """One transaction, one round trip: BEGIN, setup GUCs, the statement, COMMIT (or ROLLBACK on
        any error). A singular write's row count is checked before it commits (a second exchange);
        a read has nothing to undo, so its count is checked after."""

        def one_row_or_roll_back(row: Row) -> None:
            _check_singular(Result.of(row), True)

        check = one_row_or_roll_back if singular and not readonly else None
        try:
            row = await self.requests.transaction(
                ctx.gucs(), stmt.sql, stmt.params, readonly=readonly, before_commit=check,
            )
        except asyncio.TimeoutError:
            raise RestError("Timed out acquiring connection from connection pool.", code="PGRST003", status=504) from None
        except PipelineConnectionError as exc:
            raise UnavailableError("Database client error. Retrying the connection.", details=str(exc)) from None
        except ServerError as exc:
            raise from_postgres(exc, ctx.authenticated) from None
        result = Result.of(row)
        _check_singular(result, singular)
        return result


def _check_singular(result: Result, singular: bool) -> None:
    if singular and result.rows != 1:
        raise SingularityError(
            "JSON object requested, multiple (or no) rows returned", details=f"The result contains {result.rows} rows",
        )
