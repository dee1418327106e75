"""The schema cache: stale until `NOTIFY pgrst, 'reload schema'` or SIGUSR1, then fresh."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable

import httpx

from harness.postgres import LocalPostgres
from tests.rest.conftest import _spawn, service_headers


def _eventually(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_reload_on_notify_and_sigusr1(postgres: LocalPostgres) -> None:
    schema = f"reload_{uuid.uuid4().hex[:8]}"
    process, url = _spawn(postgres, PGRST_DB_SCHEMAS=f"public,{schema}")
    try:
        with process, httpx.Client(base_url=url, headers={**service_headers(), "Accept-Profile": schema}) as client:
            postgres.psql(sql=f"""
                create schema {schema};
                create table {schema}.gadgets (id int primary key, name text);
                insert into {schema}.gadgets values (1, 'one');
                grant usage on schema {schema} to service_role;
                grant select on all tables in schema {schema} to service_role""")
            r = client.get("/gadgets")
            assert r.status_code == 404 and r.json()["code"] == "42P01"  # the cache is stale, as in PostgREST
            postgres.psql(sql="notify pgrst, 'reload schema'")
            _eventually(lambda: client.get("/gadgets").status_code == 200)
            assert client.get("/gadgets").json() == [{"id": 1, "name": "one"}]

            postgres.psql(sql=f"""
                alter table {schema}.gadgets add column color text default 'red';
                create table {schema}.parts (id int primary key, gadget_id int references {schema}.gadgets(id));
                insert into {schema}.parts values (7, 1);
                grant select on all tables in schema {schema} to service_role""")
            assert client.get("/gadgets?select=color").json()["code"] == "42703"
            assert client.get("/gadgets?select=id,parts(id)").json()["code"] == "PGRST200"
            assert process.pid is not None
            os.kill(process.pid, signal.SIGUSR1)
            _eventually(lambda: client.get("/gadgets?select=color").status_code == 200)
            assert client.get("/gadgets?select=id,color,parts(id)").json() == [{"id": 1, "color": "red", "parts": [{"id": 7}]}]
            # Two foreign keys to the same table: ambiguous without a hint (300 PGRST201), fine with one.
            postgres.psql(sql=f"""
                create table {schema}.links (id int primary key, a int references {schema}.gadgets(id),
                                             b int references {schema}.gadgets(id));
                insert into {schema}.links values (3, 1, null);
                grant select on all tables in schema {schema} to service_role;
                notify pgrst, 'reload schema'""")
            _eventually(lambda: client.get("/links").status_code == 200)
            r = client.get("/gadgets?select=id,links(id)")
            assert r.status_code == 300 and r.json()["code"] == "PGRST201" and len(r.json()["details"]) == 2
            r = client.get("/gadgets?select=id,links!links_a_fkey(id)")
            assert r.json() == [{"id": 1, "links": [{"id": 3}]}]
            r = client.get("/gadgets?select=id,links!b(id)")  # hint by column name
            assert r.json() == [{"id": 1, "links": []}]
            r = client.get("/links?select=id,gadgets!a(name)")
            assert r.json() == [{"id": 3, "gadgets": {"name": "one"}}]
            # Unlisted schemas stay out of reach whatever the cache holds.
            r = client.get("/gadgets", headers={"Accept-Profile": "pg_catalog"})
            assert r.status_code == 406 and r.json()["code"] == "PGRST106"
    finally:
        postgres.psql(sql=f"drop schema if exists {schema} cascade")
