"""simcity-rest as a real process over the session's PostgreSQL, plus tokens and fixture rows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jwt
import pytest

from harness.postgres import LocalPostgres
from harness.stacks._net import free_port
from harness.process import ManagedProcess
from simcity_rest.spawn import rest_process

JWT_SECRET = "simcity-test-secret-0123456789abcdef-xyz"


def token(role: str | None = "service_role", **claims: object) -> str:
    payload: dict[str, object] = {"iat": int(time.time()), "exp": int(time.time()) + 3600, **claims}
    if role is not None:
        payload["role"] = role
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


SERVICE_KEY = token("service_role")
ANON_KEY = token("anon")


def service_headers() -> dict[str, str]:
    """How SimCity (and supabase-py) authenticate with the service-role key."""
    return {"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}"}


@dataclass
class Rest:
    process: ManagedProcess
    url: str
    postgres: LocalPostgres

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers or {}, timeout=20.0)


def _spawn(postgres: LocalPostgres, **extra: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {
        "PGRST_DB_URI": postgres.authenticator_dsn,
        "PGRST_DB_SCHEMAS": "public",
        "PGRST_DB_ANON_ROLE": "anon",
        "PGRST_JWT_SECRET": JWT_SECRET,
        **extra,
    }
    return rest_process(port, env), f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def rest(postgres: LocalPostgres) -> Iterator[Rest]:
    process, url = _spawn(postgres)
    with process:
        yield Rest(process, url, postgres)


@pytest.fixture(scope="session")
def rest_no_anon(postgres: LocalPostgres) -> Iterator[Rest]:
    """A second server without PGRST_DB_ANON_ROLE, and with PGRST_DB_MAX_ROWS=2."""
    process, url = _spawn(postgres, PGRST_DB_ANON_ROLE="", PGRST_DB_MAX_ROWS="2")
    with process:
        yield Rest(process, url, postgres)


@pytest.fixture()
def http(rest: Rest) -> Iterator[httpx.Client]:
    with rest.client(service_headers()) as client:
        yield client


@dataclass
class World:
    """Fresh rows for one test: a vendor, a slot, two customers, a booking each (c1 confirmed)."""

    vendor_id: str
    slot_id: str
    customer_ids: list[str]
    booking_ids: list[str]
    intent_ids: list[str]


def make_world(postgres: LocalPostgres, bookings: int = 2) -> World:
    vendor, slot = str(uuid.uuid4()), str(uuid.uuid4())
    customers = [str(uuid.uuid4()) for _ in range(2)]
    booking_ids = [str(uuid.uuid4()) for _ in range(bookings)]
    intents = [str(uuid.uuid4()) for _ in range(bookings)]
    statements = [
        f"insert into vendors(id, name) values ('{vendor}', 'vendor {vendor[:8]}')",
        f"insert into slots(id, vendor_id, starts_at, state) values ('{slot}', '{vendor}', now(), 'booked')",
        *(f"insert into customers(id, name) values ('{c}', 'cust{i}')" for i, c in enumerate(customers)),
        *(
            f"insert into bookings(id, intent_id, slot_id, customer_id, status) values "
            f"('{b}', '{intents[i]}', '{slot}', '{customers[i % 2]}', '{'confirmed' if i == 0 else 'rejected'}')"
            for i, b in enumerate(booking_ids)
        ),
    ]
    postgres.psql(sql="; ".join(statements))
    return World(vendor, slot, customers, booking_ids, intents)


@pytest.fixture()
def world(postgres: LocalPostgres) -> World:
    return make_world(postgres)
