"""A real Toxiproxy stand-in and a TCP echo server on loopback, shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.stacks._net import free_port
from toxics.control import ToxiproxyController
from toxics.demo import EchoServer
from toxics.server import toxiproxy_process


@pytest.fixture(scope="session")
def toxiproxy_url() -> Iterator[str]:
    port = free_port()
    with toxiproxy_process(port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
def ctl(toxiproxy_url: str) -> Iterator[ToxiproxyController]:
    """A controller on a server with no proxies (whatever the previous test left behind)."""
    with ToxiproxyController(toxiproxy_url, timeout_s=10.0, retry_for_s=5.0) as controller:
        for name in controller.status():
            controller.delete_proxy(name)
        yield controller
