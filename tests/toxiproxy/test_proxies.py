"""Proxy life on real sockets: partition and heal, upstream failures, seeds that replay."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from harness.stacks._net import free_port
from tests.toxiproxy.net import Upstream, connect, recv_all, round_trip_s
from toxics.server import toxiproxy_process


@pytest.fixture
def echo() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


def proxy_to(api: httpx.Client, upstream: str, name: str = "p") -> str:
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream})
    assert response.status_code == 201, response.text
    return response.json()["listen"]


def assert_closed(sock: socket.socket) -> None:
    try:
        assert recv_all(sock) == b""
    except ConnectionResetError:
        pass


def test_partition_drops_live_connections_and_refuses_new_ones(api: httpx.Client, echo: Upstream) -> None:
    listen = proxy_to(api, echo.address)
    live = connect(listen)
    round_trip_s(live)
    assert api.patch("/proxies/p", json={"enabled": False}).json()["enabled"] is False
    assert_closed(live)
    live.close()
    with pytest.raises(ConnectionRefusedError):
        connect(listen)
    # Heal: the same address again.
    assert api.patch("/proxies/p", json={"enabled": True}).json()["listen"] == listen
    with connect(listen) as sock:
        round_trip_s(sock)


def test_reset_heals_everything(api: httpx.Client, echo: Upstream) -> None:
    listen = proxy_to(api, echo.address)
    api.post("/proxies/p/toxics", json={"type": "timeout", "attributes": {"timeout": 0}})
    api.patch("/proxies/p", json={"enabled": False})
    assert api.post("/reset").status_code == 204
    with connect(listen) as sock:
        assert round_trip_s(sock) < 2.0


def test_delete_drops_live_connections(api: httpx.Client, echo: Upstream) -> None:
    with connect(proxy_to(api, echo.address)) as sock:
        round_trip_s(sock)
        api.delete("/proxies/p")
        assert_closed(sock)


def test_unreachable_upstream_accepts_then_closes(api: httpx.Client) -> None:
    with connect(proxy_to(api, f"127.0.0.1:{free_port()}")) as sock:
        assert_closed(sock)


def test_changing_upstream_drops_connections(api: httpx.Client, echo: Upstream) -> None:
    listen = proxy_to(api, echo.address)
    with connect(listen) as sock, Upstream() as other:
        round_trip_s(sock)
        api.patch("/proxies/p", json={"upstream": other.address})
        assert_closed(sock)
        with connect(listen) as again:
            round_trip_s(again)
        assert len(other.wait_connections(1)) == 1


def test_upstream_closing_closes_the_client(api: httpx.Client) -> None:
    with Upstream(greeting=b"hi", close_after_greeting=True) as talker:
        with connect(proxy_to(api, talker.address)) as sock:
            assert recv_all(sock) == b"hi"


def test_many_proxies_at_once(api: httpx.Client, echo: Upstream) -> None:
    listens = [proxy_to(api, echo.address, name=f"p{i}") for i in range(20)]
    for listen in listens:
        with connect(listen) as sock:
            round_trip_s(sock)


def test_config_file_creates_proxies(tmp_path, echo: Upstream) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(f'[{{"name": "db", "listen": "127.0.0.1:0", "upstream": "{echo.address}"}}]')
    port = free_port()
    with toxiproxy_process(port, config=config) as _, httpx.Client(base_url=f"http://127.0.0.1:{port}") as api:
        proxy = api.get("/proxies/db").json()
        with connect(proxy["listen"]) as sock:
            round_trip_s(sock)


def _draws(port: int, echo: Upstream) -> list[bool]:
    """Which of 10 successive connections got a toxicity-0.5 latency toxic."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as api:
        listen = proxy_to(api, echo.address)
        api.post("/proxies/p/toxics", json={"type": "latency", "toxicity": 0.5, "attributes": {"latency": 400}})
        pattern = []
        for _ in range(10):
            with connect(listen) as sock:
                time.sleep(0.02)  # let the server set the link up before the next connection
                pattern.append(round_trip_s(sock) >= 0.4)
        return pattern


def test_seed_replays_toxicity_draws(echo: Upstream) -> None:
    patterns = []
    for _ in range(2):
        port = free_port()
        with toxiproxy_process(port, seed=1234):
            patterns.append(_draws(port, echo))
    assert patterns[0] == patterns[1]
    assert any(patterns[0]) and not all(patterns[0])
