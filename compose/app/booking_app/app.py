"""The ASGI app: three routes, JSON everywhere, never a stack trace."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from booking_app import db, fixtures
from booking_app.config import MAX_BODY_BYTES, Settings
from booking_app.errors import ApiError, BodyTooLarge, InvalidBody, NotFound
from booking_app.model import parse_booking_request, parse_json_object
from booking_app.safety_nets import NetsGate
from booking_app.strategies import strategy_class

log = logging.getLogger("booking_app")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 beyond `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidBody("bad Content-Length")
        if int(declared) > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


# Set once per start of the app (booking_app.__main__), before its workers fork: every worker
# answers the same id, and a restart gives a new one (CONTRACT.md section 4).
BOOT_ID_ENV = "BOOKING_APP_BOOT_ID"


async def health(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    boot_id = os.environ.get(BOOT_ID_ENV, "")
    nets = request.app.state.nets
    # A worker's first contact pings with the nets' own query: one round trip, not two.
    if await db.ping(request.app.state.health_pool, settings.health_timeout_s, None if nets.ready else nets.check):
        with db.database_errors():
            # A no-op once the check found the nets right; otherwise they are set now, on the
            # health pool's connection, just used: a fresh start costs no second connect.
            await nets.ensure(request.app.state.health_pool)
        return JSONResponse({"status": "ok", "strategy": settings.strategy, "boot_id": boot_id})
    return JSONResponse({"status": "unavailable", "error": "database_unavailable", "boot_id": boot_id},
                        status_code=503)


async def create_fixtures(request: Request) -> JSONResponse:
    if not request.app.state.settings.e2e:
        raise NotFound("E2E endpoints are off (E2E=true enables them)")
    _, seed = fixtures.parse_fixture_request(parse_json_object(await read_body(request)))
    with db.database_errors():
        await request.app.state.nets.ensure(request.app.state.pool)
        async with request.app.state.pool.acquire() as conn:
            body = await fixtures.create_sc1(conn, seed)
    return JSONResponse(body, status_code=201)


async def create_booking(request: Request) -> JSONResponse:
    booking_request = parse_booking_request(await read_body(request))
    with db.database_errors():
        await request.app.state.nets.ensure(request.app.state.pool)
        decision = await request.app.state.strategy.book(booking_request)
    background = BackgroundTask(decision.after_response) if decision.after_response else None
    return JSONResponse(decision.body(), status_code=decision.outcome.value, background=background)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if exc.status >= 500:
        log.warning("%s %s -> %s %s", request.method, request.url.path, exc.status, exc)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": code}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Logged with its traceback for the operator; the client gets JSON and no internals.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal"}, status_code=500)


def create_app(settings: Settings | None = None) -> Starlette:
    """The app for one worker process (uvicorn calls this factory in every worker)."""
    settings = settings or Settings.from_env()
    strategy_cls = strategy_class(settings.strategy)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await db.create_pool(settings)
        # Its own connection: /health says whether the database answers, not whether a burst of
        # bookings has every pooled connection busy.
        app.state.health_pool = await db.create_pool(settings, max_size=1)
        app.state.strategy = strategy_cls(app.state.pool, settings.window_ms)
        app.state.nets = NetsGate(settings.strategy)
        try:
            yield
        finally:
            # Graceful stop: uvicorn has drained in-flight requests before lifespan shutdown.
            await app.state.health_pool.close()
            await app.state.pool.close()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/e2e/fixtures", create_fixtures, methods=["POST"]),
            Route("/bookings", create_booking, methods=["POST"]),
        ],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
