"""Readiness: how SimCity learns that a starting or restarted service is ready. One kind of object
with a deadline, as testcontainers' wait strategies are: `HttpReady` (GET answers 200, or any HTTP
answer at all) and `PortReady` (a TCP connect succeeds), each waited on with `wait()`, whose
timeout message names what was waited for, the last answer seen and the caller's details.

A probe is one GET on a fresh connection (harness.http1): a fraction of the CPU of an httpx
request, and a crash is mostly probes.
"""

from __future__ import annotations

import abc
import socket
import time
from collections.abc import Callable

from harness import http1
from harness.errors import StackStartError

# Every 20 ms. A crash under an app-db fault takes dozens of probes, so backing off looks
# attractive; measured (4 runs each of SC-1 500 iterations, 45 crashes), growing the pause to 50 ms
# after the first 0.3 s saved 9% of the harness's CPU but added 7% to kill-to-healthy (median
# 32.7 s vs 30.5 s), and the wall is what a user waits for.
PROBE_PAUSE_S = 0.02
# How long one probe waits for its answer: longer than a health check's own database timeout (the
# reference app's is 1 s). An app whose database is cut off answers 503 only once its ping gave up;
# a probe that gives up first never sees that answer. With 1 s here, the probes raced the app's own
# 1 s ping and mostly lost: a crash under a stalled database took 8 to 11 s to be seen serving;
# 6 s with this change alone, 1.0 s once the app's master stopped connecting before it listens.
PROBE_TIMEOUT_S = 5.0


def probe_get(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> http1.Answer:
    """One probe's GET on a fresh connection. OSError or http1.MalformedAnswerError when no
    whole answer came."""
    return http1.get(url, timeout_s, headers=[("User-Agent", "simcity-probe")])


class Readiness(abc.ABC):
    """Something to wait for, probed every PROBE_PAUSE_S until a deadline."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.last = "no answer yet"  # the last probe's outcome, for the timeout message
        self.body: bytes | None = None  # of the last answer, for a probe that gets one

    @abc.abstractmethod
    def probe(self, timeout_s: float) -> bool:
        """One look: ready now? Records what it saw in `self.last`."""

    @abc.abstractmethod
    def goal(self) -> str:
        """What ready means, for messages: `healthy at http://...`."""

    def wait(self, timeout_s: float, *, started: float | None = None,
             still_starting: Callable[[], None] | None = None, details: Callable[[], str] | None = None) -> float:
        """Probe until ready; the seconds since `started` (default: now). StackStartError at the
        deadline, with the last outcome and `details()` (a log tail, a hint). `still_starting` is
        called before each probe and raises to end the wait early (the process died)."""
        started = time.monotonic() if started is None else started
        deadline = started + timeout_s
        while True:
            if still_starting is not None:
                still_starting()
            # A probe never runs past the deadline by more than a moment.
            if self.probe(min(PROBE_TIMEOUT_S, max(deadline - time.monotonic(), 0.05))):
                return time.monotonic() - started
            if time.monotonic() >= deadline:
                extra = details() if details is not None else ""
                raise StackStartError(f"{self.what} not {self.goal()} after {timeout_s:.0f} s "
                                      f"(last probe: {self.last}){extra}")
            time.sleep(PROBE_PAUSE_S)


class HttpReady(Readiness):
    """GET `url` answers 200; with `any_status`, any HTTP answer: the app serves (a crashed app
    restarted while its database is cut off answers 503 from /health, and that is the truth)."""

    def __init__(self, url: str, what: str, *, any_status: bool = False) -> None:
        super().__init__(what)
        self.url = url
        self.any_status = any_status

    def probe(self, timeout_s: float) -> bool:
        try:
            answer = probe_get(self.url, timeout_s)
        except (OSError, http1.MalformedAnswerError) as exc:
            self.last = type(exc).__name__
            return False
        self.body = answer.body
        self.last = f"HTTP {answer.status}"
        return self.any_status or answer.status == 200

    def goal(self) -> str:
        return f"{'serving' if self.any_status else 'healthy'} at {self.url}"


class PortReady(Readiness):
    """A TCP connect to `host:port` succeeds."""

    def __init__(self, port: int, what: str, host: str = "127.0.0.1") -> None:
        super().__init__(what)
        self.address = (host, port)

    def probe(self, timeout_s: float) -> bool:
        try:
            with socket.create_connection(self.address, timeout=min(timeout_s, 0.5)):
                pass
        except OSError as exc:
            self.last = type(exc).__name__
            return False
        return True

    def goal(self) -> str:
        return f"accepting connections on {self.address[0]}:{self.address[1]}"
