"""POST /e2e/fixtures: fresh test data for one SimCity run (only when E2E=true)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from booking_app.errors import InvalidBody

SCENARIOS = ("sc1",)


def parse_fixture_request(body: dict[str, Any]) -> tuple[str, str]:
    scenario = body.get("scenario")
    if scenario not in SCENARIOS:
        raise InvalidBody(f"'scenario' must be one of {list(SCENARIOS)}")
    seed = body.get("seed", "")
    if not isinstance(seed, str) or len(seed) > 200:
        raise InvalidBody("'seed' must be a string of at most 200 characters")
    return scenario, seed


async def create_sc1(conn: asyncpg.Connection, seed: str) -> dict[str, Any]:
    """One vendor, ONE free slot, two customers; new ids on every call (the seed only names them)."""
    tag = f"sc1/{seed}/{uuid.uuid4().hex[:8]}"
    async with conn.transaction():
        vendor_id = await conn.fetchval("INSERT INTO vendors (name) VALUES ($1) RETURNING id", f"vendor {tag}")
        slot_id = await conn.fetchval(
            "INSERT INTO slots (vendor_id, starts_at, state) VALUES ($1, now() + interval '7 days', 'free') RETURNING id",
            vendor_id,
        )
        customers = [
            await conn.fetchval("INSERT INTO customers (name) VALUES ($1) RETURNING id", f"customer {n} {tag}")
            for n in (1, 2)
        ]
    return {"vendor_id": str(vendor_id), "slot_id": str(slot_id), "customer_ids": [str(c) for c in customers]}
