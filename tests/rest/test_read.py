"""Reads over HTTP: the SC-1 snapshot, select, embedding, filters, order, paging, counts, singular."""

from __future__ import annotations

import uuid

import httpx

from harness.contract import SNAPSHOT_SELECT
from harness.postgres import LocalPostgres
from tests.rest.conftest import Rest, World, make_world, service_headers



def test_sc1_snapshot_exact_request(rest: Rest, world: World) -> None:
    """The contract's request, Supabase prefix, service key in both apikey and Authorization."""
    with httpx.Client(base_url=rest.url, headers=service_headers()) as client:
        r = client.get(f"/rest/v1/slots?id=eq.{world.slot_id}&select={SNAPSHOT_SELECT}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["content-range"] == "0-0/*"
    [slot] = r.json()
    assert list(slot) == ["id", "vendor_id", "state", "bookings"]
    assert slot["id"] == world.slot_id and slot["vendor_id"] == world.vendor_id and slot["state"] == "booked"
    by_id = {b["id"]: b for b in slot["bookings"]}
    assert set(by_id) == set(world.booking_ids)
    first = by_id[world.booking_ids[0]]
    assert list(first) == ["id", "intent_id", "slot_id", "customer_id", "status", "created_at", "updated_at"]
    assert first["intent_id"] == world.intent_ids[0] and first["status"] == "confirmed"
    assert first["customer_id"] == world.customer_ids[0] and first["slot_id"] == world.slot_id
    assert first["created_at"].endswith("+00:00") and "T" in first["created_at"]


def test_snapshot_of_slot_without_bookings_has_empty_array(http: httpx.Client, postgres: LocalPostgres) -> None:
    w = make_world(postgres, bookings=0)
    r = http.get(f"/slots?id=eq.{w.slot_id}&select={SNAPSHOT_SELECT}")
    assert r.json()[0]["bookings"] == []


def test_unknown_slot_is_empty_array(http: httpx.Client) -> None:
    r = http.get(f"/slots?id=eq.00000000-0000-0000-0000-000000000000&select={SNAPSHOT_SELECT}")
    assert (r.status_code, r.json(), r.headers["content-range"]) == (200, [], "*/*")


def test_root_and_prefix_are_the_same(http: httpx.Client, world: World) -> None:
    a = http.get(f"/slots?id=eq.{world.slot_id}")
    b = http.get(f"/rest/v1/slots?id=eq.{world.slot_id}")
    assert a.json() == b.json() and a.json()[0]["id"] == world.slot_id


def test_alias_cast_star(http: httpx.Client, world: World) -> None:
    r = http.get(f"/slots?id=eq.{world.slot_id}&select=slot:id,st:state::text,*")
    row = r.json()[0]
    assert row["slot"] == world.slot_id and row["st"] == "booked"
    assert set(row) >= {"slot", "st", "id", "vendor_id", "starts_at", "state"}


def test_embed_to_one_and_nested(http: httpx.Client, world: World) -> None:
    r = http.get(f"/bookings?id=eq.{world.booking_ids[0]}&select=id,slots(state,vendors(id)),customers(name)")
    assert r.json() == [{
        "id": world.booking_ids[0],
        "slots": {"state": "booked", "vendors": {"id": world.vendor_id}},
        "customers": {"name": "cust0"},
    }]


def test_embed_filters_order_limit(http: httpx.Client, world: World) -> None:
    base = f"/slots?id=eq.{world.slot_id}&select=id,bookings(id,status)"
    confirmed = http.get(base + "&bookings.status=eq.confirmed").json()[0]["bookings"]
    assert [b["id"] for b in confirmed] == [world.booking_ids[0]]
    ordered = http.get(base + "&bookings.order=status.desc").json()[0]["bookings"]
    assert [b["status"] for b in ordered] == ["rejected", "confirmed"]
    limited = http.get(base + "&bookings.order=status.asc&bookings.limit=1").json()[0]["bookings"]
    assert [b["status"] for b in limited] == ["confirmed"]
    skipped = http.get(base + "&bookings.order=status.asc&bookings.offset=1").json()[0]["bookings"]
    assert [b["status"] for b in skipped] == ["rejected"]
    aliased = http.get(f"/slots?id=eq.{world.slot_id}&select=id,b:bookings(status)&b.status=eq.rejected").json()
    assert aliased[0]["b"] == [{"status": "rejected"}]


def test_inner_embed_drops_parents(http: httpx.Client, postgres: LocalPostgres) -> None:
    with_bookings = make_world(postgres)
    without = make_world(postgres, bookings=0)
    ids = f"in.({with_bookings.slot_id},{without.slot_id})"
    left = http.get(f"/slots?id={ids}&select=id,bookings(id)").json()
    assert len(left) == 2
    inner = http.get(f"/slots?id={ids}&select=id,bookings!inner(id)").json()
    assert [s["id"] for s in inner] == [with_bookings.slot_id]
    inner_filtered = http.get(f"/slots?id={ids}&select=id,bookings!inner(id)&bookings.status=eq.pending").json()
    assert inner_filtered == []
    counted = http.get(f"/slots?id={ids}&select=id,bookings!inner(id)", headers={"Prefer": "count=exact"})
    assert counted.headers["content-range"] == "0-0/1"


def test_embed_errors(http: httpx.Client, world: World) -> None:
    r = http.get("/slots?select=id,nothing(id)")
    assert r.status_code == 400 and r.json()["code"] == "PGRST200"
    assert set(r.json()) == {"code", "message", "details", "hint"}
    r = http.get("/slots?select=id&bookings.status=eq.confirmed")
    assert r.status_code == 400 and r.json()["code"] == "PGRST108"
    assert r.json()["message"] == "'bookings' is not an embedded resource in this request"
    r = http.get("/slots?select=id,vendors!nosuchfk(id)")
    assert r.status_code == 400 and r.json()["code"] == "PGRST200"
    r = http.get("/slots?select=id,vendors!slots_vendor_id_fkey(id)&limit=1")
    assert r.status_code == 200
    r = http.get(f"/slots?id=eq.{world.slot_id}&select=id,b:bookings(id)&bookings.status=eq.x")
    assert r.status_code == 400 and r.json()["code"] == "PGRST108"  # an aliased embed is filtered by its alias
    r = http.get("/slots?select=id,bookings(id)&order=bookings(id)")
    assert r.status_code == 400 and r.json()["code"] == "PGRST118"
    r = http.get(f"/slots?id=eq.{world.slot_id}&select=id,vendor_id(id)")
    assert r.json() == [{"id": world.slot_id, "vendor_id": {"id": world.vendor_id}}]


def test_filters(http: httpx.Client, world: World) -> None:
    b0, b1 = world.booking_ids
    scope = f"slot_id=eq.{world.slot_id}&select=id&order=status"

    def ids(extra: str) -> list[str]:
        r = http.get(f"/bookings?{scope}&{extra}")
        assert r.status_code == 200, r.text
        return [row["id"] for row in r.json()]

    assert ids("status=eq.confirmed") == [b0]
    assert ids("status=neq.confirmed") == [b1]
    assert ids("status=gt.confirmed") == [b1]
    assert ids("status=gte.confirmed") == [b0, b1]
    assert ids("status=lt.rejected") == [b0]
    assert ids("status=lte.rejected") == [b0, b1]
    assert ids("status=like.conf*") == [b0]
    assert ids("status=ilike.*REJ*") == [b1]
    assert ids("status=in.(confirmed,pending)") == [b0]
    assert ids('status=in.("rejected","a,b")') == [b1]
    assert ids("status=not.in.(confirmed)") == [b1]
    assert ids("status=is.null") == []
    assert ids("status=not.is.null") == [b0, b1]
    assert ids("status=match.^rej") == [b1]
    assert ids("status=isdistinct.confirmed") == [b1]
    assert ids("status=like(any).{x*,rej*}") == [b1]
    assert ids("or=(status.eq.confirmed,status.eq.pending)") == [b0]
    assert ids("or=(status.eq.pending,and(status.eq.rejected,customer_id.eq." + world.customer_ids[1] + "))") == [b1]
    assert ids("not.or=(status.eq.pending,status.eq.rejected)") == [b0]
    assert ids("and=(status.neq.pending,not.or(status.eq.confirmed))") == [b1]
    assert ids(f"created_at=lt.2999-01-01T00:00:00Z&customer_id=eq.{world.customer_ids[0]}") == [b0]


def test_long_in_list(http: httpx.Client, world: World) -> None:
    """A few hundred ids in one `in.(...)`, a request line far past h11's default 16 KiB."""
    ids = [world.booking_ids[0]] + [str(uuid.uuid4()) for _ in range(700)]
    r = http.get(f"/bookings?select=id&id=in.({','.join(ids)})")
    assert (r.status_code, r.json()) == (200, [{"id": world.booking_ids[0]}])


def test_order_nulls_and_multiple(http: httpx.Client, world: World) -> None:
    r = http.get(f"/bookings?slot_id=eq.{world.slot_id}&select=status&order=status.desc.nullslast,id")
    assert [x["status"] for x in r.json()] == ["rejected", "confirmed"]


def test_related_order_on_to_one(http: httpx.Client, world: World) -> None:
    base = f"/bookings?slot_id=eq.{world.slot_id}&select=id,customers(name)"
    desc = http.get(base + "&order=customers(name).desc").json()
    assert [b["customers"]["name"] for b in desc] == ["cust1", "cust0"]
    asc = http.get(base + "&order=customers(name).asc.nullsfirst").json()
    assert [b["customers"]["name"] for b in asc] == ["cust0", "cust1"]


def test_limit_offset_range_and_counts(http: httpx.Client, postgres: LocalPostgres) -> None:
    w = make_world(postgres, bookings=5)
    base = f"/bookings?slot_id=eq.{w.slot_id}&select=id&order=id"
    r = http.get(base + "&limit=2&offset=1")
    assert (r.status_code, len(r.json()), r.headers["content-range"]) == (200, 2, "1-2/*")
    r = http.get(base + "&limit=2", headers={"Prefer": "count=exact"})
    assert (r.status_code, r.headers["content-range"]) == (206, "0-1/5")
    r = http.get(base, headers={"Prefer": "count=exact"})
    assert (r.status_code, r.headers["content-range"]) == (200, "0-4/5")
    r = http.get(base, headers={"Range": "1-3"})
    assert (r.status_code, len(r.json()), r.headers["content-range"]) == (200, 3, "1-3/*")
    r = http.get(base, headers={"Range": "3-", "Prefer": "count=exact"})
    assert (r.status_code, r.headers["content-range"]) == (206, "3-4/5")
    r = http.get(base + "&offset=10", headers={"Prefer": "count=exact"})
    assert r.status_code == 416 and r.json()["code"] == "PGRST103"
    r = http.get(base + "&offset=10")
    assert (r.status_code, r.json(), r.headers["content-range"]) == (200, [], "*/*")
    r = http.get(base, headers={"Range": "3-1"})
    assert r.status_code == 416 and r.json()["details"].startswith("The lower boundary must be lower")
    r = http.get(f"/bookings?slot_id=eq.{w.vendor_id}", headers={"Prefer": "count=exact"})
    assert (r.status_code, r.headers["content-range"]) == (200, "*/0")
    head = http.head(base, headers={"Prefer": "count=exact"})
    assert (head.status_code, head.content, head.headers["content-range"]) == (200, b"", "0-4/5")


def test_singular(http: httpx.Client, world: World) -> None:
    accept = {"Accept": "application/vnd.pgrst.object+json"}
    r = http.get(f"/slots?id=eq.{world.slot_id}&select=id,state", headers=accept)
    assert r.status_code == 200 and r.json() == {"id": world.slot_id, "state": "booked"}
    assert r.headers["content-type"] == "application/vnd.pgrst.object+json; charset=utf-8"
    r = http.get(f"/bookings?slot_id=eq.{world.slot_id}", headers=accept)
    assert r.status_code == 406
    assert r.json() == {
        "code": "PGRST116", "message": "JSON object requested, multiple (or no) rows returned",
        "details": "The result contains 2 rows", "hint": None,
    }
    r = http.get("/slots?id=eq.00000000-0000-0000-0000-000000000000", headers=accept)
    assert r.status_code == 406 and r.json()["details"] == "The result contains 0 rows"
    r = http.get("/slots?limit=1", headers={"Accept": "text/html"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST107"


def test_max_rows_truncates_silently(rest_no_anon: Rest, postgres: LocalPostgres) -> None:
    w = make_world(postgres, bookings=4)
    with rest_no_anon.client(service_headers()) as client:
        r = client.get(f"/bookings?slot_id=eq.{w.slot_id}&select=id")
        assert (r.status_code, len(r.json()), r.headers["content-range"]) == (200, 2, "0-1/*")
        r = client.get(f"/bookings?slot_id=eq.{w.slot_id}&select=id&limit=1")
        assert len(r.json()) == 1


def test_openapi_root(http: httpx.Client) -> None:
    r = http.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/openapi+json")
    doc = r.json()
    assert doc["swagger"] == "2.0" and {"/slots", "/bookings"} <= set(doc["paths"])
    assert http.get("/rest/v1/").json()["swagger"] == "2.0"
