"""The official PostgREST client (postgrest-py, as used by supabase-py) works unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from postgrest import APIError, SyncPostgrestClient

from harness.contract import SNAPSHOT_SELECT

from tests.rest.conftest import SERVICE_KEY, Rest, World


@pytest.fixture()
def client(rest: Rest) -> Iterator[SyncPostgrestClient]:
    with SyncPostgrestClient(
        f"{rest.url}/rest/v1", headers={"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}"},
    ) as c:
        yield c


def test_select_filters_and_embedding(client: SyncPostgrestClient, world: World) -> None:
    snapshot = (
        client.table("slots")
        .select(SNAPSHOT_SELECT)
        .eq("id", world.slot_id)
        .execute()
    )
    [slot] = snapshot.data
    assert slot["state"] == "booked" and len(slot["bookings"]) == 2
    rows = (
        client.table("bookings").select("id,status")
        .eq("slot_id", world.slot_id).in_("status", ["confirmed", "a,b"]).neq("status", "x")
        .order("status", desc=True).limit(5).execute()
    )
    assert rows.data == [{"id": world.booking_ids[0], "status": "confirmed"}]
    ored = client.table("bookings").select("id").eq("slot_id", world.slot_id).or_("status.eq.rejected,status.eq.pending").execute()
    assert ored.data == [{"id": world.booking_ids[1]}]
    liked = client.table("bookings").select("id").eq("slot_id", world.slot_id).ilike("status", "%CONF%").execute()
    assert liked.data == [{"id": world.booking_ids[0]}]
    nulls = client.table("bookings").select("id").eq("slot_id", world.slot_id).is_("status", "null").execute()
    assert nulls.data == []


def test_single_maybe_single_and_count(client: SyncPostgrestClient, world: World) -> None:
    one = client.table("slots").select("id,state").eq("id", world.slot_id).single().execute()
    assert one.data == {"id": world.slot_id, "state": "booked"}
    with pytest.raises(APIError) as err:
        client.table("bookings").select("id").eq("slot_id", world.slot_id).single().execute()
    assert err.value.code == "PGRST116"
    none = client.table("slots").select("id").eq("id", str(uuid.uuid4())).maybe_single().execute()
    assert none is None
    counted = client.table("bookings").select("id", count="exact").eq("slot_id", world.slot_id).limit(1).execute()
    assert counted.count == 2 and len(counted.data) == 1


def test_insert_update_delete(client: SyncPostgrestClient, world: World) -> None:
    intent = str(uuid.uuid4())
    inserted = client.table("bookings").insert(
        {"intent_id": intent, "slot_id": world.slot_id, "customer_id": world.customer_ids[1], "status": "pending"}
    ).execute()
    assert inserted.data[0]["intent_id"] == intent and inserted.data[0]["status"] == "pending"
    bulk = client.table("bookings").insert([
        {"intent_id": str(uuid.uuid4()), "slot_id": world.slot_id, "customer_id": world.customer_ids[1], "status": "failed"},
        {"intent_id": str(uuid.uuid4()), "slot_id": world.slot_id, "customer_id": world.customer_ids[0], "status": "pending"},
    ]).execute()
    assert [b["status"] for b in bulk.data] == ["failed", "pending"]
    with pytest.raises(APIError) as err:
        client.table("bookings").insert([
            {"intent_id": str(uuid.uuid4()), "slot_id": world.slot_id, "customer_id": world.customer_ids[1], "status": "failed"},
            {"intent_id": str(uuid.uuid4()), "slot_id": world.slot_id, "customer_id": world.customer_ids[0]},
        ]).execute()
    assert err.value.code == "23502"  # NOT NULL: the client's `columns=` makes a missing key NULL
    updated = client.table("bookings").update({"status": "failed"}).eq("intent_id", intent).execute()
    assert updated.data[0]["status"] == "failed"
    deleted = client.table("bookings").delete().eq("intent_id", intent).execute()
    assert [d["intent_id"] for d in deleted.data] == [intent]
    assert client.table("bookings").select("id").eq("intent_id", intent).execute().data == []
    upserted = client.table("bookings").upsert(
        {"id": world.booking_ids[1], "intent_id": world.intent_ids[1], "slot_id": world.slot_id,
         "customer_id": world.customer_ids[1], "status": "failed"}
    ).execute()
    assert upserted.data[0]["status"] == "failed"


def test_errors_surface_as_api_errors(client: SyncPostgrestClient) -> None:
    with pytest.raises(APIError) as err:
        client.table("slots").select("nope").execute()
    assert err.value.code == "42703"
    with pytest.raises(APIError) as err:
        client.table("nothing_here").select("*").execute()
    assert err.value.code == "42P01"
