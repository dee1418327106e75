"""The HTTP API contract of Toxiproxy 2.12.0: the same assertions on the stand-in and, when one is
on PATH, on a real toxiproxy-server."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.toxiproxy.net import Server, Upstream, connect


@pytest.fixture
def api(any_server: Server) -> httpx.Client:
    return any_server.api


@pytest.fixture
def upstream() -> Upstream:
    with Upstream() as server:
        yield server


def new_proxy(api: httpx.Client, upstream: Upstream, name: str = "p", **extra: object) -> dict:
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream.address, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    body = response.json()
    assert body["status"] == status
    assert body["error"].startswith(message), body


def test_version(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.text == '{"version": "2.12.0"}\n'


def test_create_proxy_reports_the_bound_address(api: httpx.Client, upstream: Upstream) -> None:
    proxy = new_proxy(api, upstream)
    assert set(proxy) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert proxy["name"] == "p" and proxy["upstream"] == upstream.address
    assert proxy["enabled"] is True and proxy["toxics"] == []
    host, port = proxy["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert api.get("/proxies").json() == {"p": proxy}
    assert api.get("/proxies/p").json() == proxy


def test_empty_proxy_index_is_an_object(api: httpx.Client) -> None:
    response = api.get("/proxies")
    assert response.status_code == 200 and response.json() == {}


def test_proxy_errors(api: httpx.Client, upstream: Upstream) -> None:
    new_proxy(api, upstream)
    assert_error(api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": upstream.address}),
                 409, "proxy already exists")
    assert_error(api.get("/proxies/nope"), 404, "proxy not found")
    assert_error(api.post("/proxies", json={"upstream": upstream.address}), 400, "missing required field: name")
    assert_error(api.post("/proxies", json={"name": "q"}), 400, "missing required field: upstream")
    assert_error(api.post("/proxies", content=b"{not json"), 400, "bad request body")
    assert_error(api.post("/proxies", content=b""), 400, "bad request body")


def test_listen_address_in_use_is_500(api: httpx.Client, upstream: Upstream) -> None:
    taken = new_proxy(api, upstream)["listen"]
    response = api.post("/proxies", json={"name": "q", "listen": taken, "upstream": upstream.address})
    assert_error(response, 500, "listen tcp")


def test_proxy_created_disabled_reports_port_zero(api: httpx.Client, upstream: Upstream) -> None:
    proxy = new_proxy(api, upstream, enabled=False)
    assert proxy["enabled"] is False and proxy["listen"] == "127.0.0.1:0"


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_update_merges_fields(api: httpx.Client, upstream: Upstream, method: str) -> None:
    proxy = new_proxy(api, upstream)
    response = api.request(method, "/proxies/p", json={"enabled": False})
    assert response.status_code == 200
    assert response.json() == {**proxy, "enabled": False}
    response = api.request(method, "/proxies/p", json={"enabled": True})
    assert response.json() == proxy  # listens again on the same address
    with Upstream() as other:
        response = api.request(method, "/proxies/p", json={"upstream": other.address})
        assert response.json() == {**proxy, "upstream": other.address}
    assert_error(api.request(method, "/proxies/nope", json={}), 404, "proxy not found")


def test_disable_closes_the_listener(api: httpx.Client, upstream: Upstream) -> None:
    listen = new_proxy(api, upstream)["listen"]
    connect(listen).close()
    api.patch("/proxies/p", json={"enabled": False})
    with pytest.raises(ConnectionRefusedError):
        connect(listen)
    api.patch("/proxies/p", json={"enabled": True})
    connect(listen).close()


def test_delete_proxy(api: httpx.Client, upstream: Upstream) -> None:
    listen = new_proxy(api, upstream)["listen"]
    response = api.delete("/proxies/p")
    assert response.status_code == 204 and response.content == b""
    assert_error(api.get("/proxies/p"), 404, "proxy not found")
    assert_error(api.delete("/proxies/p"), 404, "proxy not found")
    with pytest.raises(ConnectionRefusedError):
        connect(listen)


def test_create_toxic_with_defaults(api: httpx.Client, upstream: Upstream) -> None:
    new_proxy(api, upstream)
    response = api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 10}})
    assert response.status_code == 200
    toxic = response.json()
    assert toxic == {"attributes": {"latency": 10, "jitter": 0}, "name": "latency_downstream",
                     "type": "latency", "stream": "downstream", "toxicity": 1}
    assert api.get("/proxies/p/toxics").json() == [toxic]
    assert api.get("/proxies/p/toxics/latency_downstream").json() == toxic
    assert api.get("/proxies/p").json()["toxics"] == [toxic]


@pytest.mark.parametrize("kind, attributes", [
    ("latency", {"latency": 0, "jitter": 0}),
    ("bandwidth", {"rate": 100}),
    ("slow_close", {"delay": 0}),
    ("timeout", {"timeout": 0}),
    ("reset_peer", {"timeout": 0}),
    ("slicer", {"average_size": 10, "size_variation": 2, "delay": 5}),
    ("limit_data", {"bytes": 0}),
    ("noop", {}),
])
def test_every_toxic_type(api: httpx.Client, upstream: Upstream, kind: str, attributes: dict) -> None:
    new_proxy(api, upstream)
    response = api.post("/proxies/p/toxics", json={"type": kind, "stream": "upstream", "attributes": attributes})
    assert response.status_code == 200, response.text
    assert response.json() == {"attributes": attributes, "name": f"{kind}_upstream", "type": kind,
                               "stream": "upstream", "toxicity": 1}


def test_toxics_list_upstream_first(api: httpx.Client, upstream: Upstream) -> None:
    new_proxy(api, upstream)
    api.post("/proxies/p/toxics", json={"name": "d", "type": "noop"})
    api.post("/proxies/p/toxics", json={"name": "u", "type": "noop", "stream": "upstream", "toxicity": 0.5})
    toxics = api.get("/proxies/p/toxics").json()
    assert [(t["name"], t["stream"], t["toxicity"]) for t in toxics] == [("u", "upstream", 0.5), ("d", "downstream", 1)]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_update_toxic_merges_attributes(api: httpx.Client, upstream: Upstream, method: str) -> None:
    new_proxy(api, upstream)
    api.post("/proxies/p/toxics", json={"name": "lat", "type": "latency", "attributes": {"latency": 10, "jitter": 3}})
    response = api.request(method, "/proxies/p/toxics/lat", json={"attributes": {"latency": 50}})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"latency": 50, "jitter": 3}
    response = api.request(method, "/proxies/p/toxics/lat", json={"toxicity": 0.25})
    assert response.json() == {"attributes": {"latency": 50, "jitter": 3}, "name": "lat", "type": "latency",
                               "stream": "downstream", "toxicity": 0.25}
    assert_error(api.request(method, "/proxies/p/toxics/nope", json={}), 404, "toxic not found")


def test_toxic_errors(api: httpx.Client, upstream: Upstream) -> None:
    new_proxy(api, upstream)
    assert_error(api.post("/proxies/nope/toxics", json={"type": "noop"}), 404, "proxy not found")
    assert_error(api.post("/proxies/p/toxics", json={"type": "nope"}), 400, "invalid toxic type")
    assert_error(api.post("/proxies/p/toxics", json={"type": "noop", "stream": "sideways"}), 400,
                 "stream was invalid, can be either upstream or downstream")
    assert_error(api.post("/proxies/p/toxics", content=b"[1,"), 400, "bad request body")
    api.post("/proxies/p/toxics", json={"name": "t", "type": "latency"})
    assert_error(api.post("/proxies/p/toxics", json={"name": "t", "type": "noop"}), 409, "toxic already exists")
    # The duplicate is reported before the attributes are even read.
    assert_error(api.post("/proxies/p/toxics", json={"name": "t", "type": "latency", "attributes": {"latency": "x"}}),
                 409, "toxic already exists")
    assert_error(api.get("/proxies/p/toxics/nope"), 404, "toxic not found")
    assert_error(api.get("/proxies/nope/toxics"), 404, "proxy not found")


def test_delete_toxic(api: httpx.Client, upstream: Upstream) -> None:
    new_proxy(api, upstream)
    api.post("/proxies/p/toxics", json={"type": "noop"})
    response = api.delete("/proxies/p/toxics/noop_downstream")
    assert response.status_code == 204 and response.content == b""
    assert api.get("/proxies/p/toxics").json() == []
    assert_error(api.delete("/proxies/p/toxics/noop_downstream"), 404, "toxic not found")


def test_reset_removes_toxics_and_enables(api: httpx.Client, upstream: Upstream) -> None:
    new_proxy(api, upstream)
    new_proxy(api, upstream, name="q")
    api.post("/proxies/p/toxics", json={"type": "latency", "stream": "upstream"})
    api.post("/proxies/q/toxics", json={"type": "timeout"})
    api.patch("/proxies/q", json={"enabled": False})
    response = api.post("/reset")
    assert response.status_code == 204 and response.content == b""
    proxies = api.get("/proxies").json()
    assert all(p["enabled"] and p["toxics"] == [] for p in proxies.values())


def test_populate(api: httpx.Client, upstream: Upstream) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        fixed = f"127.0.0.1:{probe.getsockname()[1]}"
    body = [{"name": "a", "listen": fixed, "upstream": upstream.address},
            {"name": "b", "listen": "127.0.0.1:0", "upstream": upstream.address, "enabled": False}]
    response = api.post("/populate", json=body)
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [(p["name"], p["listen"], p["enabled"]) for p in proxies] == [("a", fixed, True), ("b", "127.0.0.1:0", False)]
    # The same list again: "a" is identical and left alone (with its connections).
    held = connect(fixed)
    held.sendall(b"still here")
    response = api.post("/populate", json=body[:1])
    assert response.status_code == 201 and response.json()["proxies"][0]["listen"] == fixed
    assert held.recv(64) == b"still here"
    held.close()


def test_populate_rebinds_a_port_zero_listen(api: httpx.Client, upstream: Upstream) -> None:
    body = [{"name": "a", "listen": "127.0.0.1:0", "upstream": upstream.address}]
    first = api.post("/populate", json=body).json()["proxies"][0]["listen"]
    second = api.post("/populate", json=body).json()["proxies"][0]["listen"]
    assert first != second
    assert api.get("/proxies/a").json()["listen"] == second


def test_populate_empty_and_errors(api: httpx.Client, upstream: Upstream) -> None:
    response = api.post("/populate", json=[])
    assert response.status_code == 201 and response.json() == {"proxies": None}
    response = api.post("/populate", json=[{"name": "a", "listen": "127.0.0.1:0"}])
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and body["proxies"] is None
    assert body["error"].startswith("missing required field: upstream")
    response = api.post("/populate", content=b"{}")
    assert response.status_code == 400 and response.json()["proxies"] is None
    assert api.get("/proxies").json() == {}


def test_browser_user_agent_is_forbidden(api: httpx.Client) -> None:
    response = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert response.status_code == 403


def test_unknown_path_is_404(api: httpx.Client) -> None:
    assert api.get("/nowhere").status_code == 404


def test_stream_is_read_case_insensitively_and_echoed_as_given(api: httpx.Client, upstream: Upstream) -> None:
    new_proxy(api, upstream)
    response = api.post("/proxies/p/toxics", json={"type": "noop", "stream": "UpStream", "toxicity": 0.123456789})
    assert response.status_code == 200
    assert response.json() == {"attributes": {}, "name": "noop_UpStream", "type": "noop", "stream": "UpStream",
                               "toxicity": 0.12345679}  # stored as a float32


def test_listen_left_out_binds_every_interface(api: httpx.Client, upstream: Upstream) -> None:
    response = api.post("/proxies", json={"name": "p", "upstream": upstream.address})
    assert response.status_code == 201
    host, port = response.json()["listen"].rsplit(":", 1)
    assert host in ("[::]", "0.0.0.0") and int(port) > 0
    connect(f"127.0.0.1:{port}").close()
