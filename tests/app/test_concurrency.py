"""Atomic under concurrency: many intents on one slot, many replays of one intent."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.app.conftest import RunningApp, new_fixture_async, slot_truth_async

CLIENTS = 50  # concurrent requests in flight at once


async def _burst(client: httpx.AsyncClient, bodies: list[dict[str, str]]) -> list[httpx.Response]:
    gate = asyncio.Semaphore(CLIENTS)

    async def one(body: dict[str, str]) -> httpx.Response:
        async with gate:
            return await client.post("/bookings", json=body)

    return await asyncio.gather(*(one(b) for b in bodies))


def test_200_concurrent_intents_on_one_slot_confirm_exactly_one(atomic_app: RunningApp) -> None:
    async def scenario() -> None:
        async with atomic_app.async_client(limits=httpx.Limits(max_connections=CLIENTS)) as client:
            sc1 = await new_fixture_async(client)
            bodies = [sc1.intent(sc1.c1 if i % 2 else sc1.c2) for i in range(200)]
            answers = await asyncio.wait_for(_burst(client, bodies), timeout=60)
            truth = await slot_truth_async(atomic_app.database_url, sc1.slot_id)
        assert Counter(a.status_code for a in answers) == {201: 1, 409: 199}
        winner = next(a.json()["booking"] for a in answers if a.status_code == 201)
        assert truth.state == "booked" and truth.coherent()
        assert [b["id"] for b in truth.confirmed] == [winner["id"]]
        assert len(truth.with_status("rejected")) == 199

    asyncio.run(scenario())


def test_concurrent_replays_of_one_intent_make_one_booking(atomic_app: RunningApp) -> None:
    async def scenario() -> None:
        async with atomic_app.async_client(limits=httpx.Limits(max_connections=CLIENTS)) as client:
            sc1 = await new_fixture_async(client)
            intent = sc1.intent(sc1.c1)
            answers = await asyncio.wait_for(_burst(client, [intent] * 60), timeout=60)
            truth = await slot_truth_async(atomic_app.database_url, sc1.slot_id)
        assert Counter(a.status_code for a in answers) == {201: 1, 200: 59}
        assert len({a.json()["booking"]["id"] for a in answers}) == 1
        assert len(truth.bookings) == 1 and truth.coherent()

    asyncio.run(scenario())


def test_two_intents_replayed_concurrently_settle_to_one_winner(atomic_app: RunningApp) -> None:
    """SC-1's own shape: two intents, each sent and retried many times, interleaved."""

    async def scenario() -> None:
        async with atomic_app.async_client(limits=httpx.Limits(max_connections=CLIENTS)) as client:
            sc1 = await new_fixture_async(client)
            a, b = sc1.intent(sc1.c1), sc1.intent(sc1.c2)
            answers = await asyncio.wait_for(_burst(client, [a, b] * 40), timeout=60)
            truth = await slot_truth_async(atomic_app.database_url, sc1.slot_id)
        by_intent: dict[str, set[int]] = {}
        for answer in answers:
            by_intent.setdefault(answer.json()["booking"]["intent_id"], set()).add(answer.status_code)
        assert sorted(map(frozenset, by_intent.values()), key=len) == [frozenset({409}), frozenset({200, 201})]
        assert truth.coherent() and len(truth.bookings) == 2

    asyncio.run(scenario())
