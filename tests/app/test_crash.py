"""Atomic under SIGKILL: replays keep their first answer, a killed burst leaves nothing torn."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from harness.postgres import LocalPostgres
from tests.app.conftest import RunningApp, new_fixture, new_fixture_async, slot_truth, start_app
from tests.leftovers import private_tmpdir


@pytest.fixture(scope="module")
def crash_app(postgres: LocalPostgres) -> Iterator[RunningApp]:
    """Killed and respawned by each test (restart leaves it serving); never stopped before the end."""
    app = start_app(postgres.superuser_dsn)
    try:
        yield app
    finally:
        app.process.stop()


def test_replays_after_a_sigkill_answer_the_first_decision(crash_app: RunningApp) -> None:
    with crash_app.client() as client:
        sc1 = new_fixture(client)
        a, b = sc1.intent(sc1.c1), sc1.intent(sc1.c2)
        won, lost = client.post("/bookings", json=a), client.post("/bookings", json=b)
    assert (won.status_code, lost.status_code) == (201, 409)
    crash_app.process.restart()  # SIGKILL of every worker, then respawn until /health is 200
    with crash_app.client() as client:
        again_a, again_b = client.post("/bookings", json=a), client.post("/bookings", json=b)
    assert again_a.status_code == 200 and again_a.json() == won.json()
    assert again_b.status_code == 409 and again_b.json() == lost.json()
    assert slot_truth(crash_app.database_url, sc1.slot_id).coherent()


def test_a_kill_during_a_burst_leaves_every_slot_coherent(crash_app: RunningApp) -> None:
    slots, per_slot, kill_after = 6, 10, 20

    async def burst() -> tuple[list, dict[str, httpx.Response]]:  # type: ignore[type-arg]
        answered: dict[str, httpx.Response] = {}
        async with crash_app.async_client(timeout_s=10, limits=httpx.Limits(max_connections=32)) as client:
            fixtures = [await new_fixture_async(client) for _ in range(slots)]
            intents = [f.intent(f.c1 if i % 2 else f.c2) for f in fixtures for i in range(per_slot)]
            gate = asyncio.Semaphore(32)
            killed = asyncio.Event()

            async def one(body: dict[str, str]) -> None:
                async with gate:
                    if killed.is_set():
                        return
                    try:
                        answer = await client.post("/bookings", json=body)
                    except httpx.HTTPError:
                        return  # indeterminate: the kill landed on it
                answered[body["intent_id"]] = answer
                if len(answered) == kill_after and not killed.is_set():
                    killed.set()
                    await asyncio.to_thread(crash_app.process.kill)

            await asyncio.wait_for(asyncio.gather(*(one(i) for i in intents)), timeout=60)
        return intents, answered  # type: ignore[return-value]

    intents, answered = asyncio.run(burst())
    assert kill_after <= len(answered) < len(intents), "the kill must land inside the burst"
    assert all(a.status_code in (201, 409) for a in answered.values())
    crash_app.process.start()

    # Nothing torn: every slot coherent; everything the clients were told still holds.
    for slot_id in {i["slot_id"] for i in intents}:
        assert slot_truth(crash_app.database_url, slot_id).coherent()
    with crash_app.client() as client:
        for intent in intents:
            again = client.post("/bookings", json=intent)
            first = answered.get(intent["intent_id"])
            if first is None:
                assert again.status_code in (201, 200, 409)  # undecided or lost: any definite answer
            elif first.status_code == 201:
                assert again.status_code == 200 and again.json() == first.json()
            else:
                assert again.status_code == 409 and again.json() == first.json()
    # Settled: every slot now has exactly one winner and is booked.
    for slot_id in {i["slot_id"] for i in intents}:
        truth = slot_truth(crash_app.database_url, slot_id)
        assert truth.coherent() and truth.state == "booked" and len(truth.confirmed) == 1


@pytest.fixture
def doomed_app(postgres: LocalPostgres) -> Iterator[RunningApp]:
    app = start_app(postgres.superuser_dsn)
    try:
        yield app
    finally:
        app.process.stop()


def test_sigterm_stops_all_workers_gracefully(doomed_app: RunningApp) -> None:
    crash_app = doomed_app
    pid = crash_app.process.pid
    assert pid is not None
    workers = psutil.Process(pid).children(recursive=True)
    assert workers
    os.kill(pid, signal.SIGTERM)  # the supervisor only: it must stop its workers itself
    deadline = time.monotonic() + 10
    while crash_app.process.running() and time.monotonic() < deadline:  # running() reaps on exit
        time.sleep(0.05)
    assert not crash_app.process.running()
    assert crash_app.process.returncode == 0

    def alive() -> list[psutil.Process]:
        return [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]

    # The workers follow their master within moments.
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive()


def test_a_restart_kills_every_process_of_the_app_and_forks_a_fresh_one(doomed_app: RunningApp) -> None:
    """The warm template (booking_app.template) forks the app; a crash is still SIGKILL of the
    app's whole process group, and the template is outside it."""
    before = psutil.Process(doomed_app.process.pid)
    old = [before, *before.children(recursive=True)]
    template = before.parent()
    assert template is not None and template.cmdline()[-2:] == ["-m", "booking_app.template"]
    assert os.getpgid(template.pid) != before.pid
    with doomed_app.client() as client:  # one boot id for every worker of one start
        boot_ids = {client.get("/health").json()["boot_id"] for _ in range(8)}
    assert len(boot_ids) == 1 and len(next(iter(boot_ids))) == 32
    doomed_app.process.restart()
    assert [p.pid for p in old if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    # Reaped too, by the template that adopted the orphaned workers: not even a zombie is left in
    # the old group, which is how the restart knew it was gone.
    with pytest.raises(ProcessLookupError):
        os.killpg(before.pid, 0)
    after = psutil.Process(doomed_app.process.pid)
    assert after.pid not in {p.pid for p in old} and after.parent().pid == template.pid  # type: ignore[union-attr]
    assert len(after.children()) == 2
    assert doomed_app.process.returncode is None
    with doomed_app.client() as client:
        health = client.get("/health")
    assert health.status_code == 200 and health.json()["boot_id"] not in boot_ids  # CONTRACT.md section 4


OWNER_SCRIPT = """
import sys
from booking_app.spawn import app_process
app = app_process(int(sys.argv[1]), sys.argv[2]).start()
print(app.pid, flush=True)
sys.stdin.read()
"""


def test_a_killed_owner_takes_its_apps_along(postgres: LocalPostgres) -> None:
    """kill -9 of the process that started the app: its template sees its stdin close and
    SIGKILLs the app it forked, so nothing serves on."""
    from harness.stacks._net import free_port  # noqa: PLC0415

    tmpdir = private_tmpdir()  # where the app's own log dir goes
    owner = subprocess.Popen([sys.executable, "-c", OWNER_SCRIPT, str(free_port()), postgres.superuser_dsn],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmpdir)})
    try:
        assert owner.stdout is not None
        master = psutil.Process(int(owner.stdout.readline()))
        app = [master, *master.children(recursive=True)]
        assert len(app) == 3
        app.append(master.parent())  # the template goes too  # type: ignore[arg-type]
        owner.kill()
        owner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in app) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p.pid for p in app if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
        # ... and the watchdog (harness.stacks.watchdog) removes the app's log dir.
        while list(tmpdir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmpdir.iterdir()) == []
    finally:
        if owner.poll() is None:
            owner.kill()
        shutil.rmtree(tmpdir, ignore_errors=True)
