"""The toxiproxy-python library, unchanged, drives the stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound, ProxyExists

from tests.toxiproxy.net import Server, Upstream, connect, round_trip_s


@pytest.fixture
def toxiproxy(server: Server) -> Iterator[Toxiproxy]:
    # The library keeps its server address in class attributes: restore them afterwards.
    saved = APIConsumer.host, APIConsumer.port
    client = Toxiproxy()
    client.update_api_consumer("127.0.0.1", server.port)
    try:
        yield client
    finally:
        APIConsumer.host, APIConsumer.port = saved


def test_library_end_to_end(toxiproxy: Toxiproxy) -> None:
    assert toxiproxy.running()
    assert b"2.12.0" in toxiproxy.version()
    with Upstream() as echo:
        proxy = toxiproxy.create(upstream=echo.address, name="lib")
        with pytest.raises(ProxyExists):
            toxiproxy.create(upstream=echo.address, name="lib")
        assert set(toxiproxy.proxies()) == {"lib"}

        proxy.add_toxic(type="latency", attributes={"latency": 200})
        proxy.add_toxic(name="cut", type="limit_data", stream="upstream", toxicity=1.0, attributes={"bytes": 1000})
        toxics = proxy.toxics()
        assert set(toxics) == {"latency_downstream", "cut"}
        assert toxics["latency_downstream"].attributes == {"latency": 200, "jitter": 0}
        with connect(proxy.listen) as sock:
            assert round_trip_s(sock) >= 0.2
        proxy.destroy_toxic("cut")
        assert proxy.get_toxic("cut") is None

        proxy.disable()
        with pytest.raises(ConnectionRefusedError):
            connect(proxy.listen)
        proxy.enable()
        with proxy.down():
            assert toxiproxy.get_proxy("lib").enabled is False
        assert toxiproxy.get_proxy("lib").enabled is True

        toxiproxy.reset()
        assert proxy.toxics() == {}
        with connect(proxy.listen) as sock:
            assert round_trip_s(sock) < 2.0

        assert proxy.destroy()
        with pytest.raises(NotFound):
            proxy.destroy()


def test_library_populate(toxiproxy: Toxiproxy) -> None:
    with Upstream() as echo, Upstream() as other:
        created = toxiproxy.populate([
            {"name": "a", "upstream": echo.address, "listen": "127.0.0.1:0"},
            {"name": "b", "upstream": other.address, "listen": "127.0.0.1:0"},
        ])
        assert sorted(p.name for p in created) == ["a", "b"]
        with connect(toxiproxy.get_proxy("b").listen) as sock:
            round_trip_s(sock)
        toxiproxy.destroy_all()
        assert toxiproxy.proxies() == {}
        with pytest.raises(NotFound):
            created[0].toxics()
