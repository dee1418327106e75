"""CONTRACT.md section 1, row by row, against the atomic app (2 worker processes, real PostgreSQL)."""

from __future__ import annotations

import os

import json
import socket
import uuid
from typing import Any

import httpx
import psutil
import pytest

from harness.postgres import LocalPostgres
from tests.app.conftest import RunningApp, Sc1, new_fixture, slot_truth, start_app

UUID = str(uuid.uuid4())


def booking_keys(body: dict[str, Any]) -> set[str]:
    return set(body["booking"])


def test_health_is_200_json_while_the_database_answers(client: httpx.Client) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_the_app_runs_as_two_processes(atomic_app: RunningApp) -> None:
    # Bugs of process-local state only show with several processes, as in production.
    assert atomic_app.process.pid is not None
    master = psutil.Process(atomic_app.process.pid)
    workers = master.children(recursive=True)  # forked by the master: nothing else runs under it
    assert len(workers) == 2 and all(w.ppid() == master.pid for w in workers)
    assert os.getpgid(master.pid) == master.pid and all(os.getpgid(w.pid) == master.pid for w in workers)


def test_fixtures_are_fresh_on_every_call(client: httpx.Client, atomic_app: RunningApp) -> None:
    first, second = new_fixture(client, seed="same"), new_fixture(client, seed="same")
    ids_first = {first.vendor_id, first.slot_id, first.c1, first.c2}
    assert len(ids_first) == 4
    assert ids_first.isdisjoint({second.vendor_id, second.slot_id, second.c1, second.c2})
    truth = slot_truth(atomic_app.database_url, first.slot_id)
    assert truth.state == "free" and truth.bookings == []


@pytest.mark.parametrize("body", [{"scenario": "sc9", "seed": "x"}, {"seed": "x"}, {"scenario": "sc1", "seed": 5}, []])
def test_fixtures_refuse_bad_requests_with_400(client: httpx.Client, body: Any) -> None:
    answer = client.post("/e2e/fixtures", json=body)
    assert answer.status_code == 400 and "error" in answer.json()


def test_first_booking_is_201_and_holds_the_slot(client: httpx.Client, sc1: Sc1, atomic_app: RunningApp) -> None:
    intent = sc1.intent(sc1.c1)
    answer = client.post("/bookings", json=intent)
    assert answer.status_code == 201
    booking = answer.json()["booking"]
    assert set(answer.json()) == {"booking"}
    assert booking_keys(answer.json()) == {"id", "intent_id", "slot_id", "customer_id", "status"}
    assert {k: booking[k] for k in intent} == intent and booking["status"] == "confirmed"
    truth = slot_truth(atomic_app.database_url, sc1.slot_id)
    assert truth.state == "booked"
    assert [(b["id"], b["status"]) for b in truth.bookings] == [(booking["id"], "confirmed")]


def test_replay_of_the_winner_is_200_with_the_same_booking(client: httpx.Client, sc1: Sc1) -> None:
    intent = sc1.intent(sc1.c1)
    first = client.post("/bookings", json=intent)
    replays = [client.post("/bookings", json=intent) for _ in range(3)]
    assert first.status_code == 201
    assert [r.status_code for r in replays] == [200, 200, 200]
    assert all(r.json() == first.json() for r in replays)


def test_loser_is_409_slot_taken_and_its_replay_409_again(
    client: httpx.Client, sc1: Sc1, atomic_app: RunningApp
) -> None:
    winner = client.post("/bookings", json=sc1.intent(sc1.c1))
    loser_intent = sc1.intent(sc1.c2)
    loser = client.post("/bookings", json=loser_intent)
    replay = client.post("/bookings", json=loser_intent)
    assert winner.status_code == 201
    assert loser.status_code == 409 and replay.status_code == 409
    assert loser.json()["error"] == "slot_taken"
    assert loser.json()["booking"]["status"] == "rejected"
    assert loser.json()["booking"]["intent_id"] == loser_intent["intent_id"]
    assert replay.json() == loser.json()
    truth = slot_truth(atomic_app.database_url, sc1.slot_id)
    assert truth.coherent() and truth.confirmed[0]["id"] == winner.json()["booking"]["id"]


@pytest.mark.parametrize("change", ["customer_id", "slot_id"])
def test_intent_seen_with_another_slot_or_customer_is_422(client: httpx.Client, change: str) -> None:
    sc1, other = new_fixture(client), new_fixture(client)
    intent = sc1.intent(sc1.c1)
    assert client.post("/bookings", json=intent).status_code == 201
    changed = {**intent, change: {"customer_id": sc1.c2, "slot_id": other.slot_id}[change]}
    answer = client.post("/bookings", json=changed)
    assert answer.status_code == 422 and answer.json() == {"error": "intent_mismatch"}
    # The mismatch touched nothing: the other slot is still free.
    assert client.post("/bookings", json=other.intent(other.c1)).status_code == 201


def test_unknown_slot_or_customer_is_404_and_writes_nothing(client: httpx.Client, sc1: Sc1, atomic_app: RunningApp) -> None:
    unknown_slot = client.post("/bookings", json={**sc1.intent(), "slot_id": str(uuid.uuid4())})
    unknown_customer = client.post("/bookings", json=sc1.intent(str(uuid.uuid4())))
    assert unknown_slot.status_code == 404 and unknown_slot.json()["error"] == "unknown_slot"
    assert unknown_customer.status_code == 404 and unknown_customer.json()["error"] == "unknown_customer"
    truth = slot_truth(atomic_app.database_url, sc1.slot_id)
    assert truth.state == "free" and truth.bookings == []


GOOD = {"intent_id": UUID, "slot_id": UUID, "customer_id": UUID}
HOSTILE: list[tuple[str, bytes, dict[str, str]]] = [
    ("empty", b"", {}),
    ("not json", b"intent_id=1", {}),
    ("truncated", b'{"intent_id": "', {}),
    ("array", b"[]", {}),
    ("string", b'"hello"', {}),
    ("null", b"null", {}),
    ("number", b"12", {}),
    ("empty object", b"{}", {}),
    ("missing customer", json.dumps({"intent_id": UUID, "slot_id": UUID}).encode(), {}),
    ("int ids", json.dumps({"intent_id": 1, "slot_id": 2, "customer_id": 3}).encode(), {}),
    ("null ids", json.dumps({**GOOD, "slot_id": None}).encode(), {}),
    ("nested id", json.dumps({**GOOD, "slot_id": {"id": UUID}}).encode(), {}),
    ("list id", json.dumps({**GOOD, "customer_id": [UUID]}).encode(), {}),
    ("bad uuid", json.dumps({**GOOD, "intent_id": "not-a-uuid"}).encode(), {}),
    ("uuid too long", json.dumps({**GOOD, "intent_id": UUID + "0"}).encode(), {}),
    ("braced uuid", json.dumps({**GOOD, "intent_id": "{" + UUID[:-2] + "}"}).encode(), {}),
    ("nul in uuid", json.dumps({**GOOD, "intent_id": UUID[:-1] + "\u0000"}).encode(), {}),
    ("sql in id", json.dumps({**GOOD, "slot_id": "'; DROP TABLE bookings; --"}).encode(), {}),
    ("NaN", b'{"intent_id": NaN}', {}),
    ("bad utf-8", b'{"intent_id": "\xff\xfe"}', {}),
    ("deep nesting", b"[" * 20000 + b"]" * 20000, {}),
    ("huge body", b'{"pad": "' + b"x" * 70_000 + b'"}', {}),
    ("bool ids", json.dumps({"intent_id": True, "slot_id": False, "customer_id": True}).encode(), {}),
    ("unknown ids", json.dumps(GOOD).encode(), {}),
]


@pytest.mark.parametrize(("name", "raw", "headers"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_get_a_4xx_json_error_never_a_500(
    client: httpx.Client, name: str, raw: bytes, headers: dict[str, str]
) -> None:
    answer = client.post("/bookings", content=raw, headers={"content-type": "application/json", **headers})
    assert answer.status_code in (400, 404, 413, 422), (answer.status_code, answer.text)
    assert isinstance(answer.json()["error"], str)
    assert "Traceback" not in answer.text
    assert client.get("/health").status_code == 200


def test_a_huge_chunked_body_is_refused_with_413(client: httpx.Client) -> None:
    # No Content-Length: the app must count while it reads and stop at the limit.
    answer = client.post("/bookings", content=iter([b'{"pad": "', *([b"x" * 8192] * 10), b'"}']))
    assert answer.status_code == 413 and answer.json()["error"] == "body_too_large"


def test_a_huge_declared_length_is_refused_before_the_body_is_read(atomic_app: RunningApp) -> None:
    # httpx will not send a lying Content-Length, so speak raw HTTP: the app must answer 413 at once.
    port = int(atomic_app.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /bookings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 999999999\r\n\r\n{}")
        answer = b""
        while b"body_too_large" not in answer and len(answer) < 8192:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"body_too_large" in answer


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nowhere", 404), ("GET", "/bookings", 405), ("DELETE", "/health", 405)])
def test_unknown_routes_and_methods_answer_json(client: httpx.Client, method: str, path: str, status: int) -> None:
    answer = client.request(method, path)
    assert answer.status_code == status and "error" in answer.json()


def test_fixtures_endpoint_is_404_without_e2e(postgres: LocalPostgres) -> None:
    app = start_app(postgres.superuser_dsn, e2e=False, workers=1)
    try:
        with app.client() as c:
            answer = c.post("/e2e/fixtures", json={"scenario": "sc1", "seed": "x"})
            assert answer.status_code == 404 and "error" in answer.json()
            assert c.get("/health").status_code == 200
    finally:
        app.process.stop()
