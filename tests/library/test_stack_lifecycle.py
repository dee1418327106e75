"""The stack lifecycle, written once in harness.stacks.base.Stack, on real stacks and processes: a
second start() is a clear usage error (not PostgreSQL's "another server might be running"), a
start() that fails or is closed under it releases everything, close() may be called again."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from harness.errors import StackStartError, UsageError
from harness.stacks.base import Stack, StackEndpoints
from harness.stacks.compose import ComposeStack
from harness.stacks.external import ExternalStack
from harness.stacks.local import LocalStack
from tests.leftovers import alive, private_tmpdir
from tests.loopback import QuietHandler, http_server, url_of


# Processes this pytest process already had before the test (another module's session fixture,
# e.g. tests/app's app), which no stack of these tests started.
_before: set[int] = set()


def children() -> list[psutil.Process]:
    """The live processes under this one that the current test started."""
    return [p for p in psutil.Process().children(recursive=True) if alive(p) and p.pid not in _before]


@pytest.fixture(autouse=True)
def _others_before() -> Iterator[None]:
    _before.clear()
    _before.update(p.pid for p in psutil.Process().children(recursive=True))
    yield


def listening() -> set[int]:
    return {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN}


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The stacks' temp dirs go here, so a leftover is seen (and nothing of other suites counts)."""
    directory = private_tmpdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    yield directory
    directory.rmdir()  # fails the test if something was left in it


def test_a_second_start_is_a_usage_error_and_a_closed_stack_starts_again_as_new(private_tmp: Path) -> None:
    stack = LocalStack(with_app=False)
    with pytest.raises(UsageError, match=r"not started: use `with stack:` or call stack.start\(\) first"):
        stack.endpoints  # noqa: B018 - the access is the test
    with stack:
        first = stack.endpoints
        with pytest.raises(UsageError, match=r"already started .*close\(\) it before starting it again"):
            stack.start()
        assert stack.started and stack.endpoints is first  # the refusal touched nothing
        assert len(children()) >= 2  # simcity-rest, simcity-toxiproxy (PostgreSQL is pg_ctl's daemon)
        ports = {urlsplit(url).port for url in (first.rest_url, first.proxy_api_url, first.database_url)}
        assert ports <= listening()
    stack.close()  # again: nothing left to do, no error
    assert children() == [] and not ports & listening() and list(private_tmp.iterdir()) == []
    with pytest.raises(StackStartError, match="the local stack is closed"):
        stack.endpoints  # noqa: B018
    with stack:  # an own temp root: the second start is a new stack
        assert stack.endpoints.rest_url != first.rest_url
    assert children() == []


def test_a_stack_that_cannot_start_again_says_so_without_touching_anything(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    # A Docker engine address where nothing answers: the Compose stack's start fails at its first step.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    stack = ComposeStack()
    with pytest.raises(StackStartError, match="no Docker engine answers"):
        stack.start()
    with pytest.raises(UsageError, match="compose stack was closed and cannot start again: make a new one"):
        stack.start()
    assert not stack.started and list(tmp_path.iterdir()) == []


class FlippingHealth(QuietHandler):
    """GET /health: 503 until the server's `healthy` event is set, then 200; `probed` is set by
    the first request."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.probed.set()  # type: ignore[attr-defined]
        healthy = self.server.healthy.is_set()  # type: ignore[attr-defined]
        self.send_response(200 if healthy and self.path == "/health" else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def app() -> Iterator[ThreadingHTTPServer]:
    with http_server(FlippingHealth) as server:
        server.healthy = threading.Event()  # type: ignore[attr-defined]
        server.probed = threading.Event()  # type: ignore[attr-defined]
        yield server


def external(app: ThreadingHTTPServer, health_timeout_s: float) -> ExternalStack:
    url = url_of(app)
    return ExternalStack(url, url, "not-a-real-key", proxy=True, health_timeout_s=health_timeout_s)


def test_a_start_that_fails_without_with_releases_its_proxy(app: ThreadingHTTPServer) -> None:
    stack = external(app, health_timeout_s=1.0)
    for _ in range(2):  # an external stack may be started again after a failed start
        with pytest.raises(StackStartError, match="target app not healthy"):
            stack.start()
        assert children() == []  # simcity-toxiproxy, started before the health wait, is stopped
        assert not stack.started


def test_a_stack_closed_while_it_starts_stops_what_came_up_after(app: ThreadingHTTPServer) -> None:
    """As `simcity certify` does on Ctrl-C: close() from another thread during a start()."""
    stack = external(app, health_timeout_s=30.0)
    raised: list[BaseException] = []

    def start() -> None:
        try:
            stack.start()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    # The proxy is up and the health wait under way once the app is first asked.
    assert app.probed.wait(timeout=30), "the start never reached its health wait"  # type: ignore[attr-defined]
    assert children()  # simcity-toxiproxy
    stack.close()
    app.healthy.set()  # type: ignore[attr-defined]
    starter.join(timeout=30)
    assert [str(exc) for exc in raised] == ["the external stack was closed while it was starting"]
    assert children() == [] and not stack.started


class GatedStack(Stack):
    """The smallest kind of stack: its close takes until the test opens a gate. It checks the
    base class's lifecycle alone; every other test here runs real stacks."""

    kind = "gated"

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.closing = threading.Event()
        self.released = 0

    def _start(self) -> StackEndpoints:
        return StackEndpoints(app_url="http://127.0.0.1:9", rest_url="http://127.0.0.1:9", service_key="")

    def _close(self) -> None:
        self.closing.set()
        assert self.gate.wait(timeout=30)
        self.released += 1

    def restart_app(self, *, wait_healthy: bool = True) -> float:
        return 0.0


def test_a_close_returns_only_once_a_close_under_way_in_another_thread_is_done() -> None:
    stack = GatedStack()
    stack.start()
    first = threading.Thread(target=stack.close)
    first.start()
    assert stack.closing.wait(timeout=30)
    second = threading.Thread(target=stack.close)
    second.start()
    second.join(timeout=0.3)
    assert second.is_alive()  # waiting for the first close, not returning as if all were released
    stack.gate.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert not first.is_alive() and not second.is_alive()
    assert stack.released == 1  # released once
