"""Database outages: 503 in PostgREST's shape while PostgreSQL is down, service resumes after."""

from __future__ import annotations

import time

import httpx

from harness.postgres import LocalPostgres
from tests.rest.conftest import _spawn, service_headers


def test_database_down_is_503_then_recovers() -> None:
    with LocalPostgres() as pg:
        process, url = _spawn(pg)
        with process, httpx.Client(base_url=url, headers=service_headers(), timeout=20) as client:
            assert client.get("/slots?limit=1").status_code == 200
            pg.stop("immediate")
            for _ in range(3):  # the pooled connection dies, then new connections are refused
                r = client.get("/slots?limit=1")
                assert r.status_code == 503, r.text
                assert set(r.json()) == {"code", "message", "details", "hint"}
            pg.start()
            deadline = time.monotonic() + 20
            while client.get("/slots?limit=1").status_code != 200:
                assert time.monotonic() < deadline, "simcity-rest did not recover after the database came back"
                time.sleep(0.2)
