"""What every stack (local processes, Docker Compose, a user's own app) offers the harness."""

from __future__ import annotations

import abc
import difflib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Self


from harness.errors import StackStartError, UsageError
from harness.history import Hop
from harness.http1 import MalformedAnswerError
from harness.stacks._wait import HttpReady, Readiness, probe_get

# The two network hops SimCity can break: harness -> app, and app -> database.
HOPS = tuple(hop.value for hop in Hop)


@dataclass(frozen=True)
class StackEndpoints:
    """Where the running stack answers. `service_key` is a secret: never printed (repr=False)."""

    app_url: str
    rest_url: str
    service_key: str = field(repr=False)
    proxy_api_url: str | None = None
    # hop -> Toxiproxy proxy name; a hop missing here cannot be faulted on this stack.
    proxy_names: Mapping[str, str] = field(default_factory=dict)
    database_url: str | None = field(default=None, repr=False)


class _State(Enum):
    NEW = "new"
    STARTING = "starting"
    STARTED = "started"
    CLOSED = "closed"


class Stack(abc.ABC):
    """A running system under test; a context manager that always releases everything.

    The lifecycle lives here, once: `start()` refuses a stack that is already started (or closed,
    unless the kind can start again), a `start()` that fails releases what it got before the
    error goes on, and `close()` may be called any number of times, from any thread, returning
    once everything is released (also when another thread's close is the one doing it). A kind
    only says how it starts (`_start`) and how it lets go (`_close`)."""

    kind: str = "abstract"

    def __init__(self) -> None:
        self._state = _State.NEW
        self._endpoints: StackEndpoints | None = None
        self._lifecycle = threading.Lock()  # guards _state and _endpoints
        self._releasing = threading.Lock()  # held while _close runs
        # The body of the /health answer that ended the last `restart_app`'s wait: it carries the
        # new start's boot id, so a crash check need not ask /health once more (another database
        # ping, through whatever app-db fault is on: 0.5 s under 150 ms of latency).
        self.restart_answer: bytes | None = None

    @abc.abstractmethod
    def _start(self) -> StackEndpoints:
        """Bring every service up and return where they answer; on an error, whatever it got is
        released by `_close`, which the base class calls."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release everything `_start` got, also after a `_start` that failed half-way; safe to
        call more than once."""

    @abc.abstractmethod
    def restart_app(self, *, wait_healthy: bool = True) -> float:
        """Crash the app for real and wait until /health is 200; with `wait_healthy=False` (its
        database is cut off), until it serves at all, or, on a stack that `watches_crashes`, until
        it listens again. Return the seconds from the kill until then, and keep the body of the
        answer that ended the wait, if one did, in `restart_answer`."""

    @property
    def watches_crashes(self) -> bool:
        """Whether this stack sees a crash happen itself: every process of the old app gone, a new
        one started. Its crashes are then verified without the app's boot id (CONTRACT.md section
        4 asks for one only of apps SimCity cannot watch die)."""
        return False

    def _wait_restarted(self, ready: Readiness, timeout_s: float, *, started: float,
                        details: Callable[[], str] | None = None) -> float:
        """Wait for a restarted app as `restart_app` promises; keep the answer that ended the wait."""
        took = ready.wait(timeout_s, started=started, details=details)
        self.restart_answer = ready.body
        return took

    @property
    def endpoints(self) -> StackEndpoints:
        if self._endpoints is not None:
            return self._endpoints
        if self._state is _State.CLOSED:  # closed under a run (another thread, a signal): infrastructure
            raise StackStartError(f"the {self.kind} stack is closed")
        raise UsageError(f"the {self.kind} stack is not started: use `with stack:` or call stack.start() first")

    @property
    def started(self) -> bool:
        return self._state is _State.STARTED

    @property
    def restartable(self) -> bool:
        """Whether `start()` may bring a closed stack up again, as new; False for a kind whose
        close leaves something behind that a second start would trip over."""
        return True

    def start(self) -> StackEndpoints:
        with self._lifecycle:
            if self._state in (_State.STARTING, _State.STARTED):
                raise UsageError(f"this {self.kind} stack is already started (`with stack:` starts it): use it "
                                 "as it is, or close() it before starting it again")
            if self._state is _State.CLOSED and not self.restartable:
                raise UsageError(f"this {self.kind} stack was closed and cannot start again: make a new one")
            self._state = _State.STARTING
        with self._releasing:  # a close still under way in another thread finishes first
            pass
        try:
            endpoints = self._start()
        except BaseException:
            self._release()
            raise
        with self._lifecycle:
            closed_meanwhile = self._state is _State.CLOSED
            if not closed_meanwhile:
                self._state, self._endpoints = _State.STARTED, endpoints
        if closed_meanwhile:  # what came up after that close() must go too
            self._release()
            raise StackStartError(f"the {self.kind} stack was closed while it was starting")
        return endpoints

    def close(self) -> None:
        with self._lifecycle:
            state = self._state
        if state is _State.NEW:
            return
        if state is _State.CLOSED:
            # Closed already, or being closed by another thread: return once that is done. (On
            # CPython 3.11 a thread whose join() a signal interrupted reads as not alive, so
            # certify's main thread may close what is left while a worker still closes it.)
            with self._releasing:
                return
        self._release()

    def _release(self) -> None:
        with self._lifecycle:
            self._state, self._endpoints = _State.CLOSED, None
        with self._releasing:
            self._close()

    def packet_loss(self, hop: str, probability: float | None) -> bool:
        """Optional capability: drop this share of the IP packets on `hop` (a value of HOPS), or
        lift that loss with `None`. False where the stack cannot (no kernel access: the local and
        external stacks); Toxiproxy's connection-level faults work everywhere regardless.
        A stack that can must keep the loss across app restarts and lift it on `close()`."""
        return False

    def describe(self) -> str:
        return self.kind

    @property
    def can_crash(self) -> bool:
        """Whether `restart_app` can really crash the app (an external app needs --restart-cmd)."""
        return True

    def app_health_url(self) -> str | None:
        """The app's /health on its own address, never through a fault (None: cannot be asked)."""
        return None

    def boot_id(self) -> str | None:
        """The id the app's /health gives for its current start (CONTRACT.md section 4: optional,
        new at every start), asked on its own address; None when it gives none or cannot be asked."""
        url = self.app_health_url()
        if url is None:
            return None
        try:
            return boot_id_in(probe_get(url).body)
        except (OSError, MalformedAnswerError):
            return None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_app_env(app_env: Mapping[str, str]) -> None:
    """Refuse, before anything starts, a reference-app environment SimCity can tell is wrong: an
    unknown BOOKING_STRATEGY, a MUTANT_WINDOW_MS that is not a whole number of ms >= 0. Other
    settings are the app's own business (a bad one fails its start, as infrastructure)."""
    from booking_app.strategies import STRATEGIES  # noqa: PLC0415 - the reference app's own registry

    strategy = app_env.get("BOOKING_STRATEGY", "").strip()
    if strategy and strategy not in STRATEGIES:
        close = difflib.get_close_matches(strategy, STRATEGIES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"--app-env BOOKING_STRATEGY={strategy}: unknown strategy{hint}; "
                         f"choose one of {', '.join(STRATEGIES)}")
    window = app_env.get("MUTANT_WINDOW_MS", "").strip()
    if window and not window.isdigit():
        raise UsageError(f"--app-env MUTANT_WINDOW_MS={window}: expected a whole number of ms >= 0")


def boot_id_in(health_body: bytes) -> str | None:
    """The boot id a /health answer gives (CONTRACT.md section 4), None when it gives none."""
    try:
        body = json.loads(health_body)
    except ValueError:
        return None
    value = body.get("boot_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None


def wait_healthy(url: str, timeout_s: float = 30.0, what: str = "app") -> float:
    """Wait until `url` answers 200 (bounded); return the seconds it took."""
    return HttpReady(url, what).wait(timeout_s)
