from harness.postgres import DB_DIR, LocalPostgres


def test_schema_applied_and_idempotent(postgres: LocalPostgres) -> None:
    postgres.apply(DB_DIR)
    tables = postgres.psql("-At", sql="select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname='public'")
    assert tables.strip() == "bookings,customers,slots,vendors"


def test_one_confirmed_per_slot_is_enforced(postgres: LocalPostgres) -> None:
    out = postgres.psql("-At", sql="""
        with v as (insert into vendors(name) values ('v') returning id),
             s as (insert into slots(vendor_id, starts_at) select id, now() from v returning id),
             c as (insert into customers(name) values ('c') returning id)
        insert into bookings(intent_id, slot_id, customer_id, status)
        select gen_random_uuid(), s.id, c.id, 'confirmed' from s, c returning slot_id""")
    slot = out.strip()
    try:
        postgres.psql(sql=f"""insert into bookings(intent_id, slot_id, customer_id, status)
            select gen_random_uuid(), '{slot}', customer_id, 'confirmed' from bookings where slot_id='{slot}'""")
    except Exception as exc:  # noqa: BLE001
        assert "psql failed" in str(exc)
    else:
        raise AssertionError("a second confirmed booking on one slot was accepted")


def test_the_cluster_wants_a_password_and_each_has_its_own(postgres) -> None:  # type: ignore[no-untyped-def]
    import asyncio  # noqa: PLC0415

    import asyncpg  # noqa: PLC0415

    from harness.postgres import LocalPostgres  # noqa: PLC0415

    async def connect(dsn: str) -> str:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
            return type(exc).__name__
        await conn.close()
        return "connected"

    no_password = f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
    wrong = f"postgresql://postgres:guess@127.0.0.1:{postgres.port}/postgres"
    assert asyncio.run(connect(postgres.superuser_dsn)) == "connected"
    assert asyncio.run(connect(wrong)) == "InvalidPasswordError"
    assert asyncio.run(connect(no_password)) != "connected"
    assert postgres.superuser_password not in repr(postgres)
    other = LocalPostgres(apply_schema=False)
    assert {other.superuser_password, other.authenticator_password}.isdisjoint(
        {postgres.superuser_password, postgres.authenticator_password})
