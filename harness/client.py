"""The client: how SC-1 talks to the target (CONTRACT.md sections 1 and 2), and nothing else.

`AppClient` creates fixtures and sends booking intents through the client-app hop; every call's
outcome is recorded, and a lost answer is UNKNOWN, never a failure. `TruthReader` reads the
database truth through REST in ONE request per snapshot, with the service-role key.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_fixed

from harness.errors import InfrastructureError, RestUnreachableError, UsageError
from harness.contract import JSON, SlotSnapshot, parse_snapshot, snapshot_params
from harness.history import Fixture, Intent, Process


@dataclass(frozen=True)
class BookingReply:
    """What one POST /bookings got: an HTTP answer, or none (`status=None`, with the error)."""

    status: int | None
    body: JSON
    latency_ms: float
    error: str | None = None


class AppClient:
    """Fixtures and bookings against the app, through whatever sits in front of it."""

    def __init__(self, app_url: str, *, timeout_s: float = 2.0) -> None:
        # No connection reuse: every booking is its own TCP connection, so a proxy fault that
        # cuts connections hits requests, not a pooled socket that happened to survive.
        self._http = httpx.AsyncClient(
            base_url=app_url, timeout=timeout_s, limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def create_fixture(self, seed: str) -> Fixture:
        try:
            # Setup, not the attack: a transport hiccup is retried (bounded), never recorded.
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(httpx.TransportError),
                stop=stop_after_attempt(5), wait=wait_fixed(0.2), reraise=True,
            ):
                with attempt:
                    response = await self._http.post("/e2e/fixtures", json={"scenario": "sc1", "seed": seed})
        except httpx.HTTPError as exc:
            raise InfrastructureError(f"app unreachable while seeding fixtures: {exc!r}") from exc
        if response.status_code == 404:
            raise UsageError("POST /e2e/fixtures answered 404: run the app with E2E=true")
        if response.status_code != 201:
            raise InfrastructureError(f"POST /e2e/fixtures answered {response.status_code}: {response.text[:200]}")
        body = response.json()
        c1, c2 = body["customer_ids"]
        slot = body["slot_id"]
        intents = (
            Intent(Process.C1, str(uuid.uuid4()), slot, c1),
            Intent(Process.C2, str(uuid.uuid4()), slot, c2),
        )
        return Fixture(seed=seed, vendor_id=body["vendor_id"], slot_id=slot, intents=intents)

    async def book(self, intent: Intent) -> BookingReply:
        payload = {"intent_id": intent.intent_id, "slot_id": intent.slot_id, "customer_id": intent.customer_id}
        started = time.monotonic()
        try:
            response = await self._http.post("/bookings", json=payload)
        except httpx.HTTPError as exc:
            return BookingReply(None, None, _ms_since(started), error=type(exc).__name__)
        try:
            body: JSON = response.json()
        except ValueError:
            body = response.text[:500]
        return BookingReply(response.status_code, body, _ms_since(started))

    async def healthy(self) -> bool:
        try:
            return (await self._http.get("/health", timeout=1.0)).status_code == 200
        except httpx.HTTPError:
            return False

    async def aclose(self) -> None:
        await self._http.aclose()


class TruthReader:
    """The SC-1 snapshot through Supabase REST: one request, so one statement, never torn."""

    def __init__(self, rest_url: str, service_key: str, *, timeout_s: float = 5.0, retry_for_s: float = 10.0) -> None:
        headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
        self._http = httpx.AsyncClient(base_url=rest_url, headers=headers, timeout=timeout_s)
        self._retry_for_s = retry_for_s

    async def snapshot(self, slot_id: str) -> SlotSnapshot:
        """Read the slot and all its bookings. Transport errors are retried (bounded); REST that
        stays unreachable or refuses is infrastructure trouble, never a product verdict."""
        params = snapshot_params(slot_id)
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(httpx.TransportError),
                stop=stop_after_delay(self._retry_for_s) | stop_after_attempt(50),
                wait=wait_fixed(0.1), reraise=True,
            ):
                with attempt:
                    response = await self._http.get("/slots", params=params)
        except httpx.HTTPError as exc:
            raise RestUnreachableError(f"REST unreachable for {self._retry_for_s:.0f} s: {exc!r}") from exc
        if response.status_code != 200:
            # The body is PostgREST's error object; it never carries the key.
            raise RestUnreachableError(f"REST answered {response.status_code} to the snapshot: {response.text[:300]}")
        rows = response.json()
        if not rows:
            raise RestUnreachableError(f"REST does not show slot {slot_id}: wrong database, or the key lacks rights")
        return parse_snapshot(rows)

    async def aclose(self) -> None:
        await self._http.aclose()


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 3)
