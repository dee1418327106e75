"""Readiness objects (harness.stacks._wait) against real HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from harness.client import AppClient
from harness.errors import StackStartError
from harness.stacks._net import free_port
from harness.stacks._wait import HttpReady, PortReady
from tests.loopback import QuietHandler, http_server, url_of


def serve(status: int, delay_s: float = 0.0) -> Iterator[str]:
    """A /health that answers `status` after `delay_s`, as an app whose database ping times out does."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            time.sleep(delay_s)
            body = b'{"status": "unavailable"}'
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the probe gave up at its deadline: what one test checks

    with http_server(Handler) as server:
        yield url_of(server, "/health")


@pytest.fixture
def slow_503() -> Iterator[str]:
    yield from serve(503, delay_s=1.5)


@pytest.fixture
def quick_503() -> Iterator[str]:
    yield from serve(503)


def test_a_serving_probe_waits_for_an_answer_slower_than_a_second(slow_503: str) -> None:
    # A crashed app restarted with its database cut off answers 503 once its own ping gave up. A
    # probe that gave up first (it used to, after 1 s) never saw it serve.
    took = HttpReady(slow_503, "app", any_status=True).wait(10)
    assert 1.4 < took < 5


def test_health_needs_200_and_the_timeout_names_the_last_answer(quick_503: str) -> None:
    assert HttpReady(quick_503, "app", any_status=True).wait(5) < 1
    with pytest.raises(StackStartError, match=r"^app not healthy at http://\S+ after 1 s \(last probe: HTTP 503\); log"):
        HttpReady(quick_503, "app").wait(1, details=lambda: "; log tail: -")


def test_nothing_listening_times_out_at_its_deadline_naming_the_error() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(StackStartError, match=r"not serving at .* \(last probe: ConnectionRefusedError\)"):
        HttpReady(f"http://127.0.0.1:{port}/health", "app", any_status=True).wait(0.5)
    assert time.monotonic() - started < 3
    with pytest.raises(StackStartError, match=f"accepting connections on 127.0.0.1:{port}"):
        PortReady(port, "db").wait(0.3)


def test_a_probe_never_runs_far_past_the_deadline(slow_503: str) -> None:
    started = time.monotonic()
    with pytest.raises(StackStartError, match="last probe: (TimeoutError|timeout)"):
        HttpReady(slow_503, "app", any_status=True).wait(0.5)
    assert time.monotonic() - started < 1.4


def test_a_wait_ends_early_when_the_process_died(quick_503: str) -> None:
    def died() -> None:
        raise StackStartError("app exited with code 3 while starting")

    with pytest.raises(StackStartError, match="exited with code 3"):
        HttpReady(quick_503, "app").wait(30, still_starting=died)


@pytest.fixture
def slow_200() -> Iterator[str]:
    yield from serve(200, delay_s=1.5)


def test_the_runs_own_health_check_waits_for_a_slow_200_too(slow_200: str) -> None:
    # Before a run and while settling, through the client-app proxy: an app whose database is far
    # away may take over a second to say 200, and that is healthy, not an infrastructure error.
    assert asyncio.run(AppClient(slow_200.removesuffix("/health")).healthy())
