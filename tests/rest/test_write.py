"""POST / PATCH / DELETE with PostgREST's status codes, Prefer handling and error mapping."""

from __future__ import annotations

import uuid

import httpx

from harness.postgres import LocalPostgres
from tests.rest.conftest import Rest, World, make_world, token

REP = {"Prefer": "return=representation"}


def _booking(world: World, status: str = "pending", customer: int = 1) -> dict[str, str]:
    return {"intent_id": str(uuid.uuid4()), "slot_id": world.slot_id, "customer_id": world.customer_ids[customer], "status": status}


def test_post_default_minimal_and_headers_only(http: httpx.Client, world: World) -> None:
    r = http.post("/bookings", json=_booking(world))
    assert (r.status_code, r.content) == (201, b"")
    r = http.post("/bookings", json=_booking(world), headers={"Prefer": "return=minimal"})
    assert (r.status_code, r.content) == (201, b"")
    r = http.post("/bookings", json=_booking(world), headers={"Prefer": "return=headers-only"})
    assert r.status_code == 201 and r.headers["location"].startswith("/bookings?id=eq.")
    new_id = r.headers["location"].split("eq.")[1]
    assert http.get(f"/bookings?id=eq.{new_id}&select=id").json() == [{"id": new_id}]


def test_post_representation_single_and_bulk(http: httpx.Client, world: World) -> None:
    one = _booking(world)
    r = http.post("/bookings?select=intent_id,status,slots(id)", json=one, headers=REP)
    assert r.status_code == 201
    assert r.json() == [{"intent_id": one["intent_id"], "status": "pending", "slots": {"id": world.slot_id}}]
    many = [_booking(world), _booking(world, "failed")]
    r = http.post("/bookings?select=intent_id", json=many, headers=REP)
    assert r.status_code == 201 and [x["intent_id"] for x in r.json()] == [m["intent_id"] for m in many]
    r = http.post("/bookings", json=[_booking(world), _booking(world)], headers={"Prefer": "count=exact"})
    assert (r.status_code, r.headers["content-range"]) == (201, "*/2")
    r = http.post("/bookings", json=_booking(world), headers={**REP, "Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 201 and isinstance(r.json(), dict) and r.json()["status"] == "pending"


def test_post_errors(http: httpx.Client, world: World) -> None:
    dup = _booking(world)
    assert http.post("/bookings", json=dup).status_code == 201
    r = http.post("/bookings", json=dup)
    assert r.status_code == 409 and r.json()["code"] == "23505"
    assert "bookings_intent_id_key" in r.json()["message"] and r.json()["details"].startswith("Key (intent_id)")
    second_confirmed = _booking(world, "confirmed")  # world already has a confirmed booking on this slot
    r = http.post("/bookings", json=second_confirmed)
    assert r.status_code == 409 and r.json()["code"] == "23505"
    r = http.post("/bookings", json={**_booking(world), "customer_id": str(uuid.uuid4())})
    assert r.status_code == 409 and r.json()["code"] == "23503"
    r = http.post("/bookings", json=_booking(world, "weird"))
    assert r.status_code == 400 and r.json()["code"] == "23514"
    r = http.post("/bookings", json={**_booking(world), "nope": 1})
    assert r.status_code == 400 and r.json()["code"] == "PGRST204"
    assert r.json()["message"] == "Could not find the 'nope' column of 'bookings' in the schema cache"
    r = http.post("/bookings", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST102"
    r = http.post("/bookings", json=[{"status": "x"}, {"other": 1}])
    assert r.status_code == 400 and r.json() == {
        "code": "PGRST102", "message": "All object keys must match", "details": None, "hint": None,
    }


def test_upsert(http: httpx.Client, world: World) -> None:
    row = {"id": world.booking_ids[1], "intent_id": world.intent_ids[1], "slot_id": world.slot_id,
           "customer_id": world.customer_ids[1], "status": "failed"}
    r = http.post("/bookings", json=row, headers={"Prefer": "return=representation,resolution=merge-duplicates"})
    assert r.status_code == 201 and r.json()[0]["status"] == "failed"
    r = http.post("/bookings", json={**row, "status": "pending"},
                  headers={"Prefer": "return=representation,resolution=ignore-duplicates"})
    assert r.status_code == 201 and r.json() == []


def test_patch(http: httpx.Client, world: World) -> None:
    b1 = world.booking_ids[1]
    before = http.get(f"/bookings?id=eq.{b1}&select=updated_at").json()[0]["updated_at"]
    r = http.patch(f"/bookings?id=eq.{b1}", json={"status": "failed"})
    assert (r.status_code, r.content) == (204, b"")
    r = http.patch(f"/bookings?id=eq.{b1}&select=id,status,updated_at", json={"status": "pending"}, headers=REP)
    assert r.status_code == 200 and r.json()[0]["status"] == "pending" and r.json()[0]["updated_at"] > before
    r = http.patch(f"/bookings?id=eq.{b1}", json={"status": "confirmed"})  # the slot already has a winner
    assert r.status_code == 409 and r.json()["code"] == "23505"
    r = http.patch(f"/bookings?slot_id=eq.{world.slot_id}&status=neq.confirmed", json={"status": "failed"},
                   headers={"Prefer": "count=exact"})
    assert (r.status_code, r.headers["content-range"]) == (204, "0-0/1")
    r = http.patch(f"/bookings?id=eq.{uuid.uuid4()}", json={"status": "pending"}, headers=REP)
    assert (r.status_code, r.json()) == (200, [])
    r = http.patch(f"/bookings?id=eq.{b1}", json={"nope": 1})
    assert r.status_code == 400 and r.json()["code"] == "PGRST204"


def test_singular_write_rolls_back(http: httpx.Client, world: World) -> None:
    r = http.patch(
        f"/bookings?slot_id=eq.{world.slot_id}", json={"status": "failed"},
        headers={**REP, "Accept": "application/vnd.pgrst.object+json"},
    )
    assert r.status_code == 406 and r.json()["code"] == "PGRST116"
    statuses = sorted(b["status"] for b in http.get(f"/bookings?slot_id=eq.{world.slot_id}&select=status").json())
    assert statuses == ["confirmed", "rejected"]


def test_delete(http: httpx.Client, postgres: LocalPostgres) -> None:
    w = make_world(postgres, bookings=3)
    r = http.delete(f"/bookings?id=eq.{w.booking_ids[2]}")
    assert (r.status_code, r.content) == (204, b"")
    r = http.delete(f"/bookings?id=eq.{w.booking_ids[1]}&select=id", headers=REP)
    assert (r.status_code, r.json()) == (200, [{"id": w.booking_ids[1]}])
    remaining = http.get(f"/bookings?slot_id=eq.{w.slot_id}&select=id").json()
    assert remaining == [{"id": w.booking_ids[0]}]
    r = http.delete(f"/slots?id=eq.{w.slot_id}")  # still referenced by a booking
    assert r.status_code == 409 and r.json()["code"] == "23503"


def test_writes_obey_grants(rest: Rest, world: World) -> None:
    user = token("authenticated", sub=world.customer_ids[0])
    with rest.client({"Authorization": f"Bearer {user}"}) as client:
        r = client.post("/bookings", json=_booking(world))
        assert r.status_code == 403 and r.json()["code"] == "42501"
        r = client.delete(f"/bookings?id=eq.{world.booking_ids[0]}")
        assert r.status_code == 403
    with rest.client() as anon:
        r = anon.patch(f"/slots?id=eq.{world.slot_id}", json={"state": "free"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
