"""1,000 connections opened and closed leave the server's file descriptors and memory where they were."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil

from tests.toxiproxy.net import Server, Upstream, connect, recv_exactly


def _burst(listen: str, count: int) -> None:
    """`count` connections open at once, each doing a round trip, then all closed."""
    def one(_: int) -> socket.socket:
        sock = connect(listen, timeout_s=10)
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
        return sock

    with ThreadPoolExecutor(max_workers=32) as pool:
        socks = list(pool.map(one, range(count)))
    for sock in socks:
        sock.close()


def _settle(process: psutil.Process, fds: int, timeout_s: float = 15.0) -> int:
    deadline = time.monotonic() + timeout_s
    while process.num_fds() > fds and time.monotonic() < deadline:
        time.sleep(0.05)
    return process.num_fds()


def test_thousand_connections_leak_nothing(api: httpx.Client, server: Server) -> None:
    process = psutil.Process(server.process.pid)
    with Upstream() as echo:
        listen = api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": echo.address}).json()["listen"]
        api.post("/proxies/p/toxics", json={"type": "noop", "stream": "upstream"})  # one toxic path too
        _burst(listen, 100)  # warm up allocator pools and the API connection
        fds = _settle(process, 0, timeout_s=0.5)
        rss = process.memory_info().rss
        for _ in range(5):
            _burst(listen, 200)
        after = _settle(process, fds)
        print(f"server fds {fds} -> {after}, RSS {rss / 1e6:.1f} -> {process.memory_info().rss / 1e6:.1f} MB")
        assert after <= fds
        growth = process.memory_info().rss - rss
        assert growth < 8 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB over 1,000 connections"
