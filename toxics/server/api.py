"""The HTTP API of Toxiproxy 2.12.0 as a small ASGI app (served by uvicorn in the proxies' loop).

Routing, status codes, headers and bodies follow upstream's gorilla/mux + net/http behaviour:
JSON success bodies, errors as JSON served as text/plain, 404/405 for unknown paths/methods, and
403 for browser user agents on known routes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from toxics.server import errors
from toxics.server.collection import ProxyCollection
from toxics.server.errors import ApiError
from toxics.server.jsonio import decode, encode, error_body

VERSION = "2.12.0"
MAX_BODY = 8 * 1024 * 1024

log = logging.getLogger("toxiproxy.api")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Response:
    def __init__(self, status: int, body: bytes = b"", content_type: str | None = "application/json") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type if body or status not in (204, 405) else None
        self.extra: list[tuple[bytes, bytes]] = []

    @classmethod
    def json(cls, value: Any, status: int = 200) -> "Response":
        return cls(status, encode(value))

    @classmethod
    def text(cls, status: int, text: str) -> "Response":
        # net/http's http.Error: text/plain, nosniff, and a trailing newline.
        response = cls(status, text.encode() + b"\n", "text/plain; charset=utf-8")
        response.extra.append((b"x-content-type-options", b"nosniff"))
        return response

    @classmethod
    def error(cls, error: ApiError) -> "Response":
        return cls.text(error.status, error_body(error).decode())

    async def send(self, send: Send) -> None:
        headers = [(b"content-length", str(len(self.body)).encode()), *self.extra]
        if self.content_type:
            headers.append((b"content-type", self.content_type.encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


Handler = Callable[..., Awaitable[Response]]


class Api:
    def __init__(self, collection: ProxyCollection) -> None:
        self.collection = collection
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(pattern), methods) for pattern, methods in (
                (r"/reset", {"POST": self.reset}),
                (r"/proxies", {"GET": self.proxy_index, "POST": self.proxy_create}),
                (r"/populate", {"POST": self.populate}),
                (r"/proxies/(?P<proxy>[^/]+)", {
                    "GET": self.proxy_show, "POST": self.proxy_update,
                    "PATCH": self.proxy_update, "DELETE": self.proxy_delete}),
                (r"/proxies/(?P<proxy>[^/]+)/toxics", {"GET": self.toxic_index, "POST": self.toxic_create}),
                (r"/proxies/(?P<proxy>[^/]+)/toxics/(?P<toxic>[^/]+)", {
                    "GET": self.toxic_show, "POST": self.toxic_update,
                    "PATCH": self.toxic_update, "DELETE": self.toxic_delete}),
                (r"/version", {"GET": self.version}),
            )
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await self._respond(scope, receive)
        await response.send(send)

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        path, method = scope["path"], scope["method"]
        for pattern, methods in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = methods.get(method)
            if handler is None:
                return Response(405)
            user_agent = dict(scope["headers"]).get(b"user-agent", b"")
            if user_agent.startswith(b"Mozilla/"):
                return Response.text(403, "User agent not allowed")
            try:
                body = await _read_body(receive)
                return await handler(body, **match.groupdict())
            except ApiError as error:
                return Response.error(error)
            except Exception as exc:  # the server must outlive any request
                log.exception("%s %s failed", method, path)
                return Response.error(errors.internal(f"internal error: {exc}"))
        return Response.text(404, "404 page not found")

    async def version(self, body: bytes) -> Response:
        return Response(200, f'{{"version": "{VERSION}"}}\n'.encode(), "application/json;charset=utf-8")

    async def reset(self, body: bytes) -> Response:
        await self.collection.reset()
        return Response(204)

    async def proxy_index(self, body: bytes) -> Response:
        return Response.json({name: p.to_json() for name, p in self.collection.proxies.items()})

    async def proxy_create(self, body: bytes) -> Response:
        proxy = await self.collection.create(decode(body))
        return Response.json(proxy.to_json(), 201)

    async def populate(self, body: bytes) -> Response:
        # Populate answers its errors itself, as JSON with an extra `"proxies": null`.
        try:
            proxies = await self.collection.populate(decode(body))
        except ApiError as error:
            return Response.json({"error": error.message, "status": error.status, "proxies": None}, error.status)
        return Response.json({"proxies": [p.to_json() for p in proxies] or None}, 201)

    async def proxy_show(self, body: bytes, proxy: str) -> Response:
        return Response.json(self.collection.get(proxy).to_json())

    async def proxy_update(self, body: bytes, proxy: str) -> Response:
        self.collection.get(proxy)
        updated = await self.collection.update(proxy, decode(body))
        return Response.json(updated.to_json())

    async def proxy_delete(self, body: bytes, proxy: str) -> Response:
        await self.collection.remove(proxy)
        return Response(204)

    async def toxic_index(self, body: bytes, proxy: str) -> Response:
        return Response.json([entry.to_json() for entry in self.collection.get(proxy).toxics.entries()])

    async def toxic_create(self, body: bytes, proxy: str) -> Response:
        self.collection.get(proxy)
        entry = await self.collection.toxic_add(proxy, decode(body))
        return Response.json(entry.to_json())

    async def toxic_show(self, body: bytes, proxy: str, toxic: str) -> Response:
        return Response.json(self.collection.get(proxy).toxics.get(toxic).to_json())

    async def toxic_update(self, body: bytes, proxy: str, toxic: str) -> Response:
        self.collection.get(proxy).toxics.get(toxic)
        entry = await self.collection.toxic_update(proxy, toxic, decode(body))
        return Response.json(entry.to_json())

    async def toxic_delete(self, body: bytes, proxy: str, toxic: str) -> Response:
        await self.collection.toxic_remove(proxy, toxic)
        return Response(204)


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.BAD_REQUEST_BODY.wrap(f"body larger than {MAX_BODY} bytes")
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)
