"""The client: how SC-1 talks to the target (CONTRACT.md sections 1 and 2), and nothing else.

`AppClient` creates fixtures and sends booking intents through the client-app hop; every call's
outcome is recorded, and a lost answer is UNKNOWN, never a failure. `TruthReader` reads the
database truth through REST in ONE request per snapshot, with the service-role key, on one
kept-alive connection for the whole run.

Booking requests travel on `PreparedBooking`s: each on a connection of its own
(`ClientConnection`, its answers read by harness.http1), opened BEFORE the request is released.
httpx cannot do the two things concurrent demand needs: open several connections ahead of a
barrier so that their requests leave in the same instant (their send skew is then microseconds,
not a TCP handshake), and hold a request half-sent so that a later retry of the same intent
overtakes it on the wire.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_fixed

from harness.errors import InfrastructureError, RestUnreachableError, UsageError
from harness.http1 import AnswerReader, MalformedAnswerError, Origin, encode_request
from harness.stacks._wait import PROBE_TIMEOUT_S
from harness.tls import tls_context
from harness.contract import JSON, SlotSnapshot, parse_snapshots, snapshot_params
from harness.history import Fixture, Intent, Process


@dataclass(frozen=True)
class BookingReply:
    """What one POST /bookings got: an HTTP answer, or none (`status=None`, with the error)."""

    status: int | None
    body: JSON
    latency_ms: float
    error: str | None = None


# What a request that got no whole answer raises (a refused or reset connection, a timeout, a
# malformed answer): retried where a retry is safe, otherwise the outcome is unknown.
TRANSPORT_ERRORS = (OSError, MalformedAnswerError, asyncio.TimeoutError)


@functools.lru_cache(maxsize=64)
def _post(host: str, target: str, body: bytes) -> bytes:
    """A POST of JSON, encoded once per distinct request."""
    return encode_request("POST", target, [
        ("Host", host), ("Content-Type", "application/json"), ("Connection", "close"), ("User-Agent", "simcity-sc1"),
    ], body)


async def exchange(origin: Origin, request: bytes) -> tuple[int, bytes]:
    """One request on a connection of its own: (status, body); OSError or MalformedAnswerError
    when no whole answer came. The caller bounds it in time."""
    client = await ClientConnection.open(origin)
    try:
        return await client.expect(request)
    finally:
        client.close()


class ClientConnection(asyncio.Protocol):
    """One HTTP/1.1 client connection as an asyncio protocol, its answers read by
    harness.http1.AnswerReader (httptools).

    A protocol, not asyncio's streams: a booking's exchange cost 0.55 ms of CPU this way and
    0.75 ms through a StreamReader/StreamWriter pair (measured on the local stack, with h11 as
    the parser then), and a run makes one or two per action. `expect()` writes a request, or its
    first part, and returns the future of its answer: (status, body), or OSError /
    MalformedAnswerError when none comes whole.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._reader: AnswerReader | None = None
        self._early: list[bytes] = []  # data that came while no answer was expected

    @classmethod
    async def open(cls, origin: Origin) -> "ClientConnection":
        loop = asyncio.get_running_loop()
        ssl = tls_context() if origin.tls else None
        if origin.family is None:  # a name: asyncio resolves it, and tries each address
            _, client = await loop.create_connection(cls, origin.host, origin.port, ssl=ssl)
            return client
        # An address: connected by hand, about 45 us less CPU than create_connection's own path
        # (measured on loopback), and a run opens a connection for every booking.
        sock = socket.socket(origin.family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, (origin.host, origin.port))
            _, client = await loop.create_connection(cls, sock=sock, ssl=ssl,
                                                     server_hostname=origin.host if ssl else None)
        except BaseException:
            sock.close()
            raise
        return client

    def expect(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Write `data` (without an await: a burst's requests leave in the same loop tick)."""
        self._answer = asyncio.get_running_loop().create_future()
        self._reader = AnswerReader()
        if self._transport is None:  # lost since it was opened (the peer closed it, or a reset)
            self._answer.set_exception(ConnectionResetError("the connection closed before the request was sent"))
            return self._answer
        self._transport.write(data)
        if self._early:  # an answer began before the request was sent
            early, self._early = b"".join(self._early), []
            self.data_received(early)
        return self._answer

    def write(self, data: bytes) -> None:
        """More of the request `expect` began (the held end of a body)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._reader is None:
            self._early.append(data)
            return
        try:
            self._reader.feed(data)
        except MalformedAnswerError as exc:
            self._fail(exc)
        else:
            self._deliver()

    def eof_received(self) -> bool:
        if self._reader is not None:
            try:
                self._reader.closed_by_server()
            except MalformedAnswerError as exc:
                self._fail(exc)
            else:
                self._deliver()
        return False  # the transport closes itself

    def _deliver(self) -> None:
        assert self._reader is not None and self._answer is not None
        if self._reader.complete and not self._answer.done():
            answer = self._reader.answer()
            self._answer.set_result((answer.status, answer.body))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(exc if isinstance(exc, OSError) else ConnectionResetError("the connection closed before an answer"))

    def _fail(self, exc: BaseException) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)

    def closed(self) -> bool:
        """Whether the connection is gone (closed here, or by the peer)."""
        return self._transport is None

    def reusable(self) -> bool:
        """Whether the exchange ended whole with the connection kept alive."""
        return self._transport is not None and self._reader is not None and self._reader.keeps_alive()

    def close(self) -> None:
        # An answer nobody waits for any more is cancelled, not failed: a failed future that is
        # never awaited would be logged as an error when collected.
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class PreparedBooking:
    """One `POST /bookings` on its own freshly opened connection, not sent yet.

    `release()` writes it (all of it, or with `hold_s` all but the end of its body, which follows
    `hold_s` later); `answer()` waits for the reply. Every failure becomes a reply with no status
    (UNKNOWN), never an exception: the outcome of a booking is the app's business, not ours.
    """

    def __init__(self, intent: Intent, origin: Origin, target: str, timeout_s: float) -> None:
        self.intent = intent
        self._origin = origin
        self._timeout_s = timeout_s
        self._body = json.dumps({"intent_id": intent.intent_id, "slot_id": intent.slot_id,
                                 "customer_id": intent.customer_id}).encode()
        self._request = _post(origin.host_header, target, self._body)
        self._client: ClientConnection | None = None
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._error: str | None = None
        self._tail: asyncio.Task[None] | None = None
        self.sent_at: float | None = None  # monotonic seconds when its first byte was written

    async def connect(self) -> None:
        try:
            # asyncio.timeout, not wait_for: wait_for wraps its coroutine in a task of its own.
            async with asyncio.timeout(self._timeout_s):
                self._client = await ClientConnection.open(self._origin)
        except OSError as exc:  # TimeoutError included
            self._error = f"ConnectError: {type(exc).__name__}"

    def release(self, *, hold_s: float = 0.0) -> float:
        """Write the request now (no await: a burst's requests leave in the same loop tick)."""
        self.sent_at = time.monotonic()
        if self._client is None:
            return self.sent_at
        if hold_s <= 0:
            self._answer = self._client.expect(self._request)
        else:
            # The last bytes of the body follow later: the app cannot act on it until then.
            self._answer = self._client.expect(self._request[:-8])
            self._tail = asyncio.create_task(self._finish_after(hold_s, self._request[-8:]))
        return self.sent_at

    async def _finish_after(self, hold_s: float, rest: bytes) -> None:
        await asyncio.sleep(hold_s)
        if self._client is not None:
            self._client.write(rest)

    async def answer(self) -> BookingReply:
        started = self.sent_at if self.sent_at is not None else time.monotonic()
        if self._error is not None or self._answer is None:
            self.close()
            return BookingReply(None, None, _ms_since(started), error=self._error or "not connected")
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._tail is not None:
                    await self._tail
                status, raw = await self._answer
        except TimeoutError:
            return BookingReply(None, None, _ms_since(started), error="ReadTimeout")
        except (OSError, MalformedAnswerError) as exc:
            return BookingReply(None, None, _ms_since(started), error=type(exc).__name__)
        finally:
            self.close()
        try:
            body: JSON = json.loads(raw)
        except ValueError:
            body = raw[:500].decode("utf-8", "replace")
        return BookingReply(status, body, _ms_since(started))

    def close(self) -> None:
        if self._tail is not None and not self._tail.done():
            self._tail.cancel()
        if self._client is not None:
            self._client.close()
            self._client = None


def send_skew_us(prepared: list[PreparedBooking]) -> int:
    """How far apart the requests of one burst left: microseconds from the first write to the last."""
    times = [p.sent_at for p in prepared if p.sent_at is not None]
    return round((max(times) - min(times)) * 1e6) if times else 0


class AppClient:
    """Fixtures and bookings against the app, through whatever sits in front of it. Every request
    is its own TCP connection, so a proxy fault that cuts connections hits requests, not a pooled
    socket that happened to survive. The app's routes sit under the URL's path, if it has one."""

    def __init__(self, app_url: str, *, timeout_s: float = 2.0) -> None:
        self._origin = Origin.of(app_url)
        self._prefix = urlsplit(app_url).path.rstrip("/")
        self._timeout_s = timeout_s
        self._health = encode_request("GET", f"{self._prefix}/health", [
            ("Host", self._origin.host_header), ("Connection", "close"), ("User-Agent", "simcity-sc1")])

    async def prepare(self, intents: list[Intent]) -> list[PreparedBooking]:
        """One connection per request, all opened before any request is released."""
        prepared = [PreparedBooking(i, self._origin, f"{self._prefix}/bookings", self._timeout_s)
                    for i in intents]
        await asyncio.gather(*(p.connect() for p in prepared))
        return prepared

    async def create_fixture(self, seed: str) -> Fixture:
        body = json.dumps({"scenario": "sc1", "seed": seed}).encode()
        request = _post(self._origin.host_header, f"{self._prefix}/e2e/fixtures", body)
        try:
            # Setup, not the attack: a transport hiccup is retried (bounded), never recorded.
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(TRANSPORT_ERRORS),
                stop=stop_after_attempt(5), wait=wait_fixed(0.2), reraise=True,
            ):
                with attempt:
                    async with asyncio.timeout(self._timeout_s):
                        status, raw = await exchange(self._origin, request)
        except TRANSPORT_ERRORS as exc:
            raise InfrastructureError(f"app unreachable while seeding fixtures: {exc!r}") from exc
        if status == 404:
            raise UsageError("POST /e2e/fixtures answered 404: run the app with E2E=true")
        if status != 201:
            raise InfrastructureError(f"POST /e2e/fixtures answered {status}: {raw[:200].decode('utf-8', 'replace')}")
        try:
            answer = json.loads(raw)
            c1, c2 = answer["customer_ids"]
            slot, vendor = answer["slot_id"], answer["vendor_id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InfrastructureError(f"POST /e2e/fixtures answered 201 without the contract's fields: "
                                      f"{raw[:200].decode('utf-8', 'replace')}") from exc
        intents = (
            Intent(Process.C1, str(uuid.uuid4()), slot, c1),
            Intent(Process.C2, str(uuid.uuid4()), slot, c2),
        )
        return Fixture(seed=seed, vendor_id=vendor, slot_id=slot, intents=intents)

    async def book(self, intent: Intent) -> BookingReply:
        """One booking on its own: prepared, released and answered."""
        [prepared] = await self.prepare([intent])
        prepared.release()
        return await prepared.answer()

    async def healthy(self) -> bool:
        try:
            # As long as any readiness probe waits: a /health slower than a second is still an answer.
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                status, _ = await exchange(self._origin, self._health)
        except TRANSPORT_ERRORS:
            return False
        return status == 200


class KeptAliveConnections:
    """GETs on kept-alive HTTP/1.1 connections (ClientConnection), one per GET in flight: a GET
    takes an idle connection or opens one, and gives it back when its answer came whole and the
    server keeps it open. A quarter of an httpx request's CPU for a snapshot (0.20 vs 0.84 ms,
    measured on the local stack): a run reads after every action, several reads at once where
    REST is far away (harness.runner.ReadsInFlight)."""

    def __init__(self, url: str, headers: Sequence[tuple[str, str]]) -> None:
        self._origin = Origin.of(url)
        self._headers = [("Host", self._origin.host_header), *headers, ("User-Agent", "simcity-sc1")]
        self._idle: list[ClientConnection] = []
        self._requests: dict[str, bytes] = {}

    async def get(self, target: str) -> tuple[int, bytes]:
        """One GET; OSError or MalformedAnswerError when it got no whole answer (its connection is
        then dropped: a GET after it takes another, or opens a fresh one)."""
        client = None
        try:
            while self._idle and client is None:
                client = self._idle.pop()
                if client.closed():  # the server closed it while it was idle
                    client = None
            if client is None:
                client = await ClientConnection.open(self._origin)
            request = self._requests.get(target)
            if request is None:  # a run reads the same target after every step: encoded once
                request = self._requests[target] = encode_request("GET", target, self._headers)
            answer = await client.expect(request)
        except BaseException:  # a timeout's cancellation too: a half-read answer poisons the connection
            if client is not None:
                client.close()
            raise
        if client.reusable():
            self._idle.append(client)
        else:  # the server closes it (Connection: close)
            client.close()
        return answer

    async def aclose(self) -> None:
        """Close the idle connections (those of GETs still in flight close when they end)."""
        for client in self._idle:
            client.close()
        self._idle.clear()


class ProxiedConnection:
    """The same GETs through httpx, for a REST URL that an HTTP(S)_PROXY variable routes through a
    proxy: httpx speaks to proxies, KeptAliveConnections does not."""

    def __init__(self, url: str, headers: Sequence[tuple[str, str]]) -> None:
        self._http = httpx.AsyncClient(base_url=url, headers=dict(headers), verify=tls_context())
        self._base_path = urlsplit(url).path.rstrip("/")

    async def get(self, target: str) -> tuple[int, bytes]:
        try:
            response = await self._http.get(target.removeprefix(self._base_path), timeout=None)
        except httpx.TransportError as exc:
            raise ConnectionError(repr(exc)) from exc
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._http.aclose()


class TruthReader:
    """The SC-1 snapshot through Supabase REST: one request, so one statement, never torn."""

    def __init__(self, rest_url: str, service_key: str, *, timeout_s: float = 5.0, retry_for_s: float = 10.0) -> None:
        headers = [("apikey", service_key), ("Authorization", f"Bearer {service_key}"), ("Accept", "application/json")]
        parts = urlsplit(rest_url)
        proxied = (urllib.request.getproxies().get(parts.scheme) is not None
                   and not urllib.request.proxy_bypass(parts.hostname or ""))
        self._connection = (ProxiedConnection if proxied else KeptAliveConnections)(rest_url, headers)
        self._path = parts.path.rstrip("/") + "/slots?"
        self._timeout_s = timeout_s
        self._retry_for_s = retry_for_s
        # A run reads the same slots after every step: their request target is encoded once, and
        # the last answer for them is kept with its parse, since most steps change nothing.
        self._targets: dict[tuple[str, ...], str] = {}
        self._last: dict[tuple[str, ...], tuple[bytes, tuple[SlotSnapshot, ...]]] = {}

    async def snapshot(self, slot_id: str) -> SlotSnapshot:
        """Read one slot and all its bookings."""
        [snapshot] = await self.snapshots([slot_id])
        return snapshot

    async def snapshots(self, slot_ids: Sequence[str]) -> tuple[SlotSnapshot, ...]:
        """Read these slots and all their bookings in ONE request. Transport errors are retried
        (bounded); REST that stays unreachable or refuses is infrastructure trouble, never a
        product verdict."""
        key = tuple(slot_ids)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = self._path + urlencode(snapshot_params(slot_ids), safe=",()")
        try:
            status, raw = await self._get(target)
        except TRANSPORT_ERRORS:
            # Retried only once a first try failed: tenacity's set-up costs a read as much as its
            # HTTP exchange, and nearly every read succeeds at once.
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(TRANSPORT_ERRORS),
                    stop=stop_after_delay(self._retry_for_s) | stop_after_attempt(50),
                    wait=wait_fixed(0.1), reraise=True,
                ):
                    with attempt:
                        status, raw = await self._get(target)
            except TRANSPORT_ERRORS as exc:
                raise RestUnreachableError(f"REST unreachable for {self._retry_for_s:.0f} s: {exc!r}") from exc
        if status != 200:
            # The body is PostgREST's error object; it never carries the key.
            raise RestUnreachableError(f"REST answered {status} to the snapshot: "
                                       f"{raw[:300].decode('utf-8', 'replace')}")
        last = self._last.get(key)
        if last is not None and last[0] == raw:  # the same bytes parse the same (a pure function)
            return last[1]
        try:
            rows = json.loads(raw)
        except ValueError as exc:
            raise RestUnreachableError(f"REST answered the snapshot with no JSON: {raw[:100]!r}") from exc
        if not rows:
            raise RestUnreachableError(f"REST does not show slot {', '.join(slot_ids)}: wrong database, or the key "
                                       "lacks rights")
        snapshots = parse_snapshots(rows, slot_ids)
        self._last[key] = (raw, snapshots)
        return snapshots

    async def _get(self, target: str) -> tuple[int, bytes]:
        async with asyncio.timeout(self._timeout_s):
            return await self._connection.get(target)

    async def aclose(self) -> None:
        await self._connection.aclose()


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 3)
