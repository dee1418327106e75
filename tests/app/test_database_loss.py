"""Database loss: /health turns 503, requests answer 503 JSON (outcome unknown), then recover."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from booking_app.spawn import app_env
from harness.postgres import LocalPostgres
from harness.stacks._net import free_port
from harness.process import ManagedProcess
from tests.app.conftest import RunningApp, new_fixture, start_app


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    with LocalPostgres() as cluster:
        yield cluster


def _wait_status(client: httpx.Client, status: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = client.get("/health").status_code
        if last == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"/health stayed {last}, wanted {status}")


def test_database_loss_answers_503_json_and_recovers(own_postgres: LocalPostgres) -> None:
    app: RunningApp = start_app(own_postgres.superuser_dsn)
    try:
        with app.client() as client:
            sc1 = new_fixture(client)
            own_postgres.stop("immediate")
            _wait_status(client, 503)
            assert client.get("/health").json()["status"] == "unavailable"
            for path, body in [("/bookings", sc1.intent()), ("/e2e/fixtures", {"scenario": "sc1", "seed": "x"})]:
                answer = client.post(path, json=body)
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"] == "database_unavailable"
            own_postgres.start()
            _wait_status(client, 200)
            assert client.post("/bookings", json=sc1.intent()).status_code == 201
    finally:
        app.process.stop()


def test_an_app_started_without_its_database_serves_503_json() -> None:
    port = free_port()
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    env = app_env(port, dead, workers=1)
    with ManagedProcess.python_module("booking-app-nodb", "booking_app", env=env, port=port) as proc:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            health = client.get("/health")
            booking = client.post("/bookings", json={k: "0" * 8 + "-0000-0000-0000-" + "0" * 12
                                                     for k in ("intent_id", "slot_id", "customer_id")})
        assert health.status_code == 503 and health.json()["error"] == "database_unavailable"
        assert booking.status_code == 503 and booking.json()["error"] == "database_unavailable"
        assert proc.running()


@pytest.mark.parametrize("strategy", ["atomic", "racy"])
def test_an_app_whose_database_never_answers_listens_at_once(strategy: str) -> None:
    """A database that takes the connection and never answers (a stalled hop) costs a start no
    connect timeout: the master touches no database, and each worker sets the nets on its first
    contact. With a 60 s connect timeout, a master that tried first would not listen in 20 s."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the kernel's backlog; nothing ever answers them
    try:
        port = free_port()
        dsn = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/postgres"
        env = app_env(port, dsn, strategy=strategy, workers=1, extra_env={"DB_TIMEOUT_S": "60"})
        with ManagedProcess.python_module("booking-app-stalled-db", "booking_app", env=env, port=port,
                                          ready_timeout_s=20) as proc:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
                health = client.get("/health")
            assert health.status_code == 503 and health.json()["error"] == "database_unavailable"
            assert proc.running()
    finally:
        silent.close()
