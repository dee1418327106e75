"""Fixtures and helpers for the booking app's tests: real processes, real HTTP, real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from booking_app.spawn import app_process
from harness.postgres import LocalPostgres
from harness.stacks._net import free_port
from harness.process import ManagedProcess


@dataclass
class RunningApp:
    process: ManagedProcess
    url: str
    database_url: str

    def client(self, timeout_s: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout_s)

    def async_client(self, timeout_s: float = 20.0, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=timeout_s, **kwargs)


@dataclass(frozen=True)
class Sc1:
    """One POST /e2e/fixtures answer."""

    vendor_id: str
    slot_id: str
    c1: str
    c2: str

    def intent(self, customer: str | None = None, intent_id: str | None = None) -> dict[str, str]:
        return {"intent_id": intent_id or str(uuid.uuid4()), "slot_id": self.slot_id, "customer_id": customer or self.c1}


def new_fixture(client: httpx.Client, seed: str = "test") -> Sc1:
    answer = client.post("/e2e/fixtures", json={"scenario": "sc1", "seed": seed})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return Sc1(body["vendor_id"], body["slot_id"], *body["customer_ids"])


async def new_fixture_async(client: httpx.AsyncClient) -> Sc1:
    answer = await client.post("/e2e/fixtures", json={"scenario": "sc1", "seed": "test"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return Sc1(body["vendor_id"], body["slot_id"], *body["customer_ids"])


@dataclass(frozen=True)
class SlotTruth:
    """The database truth for one slot, read in one statement (like SimCity's snapshot)."""

    state: str
    bookings: list[dict[str, Any]]

    def with_status(self, status: str) -> list[dict[str, Any]]:
        return [b for b in self.bookings if b["status"] == status]

    @property
    def confirmed(self) -> list[dict[str, Any]]:
        return self.with_status("confirmed")

    def coherent(self) -> bool:
        """SC-1 invariants 1-2 plus: no intent twice, nothing left pending."""
        intents = [b["intent_id"] for b in self.bookings]
        return (
            len(self.confirmed) <= 1
            and (self.state == "booked") == (len(self.confirmed) == 1)
            and len(intents) == len(set(intents))
            and not self.with_status("pending")
        )


_SNAPSHOT = """
SELECT s.state, coalesce(json_agg(json_build_object(
         'id', b.id, 'intent_id', b.intent_id, 'customer_id', b.customer_id, 'status', b.status)
         ORDER BY b.created_at) FILTER (WHERE b.id IS NOT NULL), '[]')::text AS bookings
FROM slots s LEFT JOIN bookings b ON b.slot_id = s.id WHERE s.id = $1 GROUP BY s.id
"""


async def slot_truth_async(database_url: str, slot_id: str) -> SlotTruth:
    import json  # noqa: PLC0415

    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        row = await conn.fetchrow(_SNAPSHOT, uuid.UUID(slot_id))
    finally:
        await conn.close()
    assert row is not None, f"slot {slot_id} does not exist"
    return SlotTruth(row["state"], json.loads(row["bookings"]))


def slot_truth(database_url: str, slot_id: str) -> SlotTruth:
    return asyncio.run(slot_truth_async(database_url, slot_id))


def start_app(database_url: str, strategy: str = "atomic", **kwargs: Any) -> RunningApp:
    port = free_port()
    process = app_process(port, database_url, strategy, **kwargs).start()
    return RunningApp(process, f"http://127.0.0.1:{port}", database_url)


@pytest.fixture(scope="session")
def atomic_app(postgres: LocalPostgres) -> Iterator[RunningApp]:
    """One atomic app (2 workers, E2E on) for every read-mostly test; each uses fresh fixtures.

    Tests that kill or stop an app start their own.
    """
    app = start_app(postgres.superuser_dsn)
    try:
        yield app
    finally:
        app.process.stop()


@pytest.fixture
def client(atomic_app: RunningApp) -> Iterator[httpx.Client]:
    with atomic_app.client() as c:
        yield c


@pytest.fixture
def sc1(client: httpx.Client) -> Sc1:
    return new_fixture(client)
