"""Each toxic's effect on real loopback sockets through the stand-in. Bounds are generous: the
machine may be busy, so only lower bounds are tight and upper bounds only catch "never happened"."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.toxiproxy.net import Upstream, connect, recv_all, recv_exactly, round_trip_s


@pytest.fixture
def echo() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


def proxy_to(api: httpx.Client, upstream: Upstream, name: str = "p") -> str:
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream.address})
    assert response.status_code == 201, response.text
    return response.json()["listen"]


def add_toxic(api: httpx.Client, kind: str, stream: str = "downstream", toxicity: float = 1.0,
              proxy: str = "p", **attributes: int) -> str:
    response = api.post(f"/proxies/{proxy}/toxics", json={
        "type": kind, "stream": stream, "toxicity": toxicity, "attributes": attributes})
    assert response.status_code == 200, response.text
    return response.json()["name"]


def test_no_toxics_passes_bytes_through(api: httpx.Client, echo: Upstream) -> None:
    payload = os.urandom(1 << 20)
    with connect(proxy_to(api, echo)) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency(api: httpx.Client, echo: Upstream, stream: str) -> None:
    with connect(proxy_to(api, echo)) as sock:
        add_toxic(api, "latency", stream, latency=200)
        elapsed = min(round_trip_s(sock) for _ in range(3))
        assert 0.2 <= elapsed < 2.0


def test_latency_with_jitter(api: httpx.Client, echo: Upstream) -> None:
    with connect(proxy_to(api, echo)) as sock:
        add_toxic(api, "latency", latency=100, jitter=50)
        times = [round_trip_s(sock) for _ in range(5)]
        assert all(0.05 <= t < 2.0 for t in times), times


def test_latency_counts_from_arrival_not_per_chunk_in_series(api: httpx.Client, echo: Upstream) -> None:
    # Ten chunks sent together each wait ~latency, overlapping: the whole burst takes ~one latency.
    with connect(proxy_to(api, echo)) as sock:
        add_toxic(api, "latency", latency=300)
        started = time.monotonic()
        for _ in range(10):
            sock.sendall(b"x" * 100)
            time.sleep(0.005)
        assert len(recv_exactly(sock, 1000)) == 1000
        assert 0.3 <= time.monotonic() - started < 2.0


def test_bandwidth_limits_the_rate(api: httpx.Client) -> None:
    payload = os.urandom(60_000)
    with Upstream(greeting=payload, echo=False) as talker:
        listen = proxy_to(api, talker)
        add_toxic(api, "bandwidth", rate=100)  # 100 KB/s: 60 KB takes ~0.6 s
        started = time.monotonic()
        with connect(listen, timeout_s=10) as sock:
            assert recv_exactly(sock, len(payload)) == payload
        elapsed = time.monotonic() - started
        assert 0.45 <= elapsed < 5.0, elapsed


def test_bandwidth_zero_stalls_until_removed(api: httpx.Client, echo: Upstream) -> None:
    with connect(proxy_to(api, echo)) as sock:
        name = add_toxic(api, "bandwidth", rate=0)
        sock.sendall(b"held")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(16)
        sock.settimeout(5)
        assert api.delete(f"/proxies/p/toxics/{name}").status_code == 204
        assert recv_exactly(sock, 4) == b"held"


def test_slow_close_delays_the_close(api: httpx.Client) -> None:
    with Upstream(greeting=b"bye", close_after_greeting=True) as talker:
        listen = proxy_to(api, talker)
        add_toxic(api, "slow_close", delay=400)
        started = time.monotonic()
        with connect(listen) as sock:
            assert recv_all(sock) == b"bye"
        assert 0.4 <= time.monotonic() - started < 5.0


def test_timeout_drops_data_then_closes(api: httpx.Client, echo: Upstream) -> None:
    with connect(proxy_to(api, echo)) as sock:
        add_toxic(api, "timeout", timeout=300)
        started = time.monotonic()
        sock.sendall(b"lost")
        assert recv_all(sock) == b""
        assert 0.3 <= time.monotonic() - started < 5.0
    # The echo did get and answer the data: the toxic dropped the answer.
    assert echo.wait_connections(1)[0].data == b"lost"


def test_timeout_restarts_on_every_dropped_chunk(api: httpx.Client) -> None:
    with Upstream(echo=False) as sink:
        listen = proxy_to(api, sink)
        add_toxic(api, "timeout", "upstream", timeout=800)
        with connect(listen) as sock:
            started = time.monotonic()
            for _ in range(7):  # ~1 s of traffic, never 0.8 s idle
                sock.sendall(b"x")
                time.sleep(0.15)
            sock.settimeout(0.05)
            with pytest.raises(TimeoutError):
                sock.recv(1)
            assert time.monotonic() - started > 0.8
            sock.settimeout(5)
            assert recv_all(sock) == b""
        assert sink.wait_connections(1)[0].data == b""


def test_timeout_zero_holds_and_removal_closes(api: httpx.Client, echo: Upstream) -> None:
    with connect(proxy_to(api, echo)) as sock:
        name = add_toxic(api, "timeout", timeout=0)
        sock.sendall(b"void")
        sock.settimeout(0.4)
        with pytest.raises(TimeoutError):
            sock.recv(16)
        sock.settimeout(5)
        api.delete(f"/proxies/p/toxics/{name}")
        assert recv_all(sock) == b""


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_reset_peer_resets(api: httpx.Client, echo: Upstream, stream: str) -> None:
    listen = proxy_to(api, echo)
    add_toxic(api, "reset_peer", stream, timeout=100)
    with connect(listen) as sock:
        started = time.monotonic()
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            recv_all(sock)
        assert time.monotonic() - started >= 0.1


def test_reset_peer_added_to_an_open_connection_closes_normally(api: httpx.Client, echo: Upstream) -> None:
    with connect(proxy_to(api, echo)) as sock:
        round_trip_s(sock)
        add_toxic(api, "reset_peer", timeout=0)
        sock.sendall(b"hello")
        assert recv_all(sock) == b""


def test_limit_data_upstream_delivers_exactly(api: httpx.Client) -> None:
    with Upstream(echo=False) as sink:
        listen = proxy_to(api, sink)
        add_toxic(api, "limit_data", "upstream", bytes=1000)
        with connect(listen) as sock:
            try:
                sock.sendall(os.urandom(5000))
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert recv_all(sock) == b""
        received = sink.wait_connections(1)[0]
        assert received.ended.wait(5)
        assert len(received.data) == 1000


def test_limit_data_downstream_delivers_exactly(api: httpx.Client) -> None:
    with Upstream(greeting=os.urandom(10_000), echo=False) as talker:
        listen = proxy_to(api, talker)
        add_toxic(api, "limit_data", bytes=2500)
        with connect(listen) as sock:
            assert len(recv_all(sock)) == 2500


def test_limit_data_counts_across_chunks(api: httpx.Client, echo: Upstream) -> None:
    with connect(proxy_to(api, echo)) as sock:
        add_toxic(api, "limit_data", bytes=10)
        sock.sendall(b"abcd")
        assert recv_exactly(sock, 4) == b"abcd"
        sock.sendall(b"efghijkl")
        assert recv_all(sock) == b"efghij"


def test_slicer_preserves_every_byte(api: httpx.Client, echo: Upstream) -> None:
    payload = os.urandom(64 * 1024)
    with connect(proxy_to(api, echo)) as sock:
        add_toxic(api, "slicer", average_size=512, size_variation=200, delay=10)
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload


def test_slicer_cuts_into_small_packets(api: httpx.Client) -> None:
    with Upstream(greeting=b"x" * 1000, echo=False) as talker:
        listen = proxy_to(api, talker)
        add_toxic(api, "slicer", average_size=10, size_variation=0, delay=5000)
        with connect(listen) as sock:
            reads = []
            while len(b"".join(reads)) < 1000 and (chunk := sock.recv(4096)):
                reads.append(chunk)
        assert b"".join(reads) == b"x" * 1000
        assert len(reads) > 5  # 5 ms between 10-byte packets: the reader sees many of them


def test_toxicity_zero_and_one(api: httpx.Client, echo: Upstream) -> None:
    listen = proxy_to(api, echo)
    name = add_toxic(api, "latency", toxicity=0.0, latency=1000)
    with connect(listen) as sock:
        assert round_trip_s(sock) < 0.8
    api.patch(f"/proxies/p/toxics/{name}", json={"toxicity": 1.0})
    with connect(listen) as sock:
        assert round_trip_s(sock) >= 1.0


def test_toxics_apply_to_open_connections(api: httpx.Client, echo: Upstream) -> None:
    with connect(proxy_to(api, echo)) as sock:
        round_trip_s(sock)
        name = add_toxic(api, "latency", latency=300)
        assert round_trip_s(sock) >= 0.3
        api.patch(f"/proxies/p/toxics/{name}", json={"attributes": {"latency": 600}})
        assert round_trip_s(sock) >= 0.6
        api.delete(f"/proxies/p/toxics/{name}")
        assert min(round_trip_s(sock) for _ in range(3)) < 0.25


def test_removing_a_toxic_releases_data_in_flight(api: httpx.Client, echo: Upstream) -> None:
    with connect(proxy_to(api, echo)) as sock:
        name = add_toxic(api, "latency", latency=10_000)
        sock.sendall(b"in flight")
        time.sleep(0.1)
        started = time.monotonic()
        api.delete(f"/proxies/p/toxics/{name}")
        assert recv_exactly(sock, 9) == b"in flight"
        assert time.monotonic() - started < 5.0


def test_chained_toxics_on_both_streams(api: httpx.Client, echo: Upstream) -> None:
    payload = os.urandom(20_000)
    with connect(proxy_to(api, echo)) as sock:
        add_toxic(api, "latency", "upstream", latency=100)
        add_toxic(api, "slicer", "downstream", average_size=1000, size_variation=500)
        add_toxic(api, "latency", "downstream", latency=100)
        api.post("/proxies/p/toxics", json={"name": "extra", "type": "noop", "stream": "downstream"})
        started = time.monotonic()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        assert time.monotonic() - started >= 0.2


def test_upstream_limit_data_on_a_socket_the_client_keeps_writing(api: httpx.Client) -> None:
    # The client keeps sending after the limit: it sees the connection end, never a hang.
    with Upstream(echo=False) as sink:
        listen = proxy_to(api, sink)
        add_toxic(api, "limit_data", "upstream", bytes=100)
        with connect(listen) as sock:
            with pytest.raises(OSError):
                for _ in range(1000):
                    sock.sendall(b"y" * 1000)
                    time.sleep(0.001)
        received = sink.wait_connections(1)[0]
        assert received.ended.wait(5)
        assert len(received.data) == 100


def test_latency_keeps_bulk_transfers_flowing(api: httpx.Client) -> None:
    # Chunks in flight overlap: 8 MiB through a 100 ms toxic takes far less than 8 MiB/chunk x 100 ms.
    with Upstream(echo=False) as sink:
        listen = proxy_to(api, sink)
        add_toxic(api, "latency", "upstream", latency=100)
        started = time.monotonic()
        with connect(listen, timeout_s=10) as sock:
            sock.sendall(b"z" * (8 << 20))
            received = sink.wait_connections(1)[0]
            deadline = time.monotonic() + 10
            while len(received.data) < 8 << 20 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert len(received.data) == 8 << 20
        assert time.monotonic() - started < 3.0


def test_churning_toxics_never_lose_or_reorder_bytes(api: httpx.Client, echo: Upstream) -> None:
    """Toxics that do not drop data by definition, added, changed and removed while data flows."""
    listen = proxy_to(api, echo)
    rng = random.Random(5)
    payload = os.urandom(1024 * 1024)
    results: list[bytes] = []
    # Halfway, each client waits until the toxics have changed enough: on a fast machine the
    # clients could otherwise finish before the churn below got going.
    churned = threading.Event()

    def client() -> None:
        # Ping-pong in 8 KiB blocks, so every block crosses the toxics as they change.
        echoed = bytearray()
        with connect(listen, timeout_s=20) as sock:
            for offset in range(0, len(payload), 8192):
                if offset == len(payload) // 2:
                    churned.wait(10)
                sock.sendall(payload[offset:offset + 8192])
                echoed += recv_exactly(sock, len(payload[offset:offset + 8192]))
        results.append(bytes(echoed))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    kinds = [("latency", {"latency": 20, "jitter": 10}), ("slicer", {"average_size": 700, "size_variation": 300}),
             ("bandwidth", {"rate": 2000}), ("noop", {}), ("slow_close", {"delay": 10})]
    deadline = time.monotonic() + 20
    changes = 0
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        changes += 1
        if changes > 20:
            churned.set()
        kind, attributes = rng.choice(kinds)
        stream = rng.choice(["upstream", "downstream"])
        name = f"{kind}_{stream}"
        action = rng.random()
        if action < 0.5:
            api.post("/proxies/p/toxics", json={"type": kind, "stream": stream, "attributes": attributes,
                                                "toxicity": rng.choice([0.5, 1.0])})
        elif action < 0.7:
            api.patch(f"/proxies/p/toxics/{name}", json={"toxicity": rng.random()})
        else:
            api.delete(f"/proxies/p/toxics/{name}")
        time.sleep(0.01)
    api.post("/reset")
    for thread in threads:
        thread.join(10)
    assert results == [payload] * 4
    assert changes > 20, "the clients finished before the toxics changed much"
