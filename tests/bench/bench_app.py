"""booking-app (atomic, 2 worker processes) on POST /bookings: requests/s and p50/p99 latency.

Starts its own PostgreSQL and app, creates fresh SC-1 fixtures (not timed), then 8 concurrent
clients send 2,000 booking requests: per slot, C1's intent (201), C2's intent (409), and a replay
of each (200, 409), i.e. SC-1's own traffic mix. Prints overall figures and per answer.
The client runs on the same machine, so the figures are a floor for the app, not a ceiling.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import httpx
import psutil

from booking_app.spawn import app_process
from harness.postgres import LocalPostgres
from harness.stacks._net import free_port
from tests.bench.stats import percentile

CLIENTS = 8
TOTAL = 2000
WARMUP_SLOTS = 25



async def _fixtures(client: httpx.AsyncClient, n: int) -> list[dict[str, str]]:
    """The request bodies for n fresh slots, in SC-1 order: A, B, replay A, replay B."""
    bodies: list[dict[str, str]] = []
    for i in range(n):
        answer = await client.post("/e2e/fixtures", json={"scenario": "sc1", "seed": f"bench-{i}"})
        answer.raise_for_status()
        fx = answer.json()
        a = {"intent_id": str(uuid.uuid4()), "slot_id": fx["slot_id"], "customer_id": fx["customer_ids"][0]}
        b = {"intent_id": str(uuid.uuid4()), "slot_id": fx["slot_id"], "customer_id": fx["customer_ids"][1]}
        bodies += [a, b, a, b]
    return bodies


def _cpu_s(pid: int) -> float:
    """User+system CPU seconds of the app: its supervisor and every worker."""
    family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sum(p.cpu_times().user + p.cpu_times().system for p in family)


async def _run(url: str, app_pid: int) -> None:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        warmup = await _fixtures(client, WARMUP_SLOTS)
        bodies = await _fixtures(client, TOTAL // 4)
        for body in warmup:
            await client.post("/bookings", json=body)

        # Per slot the four requests stay in order (one client takes a slot's four), as SC-1 would.
        groups = [bodies[i:i + 4] for i in range(0, len(bodies), 4)]
        queue: asyncio.Queue[list[dict[str, str]]] = asyncio.Queue()
        for group in groups:
            queue.put_nowait(group)
        latencies: dict[int, list[float]] = defaultdict(list)

        async def worker() -> None:
            while not queue.empty():
                for body in queue.get_nowait():
                    t0 = time.perf_counter()
                    answer = await client.post("/bookings", json=body)
                    latencies[answer.status_code].append(time.perf_counter() - t0)

        started, cpu_started = time.perf_counter(), _cpu_s(app_pid)
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        elapsed, cpu = time.perf_counter() - started, _cpu_s(app_pid) - cpu_started

    every = [s for samples in latencies.values() for s in samples]
    print(f"booking-app atomic, 2 workers: {len(every)} requests, {CLIENTS} concurrent clients, {elapsed:.2f} s")
    print(f"  throughput      {len(every) / elapsed:8.0f} requests/s")
    # Load-independent: the app's own CPU per request (the client shares the machine).
    print(f"  app CPU         {cpu / len(every) * 1000:8.2f} ms per request (all processes)")
    print(f"  latency all     p50 {percentile(every, 0.5) * 1000:6.2f} ms   p99 {percentile(every, 0.99) * 1000:6.2f} ms")
    for status in sorted(latencies):
        samples = latencies[status]
        print(f"  latency {status}     p50 {percentile(samples, 0.5) * 1000:6.2f} ms   "
              f"p99 {percentile(samples, 0.99) * 1000:6.2f} ms   (n={len(samples)})")
    unexpected = set(latencies) - {200, 201, 409}
    if unexpected or len(latencies[201]) != TOTAL // 4:
        raise SystemExit(f"unexpected answers: { {s: len(v) for s, v in latencies.items()} }")


def main() -> None:
    with LocalPostgres() as pg:
        port = free_port()
        with app_process(port, pg.superuser_dsn, "atomic", e2e=True, workers=2) as app:
            assert app.pid is not None
            asyncio.run(_run(f"http://127.0.0.1:{port}", app.pid))


if __name__ == "__main__":
    main()
