"""Fixtures: the stand-in server (and a real toxiproxy-server when one is on PATH), an API client."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest

from harness.stacks._net import free_port
from harness.process import ManagedProcess
from tests.toxiproxy.net import Server
from toxics.server import toxiproxy_process


@pytest.fixture(scope="session")
def standin() -> Iterator[Server]:
    port = free_port()
    with toxiproxy_process(port, seed=7) as process:
        server = Server("simcity-toxiproxy", process, port)
        yield server
        server.api.close()


@pytest.fixture(scope="session")
def real_toxiproxy() -> Iterator[Server]:
    binary = shutil.which("toxiproxy-server")
    if binary is None:
        pytest.skip("no toxiproxy-server on PATH: the contract suite ran against the stand-in only")
    port = free_port()
    process = ManagedProcess("toxiproxy-server", [binary, "-host", "127.0.0.1", "-port", str(port)],
                             health_url=f"http://127.0.0.1:{port}/version")
    with process:
        server = Server("toxiproxy-server", process, port)
        yield server
        server.api.close()


@pytest.fixture(params=["simcity-toxiproxy", "toxiproxy-server"])
def any_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The contract suite runs on both servers with the same assertions."""
    server: Server = request.getfixturevalue("standin" if request.param == "simcity-toxiproxy" else "real_toxiproxy")
    server.clean()
    yield server
    server.clean()


@pytest.fixture
def server(standin: Server) -> Iterator[Server]:
    """The stand-in, with no proxies before and after the test."""
    standin.clean()
    yield standin
    standin.clean()


@pytest.fixture
def api(server: Server) -> httpx.Client:
    return server.api
