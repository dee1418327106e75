"""The HTTP layer: a lean ASGI app turning PostgREST requests into one Builder statement each.

Routes: `/` (OpenAPI), `/<table>`, `/rpc/<fn>` (refused), each also under Supabase's `/rest/v1`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from simcity_rest.auth import Authenticator, Identity
from simcity_rest.config import Config
from simcity_rest.database import Context, Database, Result
from simcity_rest.errors import (
    BodyTooLargeError,
    InvalidBodyError, NoFunctionError, NotAcceptableError, RangeError, RestError, UnacceptableSchemaError,
)
from simcity_rest.openapi import openapi_document
from simcity_rest.querystring import parse_query
from simcity_rest.schema import SchemaCache, Table, quote_ident
from simcity_rest.sqlbuilder import Builder, Statement

log = logging.getLogger("simcity_rest")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = "application/json; charset=utf-8"
OBJECT = "application/vnd.pgrst.object+json; charset=utf-8"
SUPABASE_PREFIX = "/rest/v1"
# Bodies past this are refused (413): SC-1 writes a booking at a time, fixtures a few rows.
MAX_BODY_BYTES = 8 * 1024 * 1024
_RANGE = re.compile(r"^\s*(?:\w+=)?(\d{1,18})-(\d{0,18})\s*$")


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []


class RestApp:
    """ASGI application; `database` must be started before serving."""

    def __init__(self, config: Config, database: Database | None = None) -> None:
        self.config = config
        self.db = database or Database(config)
        self.auth = Authenticator(config.jwt_secret, config.db_anon_role, config.jwt_aud)
        self._reads: dict[tuple[Any, ...], tuple[SchemaCache, int, Statement]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        try:
            body = await self._body(method, headers, receive)
            response = await self.handle(method, scope["path"], scope["query_string"].decode("latin-1"), headers, body)
        except RestError as exc:
            response = Response(exc.status, exc.body(), [("content-type", JSON), *exc.headers])
        except Exception:  # noqa: BLE001 - a bug must answer 500 in PostgREST's shape, not drop the connection
            log.exception("unhandled error")
            err = RestError("Internal server error", code="PGRST000", status=500)
            response = Response(500, err.body(), [("content-type", JSON)])
        raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        raw_headers.append((b"content-length", str(len(response.body)).encode()))
        if method == "HEAD":
            response.body = b""
        await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _body(self, method: str, headers: dict[str, str], receive: Receive) -> bytes:
        """The request body, read only once the caller is authenticated (a bad token costs no
        read), in linear time and up to MAX_BODY_BYTES (413 past it, before reading the rest)."""
        if method not in ("POST", "PATCH", "PUT", "DELETE"):
            return b""
        self.auth.identify(headers.get("authorization"), time.time())
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise BodyTooLargeError(f"Request body larger than {MAX_BODY_BYTES} bytes")
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise BodyTooLargeError(f"Request body larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def handle(self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes) -> Response:
        if path == SUPABASE_PREFIX or path.startswith(SUPABASE_PREFIX + "/"):
            path = path[len(SUPABASE_PREFIX):] or "/"
        if method == "OPTIONS":
            return _cors_preflight(headers)
        identity = self.auth.identify(headers.get("authorization"), time.time())
        cache = await self.db.schema()
        schema = self._schema(method, headers)
        if path == "/":
            if method not in ("GET", "HEAD"):
                return Response(405, b"", [("allow", "GET,HEAD,OPTIONS")])
            doc = openapi_document(cache, schema, headers.get("host", ""))
            return Response(200, doc, [("content-type", "application/openapi+json; charset=utf-8")])
        segments = path.strip("/").split("/")
        if len(segments) == 2 and segments[0] == "rpc":
            raise NoFunctionError(
                f"Could not find the function {schema}.{segments[1]} without parameters in the schema cache",
                hint="simcity-rest serves tables only",
            )
        if len(segments) != 1 or not segments[0] or path.endswith("/"):
            return Response(404, b"", [])
        table = cache.table(schema, segments[0])
        singular = _wants_object(headers.get("accept"))
        prefer = _prefer(headers.get("prefer"))
        ctx = Context(
            search_path=f"{quote_ident(schema)}, public",
            role=identity.role,
            claims_json=identity.claims_json,
            method=method,
            path=path,
            headers_json=json.dumps(headers),
            authenticated=identity.authenticated,
        )
        if method in ("GET", "HEAD"):
            return await self._read(cache, table, query_string, headers, prefer, ctx, singular)
        query = parse_query(query_string)
        builder = Builder(cache, table, query)
        if method == "POST":
            return await self._insert(builder, table.name, table.primary_key, body, prefer, ctx, singular, path)
        if method == "PATCH":
            return await self._update(builder, body, prefer, ctx, singular)
        if method == "DELETE":
            return await self._delete(builder, prefer, ctx, singular)
        return Response(405, b"", [("allow", "OPTIONS,GET,HEAD,POST,PATCH,DELETE")])

    def _schema(self, method: str, headers: dict[str, str]) -> str:
        wanted = headers.get("accept-profile" if method in ("GET", "HEAD") else "content-profile")
        schemas = self.config.db_schemas
        if wanted is None:
            return schemas[0]
        if wanted not in schemas:
            raise UnacceptableSchemaError(f"The schema must be one of the following: {', '.join(schemas)}")
        return wanted

    async def _read(
        self, cache: SchemaCache, table: Table, query_string: str, headers: dict[str, str], prefer: dict[str, str],
        ctx: Context, singular: bool,
    ) -> Response:
        count = prefer.get("count") in ("exact", "planned", "estimated")
        range_header = headers.get("range") if ctx.method == "GET" else None
        # The statement depends only on these inputs: repeated reads (SimCity's snapshots) skip the
        # parser and the builder. The cache object is part of the key, so a reload invalidates it.
        key = (id(cache), table.schema, table.name, query_string, singular, count, range_header)
        cached = self._reads.get(key)
        if cached is None or cached[0] is not cache:
            offset, stmt = self._build_read(cache, table, query_string, range_header, count, singular)
            if len(self._reads) >= 2048:
                self._reads.clear()
            self._reads[key] = (cache, offset, stmt)
        else:
            _, offset, stmt = cached
        result = await self.db.run(stmt, ctx, readonly=True, singular=singular)
        total = result.total
        if total is not None and offset > total:
            raise RangeError(
                "Requested range not satisfiable",
                details=f"An offset of {offset} was requested, but there are only {total} rows.",
                headers=(("content-range", f"*/{total}"),),
            )
        content_range = _content_range(offset, result.rows, total)
        status = 200
        if total is not None and result.rows < total and not singular:
            status = 206
        out_headers = [("content-type", OBJECT if singular else JSON), ("content-range", content_range)]
        if count:
            out_headers.append(("preference-applied", f"count={prefer['count']}"))
        return Response(status, (result.body or "").encode(), out_headers)

    def _build_read(
        self, cache: SchemaCache, table: Table, query_string: str, range_header: str | None, count: bool, singular: bool,
    ) -> tuple[int, Statement]:
        query = parse_query(query_string)
        builder = Builder(cache, table, query)
        offset = query.offset.get((), 0)
        limit = query.limit.get(())
        if range_header:
            m = _RANGE.match(range_header)
            if m:
                low = int(m.group(1))
                high = int(m.group(2)) if m.group(2) else None
                if high is not None and high < low:
                    raise RangeError(
                        "Requested range not satisfiable",
                        details="The lower boundary must be lower than or equal to the upper boundary in the Range header.",
                    )
                # Intersect the header's range with limit/offset, as PostgREST's restrictRange does.
                end = high
                if limit is not None:
                    end = offset + limit - 1 if end is None else min(end, offset + limit - 1)
                offset = max(low, offset)
                limit = None if end is None else max(0, end - offset + 1)
        if self.config.db_max_rows is not None:
            limit = self.config.db_max_rows if limit is None else min(limit, self.config.db_max_rows)
        return offset, builder.read(limit=limit, offset=offset, count=count, singular=singular)

    def _representation(
        self, result: Result, prefer: dict[str, str], singular: bool, status_with_body: int, status_without: int,
        content_range: str,
    ) -> Response:
        ret = prefer.get("return")
        headers = [("content-range", content_range)]
        if ret:
            headers.append(("preference-applied", f"return={ret}"))
        if ret == "representation":
            headers.insert(0, ("content-type", OBJECT if singular else JSON))
            return Response(status_with_body, (result.body or ("null" if singular else "[]")).encode(), headers)
        return Response(status_without, b"", headers)

    async def _insert(
        self, builder: Builder, table: str, pk: tuple[str, ...], body: bytes, prefer: dict[str, str], ctx: Context,
        singular: bool, path: str,
    ) -> Response:
        rows, keys = _json_rows(body, builder.query.columns is not None)
        ret = prefer.get("return")
        returning = ret == "representation" or (ret == "headers-only" and bool(pk))
        resolution = prefer.get("resolution")
        stmt = builder.insert(
            json.dumps(rows), keys, returning=returning, singular=singular and ret == "representation",
            resolution=resolution if resolution in ("merge-duplicates", "ignore-duplicates") else None,
        )
        result = await self.db.run(stmt, ctx, readonly=False, singular=singular and ret == "representation")
        response = self._representation(result, prefer, singular, 201, 201, f"*/{_write_total(prefer, result)}")
        if ret == "headers-only" and pk and result.body and len(rows) == 1:
            first = json.loads(result.body)
            first = first[0] if isinstance(first, list) and first else first
            if isinstance(first, dict) and all(k in first for k in pk):
                location = "&".join(f"{k}=eq.{quote(str(first[k]), safe='')}" for k in pk)
                response.headers.append(("location", f"{path}?{location}"))
        return response

    async def _update(self, builder: Builder, body: bytes, prefer: dict[str, str], ctx: Context, singular: bool) -> Response:
        rows, keys = _json_rows(body, builder.query.columns is not None)
        if len(rows) != 1 or isinstance(_loads(body), list):
            raise InvalidBodyError("Empty or invalid json", details="PATCH takes a single JSON object")
        returning = prefer.get("return") == "representation"
        if not keys:
            # PostgREST answers an empty PATCH without touching the table.
            empty = Result(None, 0, "[]")
            return self._representation(empty, prefer, singular, 200, 204, "*/*")
        stmt = builder.update(json.dumps(rows[0]), keys, returning=returning, singular=singular and returning)
        result = await self.db.run(stmt, ctx, readonly=False, singular=singular and returning)
        return self._representation(
            result, prefer, singular, 200, 204, _content_range(0, result.rows, result.rows if _counted(prefer) else None),
        )

    async def _delete(self, builder: Builder, prefer: dict[str, str], ctx: Context, singular: bool) -> Response:
        returning = prefer.get("return") == "representation"
        stmt = builder.delete(returning=returning, singular=singular and returning)
        result = await self.db.run(stmt, ctx, readonly=False, singular=singular and returning)
        return self._representation(
            result, prefer, singular, 200, 204, _content_range(0, result.rows, result.rows if _counted(prefer) else None),
        )


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _json_rows(body: bytes, have_columns: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """The body as a list of objects and its keys; PGRST102 as PostgREST words it."""
    data = _loads(body)
    if isinstance(data, dict):
        return [data], list(data)
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        if not data:
            return [], []
        keys = list(data[0])
        if not have_columns:
            for row in data[1:]:
                if set(row) != set(keys):
                    raise InvalidBodyError("All object keys must match")
        else:
            keys = list(dict.fromkeys(k for row in data for k in row))
        return data, keys
    raise InvalidBodyError("Empty or invalid json")


def _counted(prefer: dict[str, str]) -> bool:
    return prefer.get("count") in ("exact", "planned", "estimated")


def _write_total(prefer: dict[str, str], result: Result) -> str:
    """A write's count is the number of rows it affected (Content-Range `*/N` with Prefer: count)."""
    return str(result.rows) if _counted(prefer) else "*"


def _content_range(offset: int, rows: int, total: int | None) -> str:
    total_text = "*" if total is None else str(total)
    if rows == 0:
        return f"*/{total_text}"
    return f"{offset}-{offset + rows - 1}/{total_text}"


def _prefer(header: str | None) -> dict[str, str]:
    prefs: dict[str, str] = {}
    if header:
        for token in header.split(","):
            key, _, value = token.strip().partition("=")
            if key and key not in prefs:
                prefs[key] = value.strip()
    return prefs


def _wants_object(accept: str | None) -> bool:
    """True for vnd.pgrst.object; 406 PGRST107 when nothing acceptable is offered."""
    if not accept:
        return False
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for media in types:
        if media in ("application/vnd.pgrst.object+json", "application/vnd.pgrst.object"):
            return True
        if media in ("application/json", "application/*", "*/*", "", "application/vnd.pgrst.array+json"):
            return False
    raise NotAcceptableError(f"None of these media types are available: {', '.join(types)}")


def _cors_preflight(headers: dict[str, str]) -> Response:
    return Response(200, b"", [
        ("access-control-allow-origin", headers.get("origin", "*")),
        ("access-control-allow-methods", "GET, POST, PATCH, PUT, DELETE, OPTIONS, HEAD"),
        ("access-control-allow-headers", headers.get("access-control-request-headers", "Authorization")),
        ("access-control-max-age", "86400"),
    ])


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


__all__ = ["RestApp", "Identity"]
