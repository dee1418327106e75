"""Fixtures: the stand-in server (and a real toxiproxy-server when one is on PATH), an API client."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from harness.postgres import free_port
from harness.process import ManagedProcess
from toxics.server import toxiproxy_process


@dataclass
class Server:
    kind: str
    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)


def _clean(server: Server) -> None:
    with server.client() as api:
        for name in api.get("/proxies").json():
            api.delete(f"/proxies/{name}")


@pytest.fixture(scope="session")
def standin() -> Iterator[Server]:
    port = free_port()
    with toxiproxy_process(port, seed=7) as process:
        yield Server("simcity-toxiproxy", process, port)


@pytest.fixture(scope="session")
def real_toxiproxy() -> Iterator[Server]:
    binary = shutil.which("toxiproxy-server")
    if binary is None:
        pytest.skip("no toxiproxy-server on PATH: the contract suite ran against the stand-in only")
    port = free_port()
    process = ManagedProcess("toxiproxy-server", [binary, "-host", "127.0.0.1", "-port", str(port)],
                             health_url=f"http://127.0.0.1:{port}/version")
    with process:
        yield Server("toxiproxy-server", process, port)


@pytest.fixture(params=["simcity-toxiproxy", "toxiproxy-server"])
def any_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The contract suite runs on both servers with the same assertions."""
    server: Server = request.getfixturevalue("standin" if request.param == "simcity-toxiproxy" else "real_toxiproxy")
    _clean(server)
    yield server
    _clean(server)


@pytest.fixture
def server(standin: Server) -> Iterator[Server]:
    """The stand-in, with no proxies before and after the test."""
    _clean(standin)
    yield standin
    _clean(standin)


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
