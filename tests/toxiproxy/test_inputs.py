"""Input the real server crashes on or silently accepts gets a 400 here, and the server lives on."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.toxiproxy.net import Server, Upstream


@pytest.fixture
def proxy(api: httpx.Client) -> str:
    with Upstream() as echo:
        response = api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": echo.address})
        assert response.status_code == 201
        yield "p"


@pytest.mark.parametrize("body", [
    {"type": "bandwidth", "attributes": {"rate": -1}},
    {"type": "slicer", "attributes": {"average_size": 0}},
    {"type": "slicer"},
    {"type": "latency", "attributes": {"latency": -5}},
    {"type": "latency", "attributes": {"jitter": -1}},
    {"type": "timeout", "attributes": {"timeout": -1}},
    {"type": "slow_close", "attributes": {"delay": -1}},
    {"type": "limit_data", "attributes": {"bytes": -1}},
    {"type": "latency", "toxicity": 1.5},
    {"type": "latency", "toxicity": -0.1},
    {"type": "latency", "toxicity": "high"},
    {"type": "latency", "attributes": {"latency": "100"}},
    {"type": "latency", "attributes": {"latency": 1.5}},
    {"type": "latency", "attributes": {"latency": True}},
    {"type": "latency", "attributes": {"latency": 2**64}},
    {"type": "latency", "attributes": "slow"},
    {"type": 5},
    {"name": ["x"], "type": "noop"},
    {"type": "noop", "stream": 1},
    [],
    "latency",
])
def test_bad_toxic_is_400(api: httpx.Client, proxy: str, body: object) -> None:
    response = api.post(f"/proxies/{proxy}/toxics", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["status"] == 400 and response.json()["error"]
    assert api.get("/version").status_code == 200
    assert api.get(f"/proxies/{proxy}/toxics").json() == []


@pytest.mark.parametrize("body", [
    {"attributes": {"latency": -1}},
    {"toxicity": 2},
    {"toxicity": None, "attributes": {"jitter": "x"}},
    b"\xff\xfe",
    b"{",
])
def test_bad_toxic_update_is_400_and_changes_nothing(api: httpx.Client, proxy: str, body: object) -> None:
    api.post(f"/proxies/{proxy}/toxics", json={"name": "lat", "type": "latency", "attributes": {"latency": 5}})
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = api.patch(f"/proxies/{proxy}/toxics/lat", **kwargs)
    assert response.status_code == 400, response.text
    toxic = api.get(f"/proxies/{proxy}/toxics/lat").json()
    assert toxic["attributes"] == {"latency": 5, "jitter": 0} and toxic["toxicity"] == 1


@pytest.mark.parametrize("body", [
    {"name": 1, "upstream": "127.0.0.1:1"},
    {"name": "q", "upstream": "127.0.0.1:1", "enabled": "yes"},
    {"name": "q", "upstream": "127.0.0.1:1", "listen": 8080},
    [{"name": "q"}],
    None,
])
def test_bad_proxy_is_400(api: httpx.Client, body: object) -> None:
    response = api.post("/proxies", json=body)
    assert response.status_code == 400, response.text
    assert api.get("/proxies").json() == {}


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:no-such-service"])
def test_unusable_listen_address_is_500(api: httpx.Client, listen: str) -> None:
    response = api.post("/proxies", json={"name": "q", "listen": listen, "upstream": "127.0.0.1:1"})
    assert response.status_code == 500, response.text
    assert api.get("/proxies").json() == {}


def test_garbage_http_does_not_kill_the_server(api: httpx.Client, server: Server) -> None:
    for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                 b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            try:
                sock.recv(4096)
            except OSError:
                pass
    assert api.get("/version").status_code == 200
