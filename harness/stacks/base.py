"""What every stack (local processes, Docker Compose, a user's own app) offers the harness."""

from __future__ import annotations

import abc
import difflib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType

import httpx
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from harness.errors import StackStartError, UsageError
from harness.history import Hop

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


class Stack(abc.ABC):
    """A running system under test; a context manager that always releases everything."""

    kind: str = "abstract"

    @property
    @abc.abstractmethod
    def endpoints(self) -> StackEndpoints: ...

    @abc.abstractmethod
    def start(self) -> StackEndpoints: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def restart_app(self, *, wait_healthy: bool = True) -> float:
        """Crash the app for real and wait until /health is 200 (or, with `wait_healthy=False`,
        until it serves at all); return the seconds from the kill until then."""

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

    def __enter__(self) -> "Stack":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
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


def wait_healthy(url: str, timeout_s: float = 30.0, what: str = "app") -> float:
    """Poll `url` until it answers 200 (bounded, tenacity); return the seconds it took."""
    started = time.monotonic()

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    retrying = Retrying(
        retry=retry_if_result(lambda ok: not ok), stop=stop_after_delay(timeout_s),
        wait=wait_fixed(0.02), retry_error_callback=lambda state: False,
    )
    if not retrying(probe):
        raise StackStartError(f"{what} not healthy at {url} after {timeout_s:.0f} s")
    return time.monotonic() - started
