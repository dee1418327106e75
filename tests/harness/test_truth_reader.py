"""TruthReader's transport against real HTTP servers on loopback: one kept-alive connection for a
run's reads, a fresh one after the server dropped it or an answer timed out, and httpx where an
HTTP proxy variable routes REST through a proxy."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable

import h11
import pytest

from harness.client import TruthReader
from harness.errors import RestUnreachableError

SLOT = str(uuid.uuid4())
VENDOR = str(uuid.uuid4())
ROWS = json.dumps([{"id": SLOT, "vendor_id": VENDOR, "state": "free", "bookings": []}]).encode()
BOOKED = json.dumps([{"id": SLOT, "vendor_id": VENDOR, "state": "booked", "bookings": [
    {"id": str(uuid.uuid4()), "intent_id": str(uuid.uuid4()), "slot_id": SLOT, "customer_id": str(uuid.uuid4()),
     "status": "confirmed", "created_at": None, "updated_at": None}]}]).encode()


class FakeRest:
    """A REST that answers every GET with one free slot; counts connections and keeps the targets.
    `drop_after_answer`: close each connection after one answer without saying so (an idle
    keep-alive timeout); `stall`: never answer the first `stall` requests; `bodies`: the answers
    in turn, instead of the free slot."""

    def __init__(self, *, drop_after_answer: bool = False, stall: int = 0, bodies: tuple[bytes, ...] = ()) -> None:
        self.drop_after_answer, self.stall, self.bodies = drop_after_answer, stall, bodies
        self.connections, self.targets = 0, []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    self.targets.append(event.target.decode())
                    if len(self.targets) <= self.stall:
                        await asyncio.sleep(30)
                elif isinstance(event, h11.EndOfMessage):
                    body = self.bodies[len(self.targets) - 1] if self.bodies else ROWS
                    writer.write(conn.send(h11.Response(status_code=200, headers=[
                        ("Content-Type", "application/json"), ("Content-Length", str(len(body)))]))
                        + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
                    await writer.drain()
                    if self.drop_after_answer:
                        return
                    conn.start_next_cycle()
        except (h11.ProtocolError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def serving(rest: FakeRest, scenario: Callable[[str], AsyncIterator[None]]) -> None:
    server = await asyncio.start_server(rest.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async for _ in scenario(f"http://127.0.0.1:{port}/rest/v1"):
            pass
    finally:
        server.close()


async def reads(url: str, n: int, **kwargs: float) -> list[str]:
    truth = TruthReader(url, "service-key", **kwargs)
    try:
        return [(await truth.snapshot(SLOT)).state for _ in range(n)]
    finally:
        await truth.aclose()


def test_a_runs_reads_share_one_kept_alive_connection() -> None:
    rest = FakeRest()

    async def scenario(url: str) -> AsyncIterator[None]:
        assert await reads(url, 20) == ["free"] * 20
        yield

    asyncio.run(serving(rest, scenario))
    assert rest.connections == 1
    # The base URL's path is kept, and the query is the contract's own (section 2).
    assert rest.targets[0] == (f"/rest/v1/slots?id=eq.{SLOT}&select=id,vendor_id,state,"
                               "bookings(id,intent_id,slot_id,customer_id,status,created_at,updated_at)")


def test_each_read_gives_the_answer_of_the_moment_when_answers_repeat_and_change() -> None:
    # A read whose bytes repeat the last one's reuses its parse: never a stale one.
    rest = FakeRest(bodies=(ROWS, ROWS, BOOKED, BOOKED, ROWS, BOOKED))

    async def scenario(url: str) -> AsyncIterator[None]:
        truth = TruthReader(url, "service-key")
        try:
            got = [await truth.snapshot(SLOT) for _ in range(6)]
        finally:
            await truth.aclose()
        assert [(s.state, len(s.confirmed)) for s in got] == [("free", 0)] * 2 + [("booked", 1)] * 2 + [
            ("free", 0), ("booked", 1)]
        yield

    asyncio.run(serving(rest, scenario))


def test_a_connection_the_server_dropped_is_opened_again() -> None:
    rest = FakeRest(drop_after_answer=True)

    async def scenario(url: str) -> AsyncIterator[None]:
        assert await reads(url, 5) == ["free"] * 5
        yield

    asyncio.run(serving(rest, scenario))
    assert rest.connections >= 5


def test_an_answer_that_timed_out_leaves_no_half_read_connection_behind() -> None:
    rest = FakeRest(stall=1)

    async def scenario(url: str) -> AsyncIterator[None]:
        assert await reads(url, 3, timeout_s=0.3, retry_for_s=5.0) == ["free"] * 3
        yield

    asyncio.run(serving(rest, scenario))
    assert rest.connections == 2 and len(rest.targets) == 4


def test_rest_that_never_answers_is_unreachable_not_a_verdict() -> None:
    rest = FakeRest(stall=1000)

    async def scenario(url: str) -> AsyncIterator[None]:
        with pytest.raises(RestUnreachableError, match="REST unreachable for 0 s"):
            await reads(url, 1, timeout_s=0.3, retry_for_s=0.2)
        yield

    asyncio.run(serving(rest, scenario))


def test_an_http_proxy_variable_sends_the_reads_through_that_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = FakeRest()  # a forward proxy sees the absolute URL, and answers for the origin here

    async def scenario(proxy_url: str) -> AsyncIterator[None]:
        monkeypatch.setenv("HTTP_PROXY", proxy_url.removesuffix("/rest/v1"))
        monkeypatch.setenv("NO_PROXY", "")
        assert await reads("http://rest.invalid:3000/rest/v1", 2) == ["free"] * 2
        yield

    asyncio.run(serving(proxy, scenario))
    assert proxy.targets[0].startswith("http://rest.invalid:3000/rest/v1/slots?id=eq.")
