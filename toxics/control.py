"""A typed controller for a Toxiproxy server: proxies, toxics, partitions, heal.

Why this does not call `toxiproxy-python` (module `toxiproxy`) for its HTTP requests: that library
keeps the server's host and port as CLASS attributes of `APIConsumer` (one global per process, so
two controllers, or a test and a stack, would silently steer each other), its `Proxy` and
`Toxiproxy` objects look that global up on every call, it sends `requests` calls without any
timeout (a wedged API hangs the run forever), it cannot update a toxic, and its `create` lists
every proxy first (an extra call and a race). None of this can be fixed from outside without
patching its module globals, so every call goes through the small path below instead (one request
per connection, harness.http1): a per-instance base URL, a timeout on every request, bounded
retries on connection errors only, and the server's error message kept. (Not httpx: a call costs
1.1 ms of CPU through httpx, and a run of SC-1 makes one to three per action.) The operation
names follow the library's (`create`, `populate` -> `ensure`, `add_toxic`, `destroy_toxic` -> `remove_toxic`,
`disable`/`enable`, `reset` -> `heal`).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import MappingProxyType, TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from harness import http1
from harness.errors import InfrastructureError, ProxyUnreachableError, UsageError
from toxics.catalog import DEFAULT_STREAM, InvalidToxicError, check_stream, check_toxicity, toxic_type

DEFAULT_API_URL = "http://127.0.0.1:8474"


class _NotConnected(Exception):
    """No connection to the API could be opened: the request never reached the server, so it is
    safe to retry. Only this is retried: a POST that may have been applied must not be sent
    twice, and an answer (even a 4xx) is final."""


class FaultConfigError(UsageError):
    """A fault description that is invalid, found locally (toxics.catalog) or by the server (400).

    `key` names the offending field relative to the toxic (`attributes.latency`), so a profile can
    prefix it with its own position; `reason` is the message without the key.
    """

    def __init__(self, reason: str, key: str | None = None) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.reason = reason
        self.key = key


class ToxiproxyAPIError(InfrastructureError):
    """The Toxiproxy API answered a request with an error other than 400 (404, 409, 5xx...)."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"Toxiproxy {method} {path} answered {status}: {message}")
        self.method = method
        self.path = path
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Toxic:
    """One toxic: the shared envelope (name, stream, toxicity) plus its type's attributes.

    Attribute names and units are Toxiproxy's, listed in `toxics.catalog` (e.g. latency in ms).
    An empty `name` becomes Toxiproxy's default `<type>_<stream>`. Construction does not validate,
    because state read back from a server may hold types this catalog does not know; `checked()`
    does, and every toxic sent to a server is checked first.
    """

    type: str
    # Read-only view; left out of the hash because a mapping is not hashable.
    attributes: Mapping[str, int] = field(default_factory=dict, hash=False)
    stream: str = DEFAULT_STREAM
    toxicity: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))
        if not self.name:
            object.__setattr__(self, "name", f"{self.type}_{self.stream}")

    def checked(self) -> Toxic:
        """This toxic validated against `toxics.catalog`, with default attributes filled in.

        Unknown attributes are errors (Toxiproxy ignores them, which would silently weaken a test).
        Raise FaultConfigError naming the field.
        """
        try:
            spec = toxic_type(self.type)
        except InvalidToxicError as exc:
            raise FaultConfigError(str(exc), "type") from None
        for field_name, check in (("stream", check_stream), ("toxicity", check_toxicity)):
            try:
                check(getattr(self, field_name))
            except InvalidToxicError as exc:
                raise FaultConfigError(str(exc), field_name) from None
        if not isinstance(self.name, str) or "/" in self.name:
            raise FaultConfigError(f"must be a non-empty string without '/', got {self.name!r}", "name")
        # Minimum values are valid by definition: a base that isolates the one attribute checked.
        minimums = {a.name: a.minimum for a in spec.attributes}
        for key, value in self.attributes.items():
            try:
                spec.parse_attributes({key: value}, strict=True, base=minimums)
            except InvalidToxicError as exc:
                raise FaultConfigError(str(exc), f"attributes.{key}") from None
        try:
            attributes = spec.parse_attributes(self.attributes, strict=True)
        except InvalidToxicError as exc:  # only a default that needs overriding gets here
            raise FaultConfigError(str(exc), "attributes") from None
        return replace(self, attributes=attributes, toxicity=float(self.toxicity))

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "stream": self.stream,
            "toxicity": self.toxicity, "attributes": dict(self.attributes),
        }

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Toxic:
        return cls(
            type=body["type"], attributes=body.get("attributes") or {}, stream=body["stream"],
            toxicity=float(body.get("toxicity", 1.0)), name=body["name"],
        )


@dataclass(frozen=True)
class Partition:
    """Cut a proxy: it stops listening (new connections are refused) and drops live ones."""


@dataclass(frozen=True)
class ProxyState:
    """A proxy as the server reports it; `listen` is the address actually bound."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> ProxyState:
        return cls(
            name=body["name"], listen=body["listen"], upstream=body["upstream"], enabled=bool(body["enabled"]),
            toxics=tuple(Toxic.from_api(t) for t in body.get("toxics") or ()),
        )


Effect = Toxic | Partition


def _segment(name: str) -> str:
    return quote(name, safe="")


class ToxiproxyController:
    """Drives one Toxiproxy server. A context manager that heals everything on entry and on exit.

    Exit heals even when the block raised or was interrupted (KeyboardInterrupt included), so a
    run never leaves a fault behind; entry heals too, so it never inherits one either.
    Every request has a `timeout_s` budget; connection errors are retried for up to `retry_for_s`,
    then raised as ProxyUnreachableError.
    """

    def __init__(self, url: str = DEFAULT_API_URL, *, timeout_s: float = 5.0, retry_for_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retry_for_s = retry_for_s
        self._prefix = urlsplit(self.url).path
        self._origin = http1.Origin.of(self.url)

    # -- the one call path ------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        # No keep-alive: a kept connection the server has since closed fails mid-request, and such
        # a failure cannot be told apart from one where the request was applied. A fresh loopback
        # connection per call costs well under a millisecond.
        try:
            return http1.connect(self._origin, self.timeout_s)
        except OSError as exc:
            raise _NotConnected(str(exc) or type(exc).__name__) from exc

    def _open(self) -> socket.socket:
        """A connection to the API, connection errors retried for up to `retry_for_s`."""
        started = time.monotonic()
        try:
            return self._connect()
        except _NotConnected:
            # tenacity only once a first try failed: its set-up costs a loopback call as much CPU
            # as the connect itself, and nearly every call connects at once.
            pass
        retrying = Retrying(
            retry=retry_if_exception_type(_NotConnected), stop=stop_after_delay(self.retry_for_s),
            wait=wait_exponential(multiplier=0.05, max=1.0), reraise=True,
        )
        attempts = 1
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    conn = self._connect()
        except _NotConnected as exc:
            raise ProxyUnreachableError(
                f"Toxiproxy API at {self.url} unreachable: {attempts} attempts in "
                f"{time.monotonic() - started:.1f} s ({exc})"
            ) from exc
        return conn

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; return the decoded JSON answer (None when empty)."""
        conn = self._open()
        payload = None if body is None else json.dumps(body).encode()
        headers = [("User-Agent", "simcity-toxics")]
        if payload is not None:
            headers.append(("Content-Type", "application/json"))
        try:
            answer = http1.exchange(conn, self._origin, method, self._prefix + path, headers=headers, body=payload)
        except (OSError, http1.MalformedAnswerError) as exc:
            raise ProxyUnreachableError(
                f"Toxiproxy API at {self.url} did not answer {method} {path} ({type(exc).__name__}: {exc})"
            ) from exc
        finally:
            conn.close()
        if answer.status >= 400:
            message = _error_message(answer.body, answer.reason)
            if answer.status == 400:
                raise FaultConfigError(f"Toxiproxy rejected {method} {path}: {message}")
            raise ToxiproxyAPIError(method, path, answer.status, message)
        return json.loads(answer.body) if answer.body else None

    # -- proxies ----------------------------------------------------------------------------------

    def version(self) -> str:
        return str(self._call("GET", "/version")["version"])

    def status(self) -> dict[str, ProxyState]:
        """Every proxy with its toxics, by name."""
        return {name: ProxyState.from_api(body) for name, body in self._call("GET", "/proxies").items()}

    def proxy(self, name: str) -> ProxyState:
        return ProxyState.from_api(self._call("GET", f"/proxies/{_segment(name)}"))

    def create_proxy(self, name: str, *, listen: str, upstream: str, enabled: bool = True) -> ProxyState:
        """Create a proxy; ToxiproxyAPIError (409) when the name is taken. `listen` port 0 = any."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return ProxyState.from_api(self._call("POST", "/proxies", body))

    def ensure_proxy(self, name: str, *, listen: str, upstream: str) -> ProxyState:
        """The proxy `name` from `listen` to `upstream`: kept as it is when it already matches
        (with its connections, toxics and enabled state), else replaced. A `listen` port of 0
        matches any port on the same host, so ensuring twice keeps the first port.
        """
        try:
            current = self.proxy(name)
        except ToxiproxyAPIError as exc:
            if exc.status != 404:
                raise
        else:
            if current.upstream == upstream and _same_listen(current.listen, listen):
                return current
            self.delete_proxy(name)
        return self.create_proxy(name, listen=listen, upstream=upstream)

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{_segment(name)}")

    def disable(self, proxy: str) -> ProxyState:
        """Partition: the proxy stops listening and drops every live connection."""
        return self._set_enabled(proxy, False)

    def enable(self, proxy: str) -> ProxyState:
        return self._set_enabled(proxy, True)

    def _set_enabled(self, proxy: str, enabled: bool) -> ProxyState:
        return ProxyState.from_api(self._call("POST", f"/proxies/{_segment(proxy)}", {"enabled": enabled}))

    # -- toxics -----------------------------------------------------------------------------------

    def toxics(self, proxy: str) -> tuple[Toxic, ...]:
        return tuple(Toxic.from_api(t) for t in self._call("GET", f"/proxies/{_segment(proxy)}/toxics"))

    def add_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        """Add a toxic (checked first); ToxiproxyAPIError (409) when its name is taken on `proxy`."""
        body = toxic.checked().to_api()
        return Toxic.from_api(self._call("POST", f"/proxies/{_segment(proxy)}/toxics", body))

    def update_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        """Set the toxicity and attributes of the toxic called `toxic.name` on `proxy`.

        Its type and stream stay what they are on the server; `toxic` is checked against its own
        type, so pass the same type. Omitted attributes fall back to their defaults.
        """
        checked = toxic.checked()
        body = {"toxicity": checked.toxicity, "attributes": dict(checked.attributes)}
        path = f"/proxies/{_segment(proxy)}/toxics/{_segment(toxic.name)}"
        return Toxic.from_api(self._call("POST", path, body))

    def remove_toxic(self, proxy: str, name: str, *, missing_ok: bool = False) -> None:
        try:
            self._call("DELETE", f"/proxies/{_segment(proxy)}/toxics/{_segment(name)}")
        except ToxiproxyAPIError as exc:
            if not (missing_ok and exc.status == 404):
                raise

    # -- faults and healing -----------------------------------------------------------------------

    def apply(self, proxy: str, effect: Effect) -> None:
        """Start one fault on `proxy`: add the toxic, or partition the proxy."""
        if isinstance(effect, Partition):
            self.disable(proxy)
        else:
            self.add_toxic(proxy, effect)

    def revert(self, proxy: str, effect: Effect) -> None:
        """Stop one fault on `proxy`; reverting a fault that is not there is not an error."""
        if isinstance(effect, Partition):
            self.enable(proxy)
        else:
            self.remove_toxic(proxy, effect.name, missing_ok=True)

    def heal(self, proxy: str | None = None) -> None:
        """Remove every toxic and enable every proxy (POST /reset), or only those of `proxy`."""
        if proxy is None:
            self._call("POST", "/reset")
            return
        # One read gives both the toxics and the enabled state: a proxy already clean costs one
        # call, not two (a run heals a hop every few steps).
        state = self.proxy(proxy)
        for toxic in state.toxics:
            self.remove_toxic(proxy, toxic.name, missing_ok=True)
        if not state.enabled:
            self.enable(proxy)

    @contextmanager
    def injected(self, proxy: str, *effects: Effect) -> Iterator[ToxiproxyController]:
        """Faults on one proxy for the duration of the block; `proxy` is healed on the way out,
        whatever happened, including a fault that failed half-way through being applied."""
        try:
            for effect in effects:
                self.apply(proxy, effect)
            yield self
        finally:
            self.heal(proxy)

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Nothing to release (no connection outlives a call); kept for the context manager."""

    def __enter__(self) -> ToxiproxyController:
        try:
            self.heal()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.heal()
        finally:
            self.close()


def _same_listen(actual: str, wanted: str) -> bool:
    host, _, port = wanted.rpartition(":")
    return actual == wanted or (port == "0" and actual.rpartition(":")[0] == host)


def _error_message(raw: bytes, reason: str) -> str:
    # Toxiproxy serves its JSON error bodies as text/plain, so decode by hand.
    text = raw.decode("utf-8", "replace")
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text.strip() or reason
