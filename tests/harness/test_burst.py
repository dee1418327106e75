"""Booking bursts on real loopback sockets: the requests of a race leave together and are in flight
together at the server, duplicates arrive at once, a reorder's retry overtakes its held send, and a
lost answer is a reply without status (UNKNOWN), never an exception."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import h11

from harness.client import AppClient, send_skew_us
from harness.history import Intent, Process
from tests.harness.builders import CUSTOMER, INTENT, SLOT
from tests.loopback import QuietHandler, http_server, url_of

INTENTS = [Intent(p, INTENT[p], SLOT, CUSTOMER[p]) for p in (Process.C1, Process.C2)]
HOLD_ANSWER_S = 0.1  # the test app answers this late, so requests that overlap show it


@dataclass
class Arrival:
    intent_id: str
    complete_at: float  # when the whole request had arrived
    in_flight_then: int  # requests already complete and not yet answered at that moment


@dataclass
class BookingEndpoint:
    """A tiny booking endpoint that records when each request arrives in full."""

    arrivals: list[Arrival] = field(default_factory=list)
    in_flight: int = 0
    close_without_answer: bool = False

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data:
                    writer.close()
                    return
                conn.receive_data(data)
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        self.arrivals.append(Arrival(json.loads(body)["intent_id"], time.monotonic(), self.in_flight))
        if self.close_without_answer:
            writer.close()
            return
        self.in_flight += 1
        await asyncio.sleep(HOLD_ANSWER_S)
        self.in_flight -= 1
        answer = json.dumps({"booking": {"status": "confirmed"}}).encode()
        writer.write(conn.send(h11.Response(status_code=201, headers=[("Content-Length", str(len(answer)))]))
                     + conn.send(h11.Data(data=answer)) + conn.send(h11.EndOfMessage()))
        await writer.drain()
        writer.close()


@asynccontextmanager
async def serving(app: BookingEndpoint) -> AsyncIterator[str]:
    server = await asyncio.start_server(app.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def test_a_race_leaves_together_and_is_in_flight_together() -> None:
    async def scenario() -> tuple[int, BookingEndpoint]:
        app = BookingEndpoint()
        async with serving(app) as url:
            client = AppClient(url, timeout_s=2.0)
            prepared = await client.prepare(INTENTS)
            for booking in prepared:
                booking.release()
            skew = send_skew_us(prepared)
            replies = await asyncio.gather(*(b.answer() for b in prepared))
        assert [r.status for r in replies] == [201, 201]
        return skew, app

    skew, app = asyncio.run(scenario())
    assert skew < 5_000, f"the two requests left {skew} us apart"
    first, second = sorted(app.arrivals, key=lambda a: a.complete_at)
    # Both were at the app at once: the second arrived in full while the first was unanswered.
    assert second.in_flight_then == 1
    assert second.complete_at - first.complete_at < 0.02


def test_duplicate_delivery_arrives_three_times_at_once() -> None:
    async def scenario() -> BookingEndpoint:
        app = BookingEndpoint()
        async with serving(app) as url:
            client = AppClient(url)
            prepared = await client.prepare([INTENTS[0]] * 3)
            for booking in prepared:
                booking.release()
            await asyncio.gather(*(b.answer() for b in prepared))
        return app

    app = asyncio.run(scenario())
    assert [a.intent_id for a in app.arrivals] == [INTENT[Process.C1]] * 3
    assert max(a.in_flight_then for a in app.arrivals) == 2


def test_a_held_send_is_overtaken_by_its_retry() -> None:
    async def scenario() -> tuple[BookingEndpoint, list[float]]:
        app = BookingEndpoint()
        async with serving(app) as url:
            client = AppClient(url)
            held, retry = await client.prepare([INTENTS[0], INTENTS[0]])
            held.release(hold_s=0.05)
            retry.release()
            await asyncio.gather(held.answer(), retry.answer())
            sent = [held.sent_at or 0.0, retry.sent_at or 0.0]
        return app, sent

    app, (held_sent, retry_sent) = asyncio.run(scenario())
    assert held_sent <= retry_sent  # the held one was released first ...
    first, second = app.arrivals
    assert second.complete_at - first.complete_at >= 0.04  # ... and completed a hold later
    assert first.in_flight_then == 0 and second.in_flight_then == 1  # the retry was served first


def test_lost_answers_are_unknown_replies() -> None:
    async def scenario() -> list[tuple[int | None, str | None]]:
        app = BookingEndpoint(close_without_answer=True)
        async with serving(app) as url:
            client = AppClient(url)
            [booking] = await client.prepare([INTENTS[0]])
            booking.release()
            closed = await booking.answer()
        refused_client = AppClient(url)  # the server is gone: nothing listens there any more
        [refused] = await refused_client.prepare([INTENTS[1]])
        refused.release()
        lost = await refused.answer()
        return [(closed.status, closed.error), (lost.status, lost.error)]

    (closed_status, closed_error), (refused_status, refused_error) = asyncio.run(scenario())
    assert closed_status is None and closed_error
    assert refused_status is None and refused_error and refused_error.startswith("ConnectError")


def test_an_app_under_a_path_gets_every_request_under_that_path() -> None:
    """--target-url http://host/api: health, fixtures and bookings all go to /api/... (bookings
    once went to /bookings at the root, and a prefixed app answered them 404)."""
    paths: list[str] = []
    fixture = {"vendor_id": str(uuid.uuid4()), "slot_id": SLOT, "customer_ids": [CUSTOMER[Process.C1],
                                                                                CUSTOMER[Process.C2]]}

    class PrefixedApp(QuietHandler):
        def _answer(self, status: int, body: dict[str, object]) -> None:
            paths.append(f"{self.command} {self.path}")
            raw = json.dumps(body).encode()
            self.send_response(status if self.path.startswith("/api/") else 404)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._answer(200, {"status": "ok"})

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            self._answer(201, fixture if self.path.endswith("/fixtures") else {"booking": {"status": "confirmed"}})

    async def scenario(url: str) -> tuple[bool, int | None]:
        client = AppClient(url)
        made = await client.create_fixture("prefixed")
        reply = await client.book(made.intent_of(Process.C1))
        return await client.healthy(), reply.status

    with http_server(PrefixedApp) as server:
        healthy, status = asyncio.run(scenario(url_of(server, "/api/")))
    assert healthy and status == 201
    assert paths == ["POST /api/e2e/fixtures", "POST /api/bookings", "GET /api/health"]
