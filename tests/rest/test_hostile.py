"""Hostile query strings: each gets a PostgREST-style error (or a correct empty result) and changes
nothing. The tables' contents are hashed before and after."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.postgres import LocalPostgres
from tests.rest.conftest import World

TABLES = ("vendors", "customers", "slots", "bookings")
ERROR_KEYS = {"code", "message", "details", "hint"}


def fingerprint(postgres: LocalPostgres) -> str:
    """Row count and md5 of every row of the four tables, read as the superuser."""
    parts = [
        f"(select count(*) || ':' || coalesce(md5(string_agg(t::text, ',' order by t::text)), '') from {t} t)"
        for t in TABLES
    ]
    return postgres.psql("-At", sql="select " + " || '|' || ".join(parts)).strip()


@pytest.fixture()
def unchanged(postgres: LocalPostgres, world: World) -> Iterator[None]:
    """Requests `world` first, so that its fresh rows are part of the "before"."""
    before = fingerprint(postgres)
    yield
    assert fingerprint(postgres) == before, "a hostile request changed the database"


def _assert_refused_or_empty(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        assert set(r.json()) == ERROR_KEYS, r.text
    else:
        assert r.json() == [] or r.request.method == "GET", r.text


HOSTILE_QUERIES = [
    # select
    "select=id;drop table bookings",
    "select=id,(select 1)",
    'select="id""; drop table bookings; --"',
    "select=id::text;drop table bookings",
    "select=id::text) from slots; --",
    "select=id::pg_sleep",
    "select=*,bookings(id;delete from bookings)",
    "select=id,bookings;drop(id)",
    "select=id,\"bookings\"\"(x)\"(id)",
    "select=id,bookings!\"x'--\"(id)",
    "select=x:id->>'a'",
    "select=ställe,🙂:id",
    # filters: values
    "id=eq.'; drop table bookings; --",
    "status=eq.x' OR '1'='1",
    "status=in.(a'),('b",
    "status=like.%'--",
    "status=eq." + "A" * 5000,
    "status=eq.✓ünï\u202e",
    "status=in.(" + ",".join(["x"] * 500) + ")",
    "id=eq.%00",
    "status=eq.%00",
    # filters: names and operators
    "status;drop table bookings=eq.1",
    '"status\'--"=eq.1',
    "status=drop.1",
    "status=eq(any;).{x}",
    "status=fts(english'--).x",
    "or=(status.eq.x);drop table bookings;--",
    "or=(status.eq.x,id.eq.1)--)",
    "and=(not.status.eq.x,or(id.is.drop))",
    "id->>x=eq.1",
    "id->0=eq.1",
    "bookings.status=eq.x",
    "nothere.status=eq.x",
    # order / limit / offset
    "order=id;drop table bookings",
    "order=status.desc;--",
    "order=(select 1)",
    "order=id.desc.nullsfirst.sideways",
    "limit=1;drop table bookings",
    "limit=99999999999999999999999",
    "offset=-1",
    "limit=1e3",
    "columns=a;drop",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
@pytest.mark.usefixtures("unchanged")
def test_hostile_get(http: httpx.Client, world: World, query: str) -> None:
    r = http.get(f"/bookings?{query}")
    _assert_refused_or_empty(r)


@pytest.mark.usefixtures("unchanged")
def test_hostile_paths_and_headers(http: httpx.Client, world: World) -> None:
    for path in ["/slots;drop table bookings", '/"slots"', "/pg_catalog.pg_roles", "/pg_roles", "/rpc/pg_sleep",
                 "/%E2%9C%93", "/slots/x"]:
        r = http.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code)
    r = http.get("/slots", headers={"Accept-Profile": "public; drop table bookings"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST106"
    r = http.get("/slots", headers={"Accept-Profile": "pg_catalog"})
    assert r.status_code == 406
    r = http.get("/slots?limit=1", headers={"Prefer": "count=exact; drop table bookings", "Range": "0-1; drop"})
    assert r.status_code == 200


@pytest.mark.usefixtures("unchanged")
def test_hostile_writes_change_nothing(http: httpx.Client, world: World) -> None:
    r = http.post("/bookings", json={'status"; drop table bookings; --': "x"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST204"
    r = http.post("/bookings?columns=status;drop", json={"status": "x"})
    assert r.status_code == 400
    r = http.patch("/bookings?id=eq.x' or 1=1 --", json={"status": "failed"})
    assert r.status_code == 400 and r.json()["code"] == "22P02"
    r = http.patch(f"/bookings?id=eq.{world.booking_ids[1]}", json={"status": "rejected'; delete from bookings; --"})
    assert r.status_code == 400 and r.json()["code"] == "23514"
    r = http.delete("/bookings?status=eq.x' or '1'='1")
    assert r.status_code == 204  # matched nothing: the quote is a value, not SQL
    r = http.delete(f"/bookings?id=eq.{world.booking_ids[1]}&or=(id.eq.1);delete from bookings")
    assert r.status_code == 400
    r = http.post("/bookings", content="[" * 10000, headers={"Content-Type": "application/json"})
    assert r.status_code == 400


_names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=0, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=_names, op=st.sampled_from(["eq", "neq", "gt", "like", "ilike", "in", "is", "not.eq", "cs", "zz", ""]),
       value=_names, select=_names, order=_names)
def test_fuzzed_queries_never_500(http: httpx.Client, postgres: LocalPostgres, key: str, op: str, value: str,
                                  select: str, order: str) -> None:
    query = f"{quote(key)}={quote(op)}.{quote(value)}&select={quote(select)}&order={quote(order)}&limit=3"
    r = http.get(f"/bookings?{query}")
    assert r.status_code < 500, (query, r.status_code, r.text)
    if r.status_code >= 400:
        assert set(r.json()) == ERROR_KEYS
