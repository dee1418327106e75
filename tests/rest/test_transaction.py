"""The per-request transaction in one pipelined exchange (pipeline.py): the role and claims are SET
LOCAL for the request's statement only, so RLS holds and nothing reaches the next request, even when
every request shares the one pooled connection (PGRST_DB_POOL=1), after failures too."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from harness.postgres import LocalPostgres
from tests.rest.conftest import World, _spawn, make_world, token


@pytest.fixture(scope="module")
def probe_schema(postgres: LocalPostgres) -> Iterator[str]:
    """A view echoing what its reader's transaction was set up with (current_user is the reader's
    role even through a view owned by the superuser)."""
    schema = f"probe_{uuid.uuid4().hex[:8]}"
    postgres.psql(sql=f"""
        create schema {schema};
        create view {schema}.request_echo as select
            current_user::text as role,
            current_setting('request.jwt.claims', true) as claims,
            current_setting('request.headers', true) as headers,
            current_setting('request.method', true) as method,
            current_setting('request.path', true) as path,
            current_setting('transaction_read_only') as read_only,
            current_setting('request.headers', true)::json ->> 'x-probe' as probe,
            pg_backend_pid() as backend;
        grant usage on schema {schema} to anon, authenticated, service_role;
        grant select on {schema}.request_echo to anon, authenticated, service_role""")
    try:
        yield schema
    finally:
        postgres.psql(sql=f"drop schema if exists {schema} cascade")


@pytest.fixture(scope="module")
def one_connection(postgres: LocalPostgres, probe_schema: str) -> Iterator[str]:
    """simcity-rest with a pool of ONE connection: consecutive requests run on the same session."""
    process, url = _spawn(postgres, PGRST_DB_POOL="1", PGRST_DB_SCHEMAS=f"public,{probe_schema}")
    with process:
        yield url


def _get(url: str, path: str, bearer: str | None = None, **headers: str) -> httpx.Response:
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    with httpx.Client(base_url=url, headers=headers, timeout=20.0) as client:
        return client.get(path)


def _echo(url: str, schema: str, bearer: str | None = None, **headers: str) -> dict[str, str]:
    r = _get(url, "/request_echo", bearer, **{"Accept-Profile": schema, **headers})
    assert r.status_code == 200, r.text
    [row] = r.json()
    return row


def test_setup_values_arrive_exactly_and_do_not_outlive_the_request(one_connection: str, probe_schema: str) -> None:
    # Quotes, backslashes and escapes must reach PostgreSQL as they are, not as SQL.
    tricky = "O'Brien \\' \\\\ '' \\n \"); SELECT 1; --"
    first = _echo(one_connection, probe_schema, token("service_role", sub="user-1", note=tricky), **{"X-Probe": tricky})
    assert first["role"] == "service_role" and first["method"] == "GET" and first["path"] == "/request_echo"
    assert json.loads(first["claims"])["note"] == tricky and json.loads(first["claims"])["sub"] == "user-1"
    assert json.loads(first["headers"])["x-probe"] == tricky
    assert first["read_only"] == "on"  # GET runs READ ONLY, as in PostgREST
    # The same pooled connection next, without a token: anon, and nothing of the first request left.
    second = _echo(one_connection, probe_schema)
    assert second["role"] == "anon"
    assert json.loads(second["claims"]) == {"role": "anon"}
    assert "x-probe" not in json.loads(second["headers"])


def test_bind_parameters_arrive_exactly(one_connection: str, probe_schema: str) -> None:
    """Text and text[] parameters travel in PostgreSQL's text format: quotes, backslashes, braces and
    commas inside an `in.(...)` element must not split or change it."""
    weird = 'a"b\\c{x,y} NULL'
    headers = {"Accept-Profile": probe_schema, "X-Probe": weird}
    quoted = weird.replace("\\", "\\\\").replace('"', '\\"')

    def rows(probe_filter: str) -> int:
        with httpx.Client(base_url=one_connection, headers=headers, timeout=20.0) as client:
            r = client.get("/request_echo", params={"probe": probe_filter})
        assert r.status_code == 200, r.text
        return len(r.json())

    assert rows(f'in.("{quoted}",other)') == 1
    assert rows(f'in.("{quoted}x",other)') == 0
    assert rows(f"eq.{weird}") == 1


def test_rls_on_a_shared_connection_never_shows_another_customers_rows(
    one_connection: str, postgres: LocalPostgres,
) -> None:
    world: World = make_world(postgres)
    path = f"/bookings?slot_id=eq.{world.slot_id}&select=id&order=id"
    mine = [token("authenticated", sub=c, aud="authenticated") for c in world.customer_ids]
    for _ in range(3):  # interleaved, so each request follows one of another identity on the same session
        assert _get(one_connection, path, token("service_role")).json() == [{"id": b} for b in sorted(world.booking_ids)]
        for customer_token, booking in zip(mine, world.booking_ids):
            assert _get(one_connection, path, customer_token).json() == [{"id": booking}]
        # The same role without a `sub`: if the last request's claims had leaked, it would see its rows.
        assert _get(one_connection, path, token("authenticated")).json() == []
        r = _get(one_connection, path)  # anon holds no grant on bookings: the service role must not linger
        assert r.status_code == 401 and r.json()["code"] == "42501"


def test_a_failed_request_leaves_the_connection_clean(one_connection: str, probe_schema: str, postgres: LocalPostgres) -> None:
    r = _get(one_connection, "/request_echo", token("no_such_role"), **{"Accept-Profile": probe_schema})
    assert r.status_code == 400 and r.json()["message"] == 'role "no_such_role" does not exist'
    # A NUL cannot be sent in a SQL literal: refused as PostgreSQL refuses it in a bind parameter.
    r = _get(one_connection, "/request_echo", token("service\u0000role"), **{"Accept-Profile": probe_schema})
    assert r.status_code == 400 and r.json()["code"] == "22021"
    world = make_world(postgres)
    singular = {"Accept": "application/vnd.pgrst.object+json"}
    r = _get(one_connection, f"/bookings?slot_id=eq.{world.slot_id}", token("service_role"), **singular)
    assert r.status_code == 406 and r.json()["code"] == "PGRST116"
    service = {"Authorization": f"Bearer {token('service_role')}"}
    with httpx.Client(base_url=one_connection, headers=service, timeout=20.0) as client:
        r = client.delete(f"/slots?id=eq.{world.slot_id}")  # still referenced: fails in the statement
        assert r.status_code == 409 and r.json()["code"] == "23503"
        # A singular write of two rows: rolled back after its statement ran, in a second exchange.
        r = client.patch(f"/bookings?slot_id=eq.{world.slot_id}", json={"status": "failed"},
                         headers={**singular, "Prefer": "return=representation"})
        assert r.status_code == 406 and r.json()["code"] == "PGRST116"
        statuses = client.get(f"/bookings?slot_id=eq.{world.slot_id}&select=status&order=status").json()
        assert statuses == [{"status": "confirmed"}, {"status": "rejected"}]
    after = _echo(one_connection, probe_schema)
    assert after["role"] == "anon" and json.loads(after["claims"]) == {"role": "anon"}
    # And no transaction is left open on the server once the answers are in.
    deadline = time.monotonic() + 10
    while postgres.psql("-tA", sql="select count(*) from pg_stat_activity where usename = 'authenticator' "
                            "and state like 'idle in transaction%'").strip() != "0":
        assert time.monotonic() < deadline, "a transaction was left open"
        time.sleep(0.05)


def test_a_connection_killed_between_requests_is_replaced(one_connection: str, probe_schema: str,
                                                         postgres: LocalPostgres) -> None:
    backend = _echo(one_connection, probe_schema)["backend"]
    postgres.psql(sql=f"select pg_terminate_backend({int(backend)}, 10000)")  # waits until it has exited
    # The dead pooled connection is noticed before anything is sent on it, and replaced: no error.
    after = _echo(one_connection, probe_schema)
    assert after["role"] == "anon" and after["backend"] != backend
