"""Each mutant's damage, shown for real in the database.

Mutants drop schema safety nets, so this module runs its own PostgreSQL cluster and gives every
test a fresh database cloned from the schema (CREATE DATABASE ... TEMPLATE): nothing leaks into the
session database or from one mutant to the next.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from booking_app.errors import SafetyNetsUnset
from booking_app.safety_nets import NetsGate, SafetyNet, SafetyNetError, apply_safety_nets, present
from booking_app.strategies import MUTANTS
from harness.errors import StackStartError
from harness.postgres import LocalPostgres
from tests.app.conftest import RunningApp, Sc1, new_fixture, new_fixture_async, slot_truth, start_app

_names = itertools.count()
WIDE_WINDOW_MS = "1000"  # for kill-in-the-window tests: wide enough for a busy 2-core machine


@pytest.fixture(scope="module")
def mutant_cluster() -> Iterator[LocalPostgres]:
    with LocalPostgres() as cluster:
        yield cluster


@pytest.fixture
def mutant_db(mutant_cluster: LocalPostgres) -> str:
    """A fresh database with compose/db's schema, for one test only."""
    name = f"mutant_{next(_names)}"
    mutant_cluster.psql(sql=f"CREATE DATABASE {name} TEMPLATE postgres")
    return mutant_cluster.dsn(database=name)


class MutantApp:
    def __init__(self, database_url: str, strategy: str, **kwargs: Any) -> None:
        self.database_url, self.strategy, self.kwargs = database_url, strategy, kwargs

    def __enter__(self) -> RunningApp:
        self.app = start_app(self.database_url, self.strategy, **self.kwargs)
        return self.app

    def __exit__(self, *exc: object) -> None:
        self.app.process.stop()


async def _race(app: RunningApp, intents: int, fresh_connections: bool) -> tuple[Sc1, list[int]]:
    """`intents` distinct intents on one fresh slot, all in flight at once."""
    async with app.async_client() as setup:
        sc1 = await new_fixture_async(setup)
    headers = {"connection": "close"} if fresh_connections else {}
    async with app.async_client(limits=httpx.Limits(max_connections=intents)) as client:
        bodies = [sc1.intent(sc1.c1 if i % 2 else sc1.c2) for i in range(intents)]
        answers = await asyncio.wait_for(
            asyncio.gather(*(client.post("/bookings", json=b, headers=headers) for b in bodies)), timeout=30
        )
    return sc1, [a.status_code for a in answers]


def _double_book(app: RunningApp, attempts: int, intents: int, fresh_connections: bool = False) -> int:
    """Race fresh slots until one holds two confirmed bookings; return how many it took (bounded)."""
    for attempt in range(1, attempts + 1):
        sc1, statuses = asyncio.run(_race(app, intents, fresh_connections))
        truth = slot_truth(app.database_url, sc1.slot_id)
        if len(truth.confirmed) >= 2:
            assert statuses.count(201) >= 2, "the clients were told too: several 201s for one slot"
            return attempt
    raise AssertionError(f"no double booking in {attempts} races of {intents} intents")


def test_every_mutant_has_a_damage_test() -> None:
    tested = {name.removeprefix("test_").split("_shows_")[0] for name in globals() if "_shows_" in name}
    assert tested == set(MUTANTS)


def test_racy_shows_double_booking_under_concurrency(mutant_db: str) -> None:
    with MutantApp(mutant_db, "racy") as app:
        _double_book(app, attempts=5, intents=8)


def test_in_memory_lock_shows_double_booking_with_two_processes(mutant_db: str) -> None:
    # New connections per request, so the kernel spreads them over both worker processes.
    with MutantApp(mutant_db, "in_memory_lock", workers=2) as app:
        _double_book(app, attempts=10, intents=16, fresh_connections=True)


def test_in_memory_lock_is_right_in_one_process_until_it_restarts(mutant_db: str) -> None:
    """Control: the bug is process-local state. One process decides right; a restart forgets."""
    with MutantApp(mutant_db, "in_memory_lock", workers=1) as app:
        sc1, statuses = asyncio.run(_race(app, 16, fresh_connections=True))
        assert sorted(statuses) == [201] + [409] * 15
        app.process.restart()
        with app.client() as client:
            assert client.post("/bookings", json=sc1.intent(sc1.c1)).status_code == 201
        assert len(slot_truth(app.database_url, sc1.slot_id).confirmed) == 2


def test_flip_on_retry_shows_the_winner_flipping_on_a_replayed_loser(mutant_db: str) -> None:
    with MutantApp(mutant_db, "flip_on_retry") as app, app.client() as client:
        sc1 = new_fixture(client)
        a, b = sc1.intent(sc1.c1), sc1.intent(sc1.c2)
        won, lost = client.post("/bookings", json=a), client.post("/bookings", json=b)
        assert (won.status_code, lost.status_code) == (201, 409)
        replay = client.post("/bookings", json=b)
        truth = slot_truth(app.database_url, sc1.slot_id)
    assert replay.status_code == 200 and replay.json()["booking"]["status"] == "confirmed"
    statuses = {x["intent_id"]: x["status"] for x in truth.bookings}
    # The client told 201 no longer holds the slot: SC-1 invariants 4 and 5 broken in the data.
    assert statuses == {a["intent_id"]: "rejected", b["intent_id"]: "confirmed"}


def test_no_idempotency_shows_two_rows_for_one_intent(mutant_db: str) -> None:
    with MutantApp(mutant_db, "no_idempotency") as app, app.client() as client:
        sc1 = new_fixture(client)
        intent = sc1.intent(sc1.c1)
        first, replay = client.post("/bookings", json=intent), client.post("/bookings", json=intent)
        truth = slot_truth(app.database_url, sc1.slot_id)
    assert first.status_code == 201
    assert replay.status_code == 409  # the holder of the slot is told it lost
    rows = [x for x in truth.bookings if x["intent_id"] == intent["intent_id"]]
    assert len(rows) == 2 and replay.json()["booking"]["id"] != first.json()["booking"]["id"]


def _post_in_background(app: RunningApp, body: dict[str, str]) -> threading.Thread:
    def send() -> None:
        try:
            with app.client(timeout_s=10) as client:
                client.post("/bookings", json=body)
        except httpx.HTTPError:
            pass  # the kill lands while it is in flight: indeterminate, as intended

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_split_tx_shows_a_stranded_slot_when_killed_between_its_transactions(mutant_db: str) -> None:
    with MutantApp(mutant_db, "split_tx", extra_env={"MUTANT_WINDOW_MS": WIDE_WINDOW_MS}) as app:
        with app.client() as client:
            sc1 = new_fixture(client)
        a, b = sc1.intent(sc1.c1), sc1.intent(sc1.c2)
        sender = _post_in_background(app, a)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait for transaction 1 to commit: slot booked, no booking
            truth = slot_truth(app.database_url, sc1.slot_id)
            if truth.state == "booked":
                break
            time.sleep(0.01)
        assert truth.state == "booked" and truth.bookings == [], "the kill must land inside the window"
        app.process.restart()
        sender.join(timeout=10)
        with app.client() as client:
            answers = [client.post("/bookings", json=x).status_code for x in (a, b, a, b)]
        truth = slot_truth(app.database_url, sc1.slot_id)
    # Stranded for ever: booked, yet nobody holds it, and every customer is turned away.
    assert answers == [409, 409, 409, 409]
    assert truth.state == "booked" and truth.confirmed == [] and not truth.coherent()


def test_ack_before_commit_shows_an_acknowledged_booking_lost_by_a_kill(mutant_db: str) -> None:
    with MutantApp(mutant_db, "ack_before_commit", extra_env={"MUTANT_WINDOW_MS": WIDE_WINDOW_MS}) as app:
        with app.client() as client:
            sc1 = new_fixture(client)
            intent = sc1.intent(sc1.c1)
            acked = client.post("/bookings", json=intent)
        app.process.kill()  # right after the 201, inside the deferred-commit window
        truth = slot_truth(app.database_url, sc1.slot_id)
        app.process.start()
        with app.client() as client:
            again = client.post("/bookings", json=intent)
    assert acked.status_code == 201
    assert truth.bookings == [] and truth.state == "free", "the acknowledged booking is gone"
    # The replay is decided afresh: a new booking id, so SC-1's stability check catches it too.
    assert again.json()["booking"]["id"] != acked.json()["booking"]["id"]


def test_safety_nets_are_dropped_and_restored_in_one_place(mutant_db: str) -> None:
    async def scenario() -> None:
        conn = await asyncpg.connect(mutant_db)
        try:
            await apply_safety_nets(conn, frozenset(SafetyNet))
            assert await present(conn) == set()
            await apply_safety_nets(conn, frozenset())
            assert await present(conn) == set(SafetyNet)
            # A mutant's leftovers (two rows for one intent) make a restore impossible: fail loudly.
            await apply_safety_nets(conn, frozenset({SafetyNet.INTENT_UNIQUE}))
            vendor = await conn.fetchval("INSERT INTO vendors (name) VALUES ('v') RETURNING id")
            slot = await conn.fetchval("INSERT INTO slots (vendor_id, starts_at) VALUES ($1, now()) RETURNING id", vendor)
            customer = await conn.fetchval("INSERT INTO customers (name) VALUES ('c') RETURNING id")
            intent = uuid.uuid4()
            for _ in range(2):
                await conn.execute(
                    "INSERT INTO bookings (intent_id, slot_id, customer_id, status) VALUES ($1, $2, $3, 'rejected')",
                    intent, slot, customer,
                )
            with pytest.raises(SafetyNetError, match="duplicates"):
                await apply_safety_nets(conn, frozenset())
        finally:
            await conn.close()

    asyncio.run(scenario())


def test_an_unknown_strategy_refuses_to_start(mutant_db: str) -> None:
    with pytest.raises(StackStartError, match="exited with code 2.*unknown BOOKING_STRATEGY"):
        start_app(mutant_db, "optimistic")


async def _nets_after_workers_start(database_url: str, strategy: str, workers: int = 1) -> set[SafetyNet]:
    """`workers` gates of one strategy, each with its own pool as a worker has, at their first
    contact together; then which nets exist."""
    pools = [await asyncpg.create_pool(database_url, min_size=0, max_size=1) for _ in range(workers)]
    try:
        await asyncio.gather(*(NetsGate(strategy).ensure(pool) for pool in pools))
        async with pools[0].acquire() as conn:
            return await present(conn)
    finally:
        for pool in pools:
            await pool.close()


def test_a_workers_first_contact_drops_a_mutants_nets_and_atomic_restores_them(mutant_db: str) -> None:
    assert asyncio.run(_nets_after_workers_start(mutant_db, "racy")) == {SafetyNet.INTENT_UNIQUE}
    assert asyncio.run(_nets_after_workers_start(mutant_db, "no_idempotency")) == {SafetyNet.ONE_CONFIRMED_PER_SLOT}
    assert asyncio.run(_nets_after_workers_start(mutant_db, "atomic")) == set(SafetyNet)


def test_workers_starting_together_change_the_nets_one_at_a_time(mutant_db: str) -> None:
    # Both nets dropped, then eight workers of atomic restore them at once: without the advisory
    # lock, the second ADD CONSTRAINT fails on the first one's constraint.
    assert asyncio.run(_nets_after_workers_start(mutant_db, "no_idempotency")) == {SafetyNet.ONE_CONFIRMED_PER_SLOT}
    assert asyncio.run(_nets_after_workers_start(mutant_db, "racy", workers=8)) == {SafetyNet.INTENT_UNIQUE}
    assert asyncio.run(_nets_after_workers_start(mutant_db, "atomic", workers=8)) == set(SafetyNet)


def test_a_first_contacts_check_opens_the_gate_only_when_the_nets_are_right(mutant_db: str) -> None:
    """/health pings with the check on a worker's first contact: it must never open the gate of
    a mutant whose nets are still up (it would serve looking correct)."""
    async def opened(strategy: str) -> bool:
        conn = await asyncpg.connect(mutant_db)
        try:
            await apply_safety_nets(conn, frozenset())  # every net up, as atomic needs
            gate = NetsGate(strategy)
            await gate.check(conn)
            return gate.ready
        finally:
            await conn.close()

    assert asyncio.run(opened("atomic"))
    assert not asyncio.run(opened("racy")) and not asyncio.run(opened("no_idempotency"))


def test_nets_that_cannot_be_restored_fail_every_request_of_the_worker(mutant_db: str) -> None:
    async def scenario() -> list[str]:
        pool = await asyncpg.create_pool(mutant_db, min_size=0, max_size=1)
        try:
            async with pool.acquire() as conn:
                await apply_safety_nets(conn, frozenset({SafetyNet.INTENT_UNIQUE}))
                vendor = await conn.fetchval("INSERT INTO vendors (name) VALUES ('v') RETURNING id")
                slot = await conn.fetchval("INSERT INTO slots (vendor_id, starts_at) VALUES ($1, now()) RETURNING id",
                                           vendor)
                customer = await conn.fetchval("INSERT INTO customers (name) VALUES ('c') RETURNING id")
                await conn.executemany(
                    "INSERT INTO bookings (intent_id, slot_id, customer_id, status) VALUES ($1, $2, $3, 'rejected')",
                    [(uuid.UUID(int=7), slot, customer)] * 2)
            gate, errors = NetsGate("atomic"), []
            for _ in range(2):
                with pytest.raises(SafetyNetsUnset) as caught:
                    await gate.ensure(pool)
                errors.append(str(caught.value))
            return errors
        finally:
            await pool.close()

    errors = asyncio.run(scenario())
    assert all("duplicates" in e for e in errors), errors


def test_control_atomic_takes_the_same_attacks_without_damage(mutant_db: str) -> None:
    """The attacks above, against atomic: no double booking, no flip, no duplicate, no lost 201."""
    with MutantApp(mutant_db, "atomic", workers=2) as app:
        for _ in range(3):
            sc1, statuses = asyncio.run(_race(app, 16, fresh_connections=True))
            assert sorted(statuses) == [201] + [409] * 15
            assert len(slot_truth(app.database_url, sc1.slot_id).confirmed) == 1
        with app.client() as client:
            sc1 = new_fixture(client)
            a, b = sc1.intent(sc1.c1), sc1.intent(sc1.c2)
            won = client.post("/bookings", json=a)
            answers = [client.post("/bookings", json=x).status_code for x in (b, b, a, a)]
        assert won.status_code == 201 and answers == [409, 409, 200, 200]
        app.process.kill()  # right after the answers, as in the ack_before_commit test
        truth = slot_truth(app.database_url, sc1.slot_id)
        assert truth.coherent() and len(truth.bookings) == 2
        assert truth.confirmed[0]["id"] == won.json()["booking"]["id"]
